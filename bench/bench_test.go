package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/kafkaconf"
)

func testWorkload() workload {
	return workload{keys: 50, scores: 150, msgBytes: 100, partitions: 4, kc: kafkaconf.Defaults()}
}

func TestMessageRoundTrip(t *testing.T) {
	w := testWorkload()
	for _, seq := range []int64{0, 7, 1 << 40, -3} {
		at := time.Unix(0, 1_732_000_000_123_456_789)
		m := w.message(seq, at)
		assert.Len(t, m, w.msgBytes)
		gotSeq, gotAt, err := parseMessage(m)
		require.NoError(t, err)
		assert.Equal(t, seq, gotSeq)
		assert.True(t, at.Equal(gotAt))
	}
	for _, bad := range []string{"no separators", "7;1732000000123456789;xxxyxx", "07;1732000000123456789;xxx",
		"+7;1732000000123456789;xxx", "7;01732000000123456789;xxx"} {
		_, _, err := parseMessage(bad)
		assert.Error(t, err, bad)
	}
}

func TestScoresLatestWins(t *testing.T) {
	w := testWorkload()
	last := map[string]int64{}
	for i := 0; i < w.scores; i++ {
		key, v := w.scoreOf(i)
		s, err := codecs.DecodeScore(key, jsonRecords{}.score(key, v))
		require.NoError(t, err)
		last[key] = s.Score
	}
	require.Len(t, last, w.keys)
	for k := 0; k < w.keys; k++ {
		assert.Equal(t, score(k), last[keyName(k)])
	}
}

func TestProbeKeysIncludeEachPartitionsLastScore(t *testing.T) {
	w := testWorkload()
	probes := w.probeKeys()
	lastWritten := map[int32]int{} // partition -> key of its last score record
	for i := 0; i < w.scores; i++ {
		key, _ := w.scoreOf(i)
		lastWritten[w.kc.Partitioner.Partition([]byte(key), int32(w.partitions))] = keyIndex([]byte(key))
	}
	require.Len(t, lastWritten, w.partitions)
	for p, k := range lastWritten {
		assert.Contains(t, probes, k, "partition %d's last-written key", p)
	}
	assert.Greater(t, len(probes), w.partitions, "a sample of other keys too")
}

func output(t *testing.T, w workload, k int, seq int64, s int64) *kgo.Record {
	t.Helper()
	v, err := json.Marshal(codecs.Output{Key: keyName(k), Message: w.message(seq, time.Now().Add(-time.Millisecond)), Score: s})
	require.NoError(t, err)
	return &kgo.Record{Key: []byte(keyName(k)), Value: v}
}

func TestCollector(t *testing.T) {
	for _, tc := range []struct {
		name     string
		records  func(w workload) []*kgo.Record
		distinct int64
		dups     int64
		wrong    string // part of the error, "" for none
		probesOK bool
	}{
		{"all right", func(w workload) []*kgo.Record {
			return []*kgo.Record{output(t, w, 1, 0, score(1)), output(t, w, 2, 1, score(2))}
		}, 2, 0, "", false},
		{"a duplicate counts once", func(w workload) []*kgo.Record {
			return []*kgo.Record{output(t, w, 1, 0, score(1)), output(t, w, 1, 0, score(1))}
		}, 1, 1, "", false},
		{"a wrong score fails", func(w workload) []*kgo.Record {
			return []*kgo.Record{output(t, w, 1, 0, decoy(1))}
		}, 0, 0, "score", false},
		{"a cut message fails", func(w workload) []*kgo.Record {
			r := output(t, w, 1, 0, score(1))
			r.Value = bytes.Replace(r.Value, []byte("xxxx"), []byte("xxx"), 1)
			return []*kgo.Record{r}
		}, 0, 0, "message", false},
		{"a foreign key fails", func(w workload) []*kgo.Record {
			r := output(t, w, 1, 0, score(1))
			r.Key = []byte("other")
			return []*kgo.Record{r}
		}, 0, 0, "not a workload key", false},
		{"a probe with the right score is answered", func(w workload) []*kgo.Record {
			return []*kgo.Record{output(t, w, 3, -1, score(3))}
		}, 0, 0, "", true},
		{"a probe with no score yet is not", func(w workload) []*kgo.Record {
			return []*kgo.Record{output(t, w, 3, -1, codecs.NoScore)}
		}, 0, 0, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := testWorkload()
			c := newCollector(w, jsonRecords{}, nil)
			c.begin(0, 2)
			for _, r := range tc.records(w) {
				c.check(r, time.Now())
			}
			assert.Equal(t, tc.distinct, c.ph.distinct)
			assert.Equal(t, tc.dups, c.ph.duplicates)
			assert.Len(t, c.ph.latencies, int(tc.distinct))
			if tc.wrong == "" {
				assert.NoError(t, c.err())
			} else {
				assert.ErrorContains(t, c.err(), tc.wrong)
			}
			assert.Equal(t, tc.probesOK, c.answered([]int64{-1}))
		})
	}
}

