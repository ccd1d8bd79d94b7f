package dlq

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

func record(headers map[string]string) *kgo.Record {
	r := &kgo.Record{Partition: 2, Offset: 9, Key: []byte("k"), Value: []byte("v")}
	for k, v := range headers {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return r
}

func TestParse(t *testing.T) {
	full := map[string]string{
		HeaderDLQReason: "too_large", HeaderDLQError: "too_large: value has 9 bytes",
		HeaderSourceTopic: "input", HeaderSourcePartition: "3", HeaderSourceOffset: "41",
		HeaderDLQTruncated: "1000000",
	}
	l, err := parse(record(full))
	require.NoError(t, err)
	assert.Equal(t, Letter{Partition: 2, Offset: 9, Key: "k", Value: []byte("v"), Reason: "too_large",
		Error: "too_large: value has 9 bytes", SourceTopic: "input", SourcePartition: 3, SourceOffset: 41, Truncated: 1000000}, l)

	_, err = parse(record(map[string]string{HeaderDLQReason: "x"}))
	assert.ErrorContains(t, err, "not an enricher dead letter")
	_, err = parse(record(map[string]string{HeaderSourceTopic: "input", HeaderSourceOffset: "x"}))
	assert.ErrorContains(t, err, HeaderSourceOffset)
}

func TestFilter(t *testing.T) {
	l := Letter{Partition: 1, Offset: 5, Reason: "wrong_type"}
	for _, tc := range []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{Reason: "wrong_type"}, true},
		{Filter{Reason: "too_large"}, false},
		{Filter{At: map[string]bool{"1/5": true}}, true},
		{Filter{At: map[string]bool{"1/6": true}}, false},
		{Filter{Reason: "wrong_type", At: map[string]bool{"0/5": true}}, false},
	} {
		assert.Equal(t, tc.want, tc.f.match(l), "%+v", tc.f)
	}
}
