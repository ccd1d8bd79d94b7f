package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/codecs"
)

// /metrics after a known workload: every counter has its exact value.
func TestMetricsAfterKnownWorkload(t *testing.T) {
	t.Parallel()
	j, p, _ := runningJob(t)
	base := p.webAddr()
	j.produce("score", scoreLine("k0", 10), scoreLine("k1", 11), scoreLine("k2", 12), scoreLine("k3", 13),
		scoreLine("k4", 14), `{"key":"k4","score":null}`)
	j.produceRaw(j.topics.Scores, &kgo.Record{Key: []byte("k1"), Value: []byte(`{"score":"7"}`)})
	j.waitChangelog(6)
	j.produce("input", inputLine("k0", "a"), inputLine("k1", "b"), inputLine("k2", "c"), inputLine("k3", "d"),
		inputLine("k4", "e"), inputLine("k9", "f"))
	j.produceRaw(j.topics.Input, &kgo.Record{Key: []byte("k0"), Value: []byte(`not json`)})
	j.records(j.topics.Output, 6, 60*time.Second)
	j.records(j.topics.DLQ(), 2, 60*time.Second)

	var m map[string]float64
	require.Eventually(t, func() bool {
		m = scrape(t, base)
		return m["enricher_inputs_consumed_total"] == 7 && m[`enricher_dlq_records_total{reason="wrong_type"}`] == 1
	}, 30*time.Second, 200*time.Millisecond)
	for name, want := range map[string]float64{
		"enricher_inputs_consumed_total":                                              7,
		"enricher_outputs_emitted_total":                                              6,
		"enricher_outputs_no_score_total":                                             2,
		"enricher_scores_applied_total":                                               5,
		"enricher_tombstones_applied_total":                                           1,
		`enricher_dlq_records_total{reason="invalid_json"}`:                           1,
		`enricher_dlq_records_total{reason="wrong_type"}`:                             1,
		`enricher_dlq_records_total{reason="key_mismatch"}`:                           0,
		"enricher_processing_seconds_count":                                           6,
		"enricher_processor_restarts_total":                                           0,
		"enricher_changelog_records_restored_total":                                   0,
		`enricher_partition_running{partition="0"}`:                                   1,
		fmt.Sprintf(`enricher_consumer_lag{partition="0",topic=%q}`, j.topics.Scores): 0,
	} {
		got, ok := m[name]
		assert.True(t, ok, "metric %s is exported", name)
		assert.Equal(t, want, got, name)
	}
	assert.GreaterOrEqual(t, m["enricher_rebalances_total"], 1.0)
	// Every partition's input at offset 0 is sampled for the breakdown of its output's time.
	var breakdowns, fetch float64
	for name, v := range m {
		if strings.HasPrefix(name, "enricher_output_breakdowns_total{") {
			breakdowns += v
		}
		if strings.HasPrefix(name, `enricher_output_stage_seconds_total{`) && strings.Contains(name, `stage="fetch"`) {
			fetch += v
		}
	}
	assert.GreaterOrEqual(t, breakdowns, 1.0, "outputs broken down by stage")
	assert.LessOrEqual(t, breakdowns, 6.0, "outputs broken down by stage")
	assert.Greater(t, fetch, 0.0, "time from the inputs' timestamps to their receipt")
	assert.Contains(t, m, "go_goroutines", "Go runtime metrics")
	assert.Contains(t, m, "process_resident_memory_bytes", "process metrics")
}

// /readyz is 503, naming the partitions still recovering, while a large changelog is restored,
// and 200 once every partition runs; /healthz is 200 throughout.
func TestReadyzWhileRestoring(t *testing.T) {
	t.Parallel()
	j := newJob(t)
	j.createTopics(partitions)
	const records = 400_000
	cl, err := j.kc.Client(kgo.ProducerBatchMaxBytes(1 << 20))
	require.NoError(t, err)
	batch := make([]*kgo.Record, 0, records)
	for i := 0; i < records; i++ {
		key := fmt.Sprintf("key-%d", i)
		v, _ := json.Marshal(codecs.Score{Key: key, Score: int64(i)})
		batch = append(batch, &kgo.Record{Topic: j.topics.Table(), Partition: int32(i % partitions), Key: []byte(key), Value: v})
	}
	require.NoError(t, cl.ProduceSync(context.Background(), batch...).FirstErr())
	cl.Close()

	p := j.start(t.TempDir())
	base := p.webAddr()
	type readyz struct {
		Ready      bool
		Recovering []struct {
			Partition int32
			State     string
			Offset    int64
			HWM       int64
		}
	}
	var notReady string // the first 503 that showed a partition recovering towards its end
	// healthz answered 200 every time it was asked, and no 503 said ready
	healthy, consistent := true, true
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		code, body := get(t, base+"/readyz")
		hc, _ := get(t, base+"/healthz")
		healthy = healthy && hc == http.StatusOK
		if code == http.StatusServiceUnavailable && notReady == "" {
			var r readyz
			if assert.NoError(c, json.Unmarshal([]byte(body), &r), body) {
				consistent = consistent && !r.Ready
				for _, part := range r.Recovering {
					if part.State == "recovering" && part.HWM == records/partitions && part.Offset < part.HWM {
						notReady = body
					}
				}
			}
		}
		assert.Equal(c, http.StatusOK, code, "readyz")
	}, 120*time.Second, 20*time.Millisecond, "readyz never became 200")
	assert.True(t, healthy, "healthz is up while restoring")
	assert.True(t, consistent, "a 503 from readyz says ready=false")
	require.NotEmpty(t, notReady, "readyz was never 503 with a partition recovering towards its high-water mark")
	t.Logf("while restoring %d records, /readyz said: %s", records, strings.TrimSpace(notReady))
	assert.Equal(t, float64(records), scrape(t, base)["enricher_changelog_records_restored_total"])
}