func TestPercentile(t *testing.T) {
	var l []time.Duration
	for i := 1; i <= 100; i++ {
		l = append(l, time.Duration(i)*time.Millisecond)
	}
	assert.Equal(t, 50*time.Millisecond, percentile(l, 50))
	assert.Equal(t, 99*time.Millisecond, percentile(l, 99))
	assert.Equal(t, 100*time.Millisecond, percentile(l, 100))
	assert.Equal(t, 99*time.Millisecond, percentile(l, 99.9), "p99.9 of 100 values is the 99th: (100-1)*0.999 rounds down")
	assert.Zero(t, percentile(nil, 99))
}

func TestReportRatios(t *testing.T) {
	warm := 0.1
	r := newReport(options{brokers: "b", partitions: 4, keys: 10, inputs: 10})
	r.add(result{System: "enricher", ID: "enricher", InputsPerSec: 300, WarmRestartSeconds: &warm})
	r.add(result{System: "Flink", ID: "flink", InputsPerSec: 100})
	assert.InDelta(t, 3.0, r.Ratios["flink"]["throughput, inputs/s"], 1e-9)
	_, ok := r.Ratios["flink"]["warm restart to processing, s"]
	assert.False(t, ok, "no ratio where the peer has no figure")
	var out strings.Builder
	r.print(&out)
	assert.Contains(t, out.String(), "3.00x")
	assert.Contains(t, out.String(), "n/a")
}

func TestReportLoadPoints(t *testing.T) {
	r := newReport(options{brokers: "b", partitions: 4, keys: 10, inputs: 10, rates: []float64{5000}, repeat: 3})
	r.add(result{System: "enricher", ID: "enricher", InputsPerSec: 300, Load: []loadPoint{
		{FractionOfPeak: 0.5, OfferedPerSec: 150, P99ms: 40},
		{OfferedPerSec: 5000, P99ms: 80, P999ms: 120, Runs: 3, P99MinMs: 60, P99MaxMs: 95},
	}})
	r.add(result{System: "Kafka Streams", ID: "kstreams", InputsPerSec: 100, Load: []loadPoint{
		{FractionOfPeak: 0.5, OfferedPerSec: 50, P99ms: 80},
		{OfferedPerSec: 5000, P99ms: 160, P999ms: 200},
	}})
	assert.InDelta(t, 0.5, r.Ratios["kstreams"]["latency p99 at 5000/s offered, ms"], 1e-9, "the common rate compares like with like")
	assert.InDelta(t, 0.5, r.Ratios["kstreams"]["latency p99 at 50% of peak, ms"], 1e-9)
	_, ok := r.Ratios["kstreams"]["latency p99 at 25% of peak, ms"]
	assert.False(t, ok, "a load point neither system ran has no ratio")
	var out strings.Builder
	r.print(&out)
	assert.Contains(t, out.String(), "highest p99 of 3 runs at 5000/s offered, ms")
	assert.Contains(t, out.String(), "95.0")
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		bad  string
	}{
		{[]string{"--brokers", "b"}, ""},
		{[]string{"--brokers", "b", "--quick"}, ""},
		{[]string{}, "--brokers"},
		{[]string{"--brokers", "b", "--keys", "2"}, "--keys"},
		{[]string{"--brokers", "b", "--keys", "10", "--scores", "5"}, "--scores"},
		{[]string{"--brokers", "b", "--keys-distribution", "pareto"}, "pareto"},
		{[]string{"--brokers", "b", "--message-bytes", "10"}, "--message-bytes"},
		{[]string{"--brokers", "b", "--rates", "1000,fast"}, "--rates"},
		{[]string{"--brokers", "b", "--rates", "-5"}, "--rates"},
		{[]string{"--brokers", "b", "--rates", ""}, ""},
		{[]string{"--brokers", "b", "--repeat", "0"}, "--repeat"},
	} {
		o, err := parseFlags(tc.args)
		if tc.bad != "" {
			assert.ErrorContains(t, err, tc.bad, "%v", tc.args)
			continue
		}
		require.NoError(t, err, "%v", tc.args)
		if o.quick {
			assert.Equal(t, 10_000, o.keys)
			assert.Equal(t, 50_000, o.inputs)
		}
		assert.Equal(t, o.keys, o.scores, "scores default to one per key")
	}
}

