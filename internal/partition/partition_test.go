package partition

import (
	"fmt"
	"testing"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Produced by org.apache.kafka.common.utils.Utils.murmur2 and toPositive(h) % 7 from the Kafka
// 4.3.1 jars that scripts/kafka.sh installs.
var javaMurmur2 = []struct {
	key  string
	hash int32
	p7   int32
}{
	{"", 275646681, 2},
	{"a", -1563381124, 5},
	{"ab", 316155434, 0},
	{"abc", 479470107, 4},
	{"abcd", -1323649548, 5},
	{"21", -973932308, 3},
	{"foobar", -790332482, 0},
	{"key-1", 193331640, 5},
	{"user-42", 1459644460, 1},
	{"a-little-bit-long-string", -985981536, 1},
	{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971, 3},
	{"ключ", 2122343024, 4},
	{"ÿþ", -1869419400, 0},
}

func TestMurmur2MatchesJava(t *testing.T) {
	for _, tc := range javaMurmur2 {
		t.Run(tc.key, func(t *testing.T) {
			assert.Equal(t, tc.hash, Murmur2Hash([]byte(tc.key)))
			assert.Equal(t, tc.p7, Murmur2.Partition([]byte(tc.key), 7))
		})
	}
}

// sarama ships the reference behaviour of the other two schemes: its default hash partitioner
// is goka's fnv1a, and its consistent CRC partitioner is librdkafka's.
func TestSchemesMatchReferencePartitioners(t *testing.T) {
	refs := map[Scheme]sarama.PartitionerConstructor{
		FNV1a: sarama.NewHashPartitioner,
		CRC32: sarama.NewConsistentCRCHashPartitioner,
	}
	for scheme, ref := range refs {
		for _, n := range []int32{1, 3, 4, 7, 12, 100} {
			for i := 0; i < 500; i++ {
				key := fmt.Sprintf("key-%d", i)
				want, err := ref("t").Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, n)
				require.NoError(t, err)
				require.Equal(t, want, scheme.Partition([]byte(key), n), "%s key %q n %d", scheme, key, n)
			}
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Scheme
		wantErr bool
	}{
		{"murmur2", Murmur2, false},
		{"fnv1a", FNV1a, false},
		{"crc32", CRC32, false},
		{"", "", true},
		{"Murmur2", "", true},
		{"random", "", true},
	} {
		got, err := Parse(tc.in)
		if tc.wantErr {
			assert.Error(t, err, tc.in)
			continue
		}
		assert.NoError(t, err)
		assert.Equal(t, tc.want, got)
	}
}

func TestKgoPartitioner(t *testing.T) {
	p := Murmur2.KgoPartitioner().ForTopic("t")
	pin := func(v string) []kgo.RecordHeader { return []kgo.RecordHeader{{Key: HeaderPartition, Value: []byte(v)}} }
	for _, tc := range []struct {
		name string
		rec  *kgo.Record
		want int
	}{
		{"a key goes where Java puts it", &kgo.Record{Key: []byte("user-42")}, 1},
		{"the partition header wins over the key", &kgo.Record{Key: []byte("user-42"), Headers: pin("5")}, 5},
		{"a pin at the last partition", &kgo.Record{Headers: pin("6")}, 6},
		{"a pin out of range fails the record", &kgo.Record{Key: []byte("user-42"), Headers: pin("7")}, -1},
		{"a negative pin fails the record", &kgo.Record{Headers: pin("-1")}, -1},
		{"a pin that is no number fails the record", &kgo.Record{Headers: pin("five")}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.True(t, p.RequiresConsistency(tc.rec))
			assert.Equal(t, tc.want, p.Partition(tc.rec, 7))
		})
	}
	seen := map[int]bool{}
	for i := 0; i < 8; i++ {
		seen[p.Partition(&kgo.Record{}, 4)] = true
	}
	assert.Len(t, seen, 4, "keyless records spread over all partitions")
}

// goka's processor and view turn the hasher's sum into a partition with |int32(sum)| % n; the
// adapter must make that arithmetic land on the scheme's partition for every key.
func TestGokaHasherAgreesWithScheme(t *testing.T) {
	for _, scheme := range Schemes {
		for _, n := range []int32{1, 4, 7, 32} {
			hasher := scheme.GokaHasher(n)
			for i := 0; i < 2000; i++ {
				key := fmt.Sprintf("k%d", i)
				h := hasher()
				_, _ = h.Write([]byte(key))
				p := int32(h.Sum32())
				if p < 0 {
					p = -p
				}
				require.Equal(t, scheme.Partition([]byte(key), n), p%n, "%s %q", scheme, key)
			}
		}
	}
	_ = goka.WithHasher(Murmur2.GokaHasher(4)) // the adapter fits goka's option type
}