// An Avro output as enricher writes it, the input's bytes followed by the score under the
// output schema's ID, reads back as the input's key and message with the score.
func TestAvroRecordsReadEnrichersOutput(t *testing.T) {
	a, err := parseAvroRecords(3, 4)
	require.NoError(t, err)
	in := a.input("key-7", "7;1;xx")
	var h sr.ConfluentHeader
	id, body, err := h.DecodeID(in)
	require.NoError(t, err)
	require.Equal(t, 3, id)
	out, err := h.AppendEncode(nil, 9, nil)
	require.NoError(t, err)
	out = binary.AppendVarint(append(out, body...), -12)
	got, err := a.output(out)
	require.NoError(t, err)
	assert.Equal(t, codecs.Output{Key: "key-7", Message: "7;1;xx", Score: -12}, got)

	id, _, err = h.DecodeID(a.score("key-7", 5))
	require.NoError(t, err)
	assert.Equal(t, 4, id)
}

// Each registry format's output as enricher writes it reads back as the input's key and message
// with the score.
func TestRegistryRecordsReadEnrichersOutput(t *testing.T) {
	var h sr.ConfluentHeader
	for _, tc := range []struct {
		name    string
		records recordFormat
		output  func(in []byte) []byte // enricher's output of input value in, with score -12
	}{
		{"protobuf", newProtoRecords(3, 4), func(in []byte) []byte {
			_, rest, err := h.DecodeID(in)
			require.NoError(t, err)
			index, body, err := h.DecodeIndex(rest, 1)
			require.NoError(t, err)
			out, _ := h.AppendEncode(nil, 9, index)
			out = protowire.AppendTag(append(out, body...), 3, protowire.VarintType)
			score := int64(-12)
			return protowire.AppendVarint(out, uint64(score))
		}},
		{"json-schema", newJSONSchemaRecords(3, 4), func(in []byte) []byte {
			_, body, err := h.DecodeID(in)
			require.NoError(t, err)
			out, _ := h.AppendEncode(nil, 9, nil)
			return append(append(out, body[:len(body)-1]...), `,"score":-12}`...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.records.input("key-7", "7;1;xx")
			id, _, err := h.DecodeID(in)
			require.NoError(t, err)
			assert.Equal(t, 3, id)
			got, err := tc.records.output(tc.output(in))
			require.NoError(t, err)
			assert.Equal(t, codecs.Output{Key: "key-7", Message: "7;1;xx", Score: -12}, got)
			id, _, err = h.DecodeID(tc.records.score("key-7", 5))
			require.NoError(t, err)
			assert.Equal(t, 4, id)
		})
	}
}

// The breakdown between two scrapes: means over every output sampled in between, and the tail
// as the slowest bands holding at least 1% of them.
func TestStagesBetween(t *testing.T) {
	scrape := func(text string) map[string]*stageBand {
		t.Helper()
		b, err := parseStages(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	before := scrape(`# HELP enricher_output_breakdowns_total x
enricher_output_breakdowns_total{band="0s-5ms"} 100
enricher_output_breakdowns_total{band="50ms-100ms"} 0
enricher_output_stage_seconds_total{band="0s-5ms",stage="fetch"} 0.1
enricher_output_stage_seconds_total{band="0s-5ms",stage="produce"} 0.1
enricher_processing_seconds_count 5
`)
	after := scrape(`enricher_output_breakdowns_total{band="0s-5ms"} 1090
enricher_output_breakdowns_total{band="50ms-100ms"} 10
enricher_output_stage_seconds_total{band="0s-5ms",stage="fetch"} 1.09
enricher_output_stage_seconds_total{band="0s-5ms",stage="produce"} 2.08
enricher_output_stage_seconds_total{band="50ms-100ms",stage="fetch"} 0.1
enricher_output_stage_seconds_total{band="50ms-100ms",stage="produce"} 0.5
`)
	f := stagesBetween(before, after)
	if f == nil {
		t.Fatal("no breakdown")
	}
	near := func(got, want float64) bool { return got > want-1e-9 && got < want+1e-9 }
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"sampled", float64(f.Sampled), 1000},
		{"mean fetch", f.MeanMs["fetch"], 1000 * (0.99 + 0.1) / 1000},
		{"mean produce", f.MeanMs["produce"], 1000 * (1.98 + 0.5) / 1000},
		{"tail outputs", float64(f.TailOutputs), 10},
		{"tail fetch", f.TailMeanMs["fetch"], 10},
		{"tail produce", f.TailMeanMs["produce"], 50},
		{"tail hold", f.TailMeanMs["hold"], 0},
	} {
		if !near(c.got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	if f.TailAbove != "50ms" {
		t.Errorf("tail above %s, want 50ms", f.TailAbove)
	}
	if stagesBetween(after, after) != nil {
		t.Error("a breakdown of no outputs")
	}
}
