package tests

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/dlq"
)

// An input whose output is larger than the output topic's max.message.bytes goes to the DLQ as
// output_too_large, in both guarantees; the inputs around it are enriched and the processor is
// never restarted. Sent, the output would fail the processor on the same input after every
// restart.
func TestOutputTooLargeGoesToTheDLQ(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"at-least-once", "exactly-once"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			j := eosJob(t)
			j.createTopics(partitions)
			j.setTopicConfig(j.topics.Output, "max.message.bytes", "2048")
			p := j.start(t.TempDir(), "--guarantee", mode)
			p.waitRunning(partitions)
			j.produce("score", scoreLine("k1", 7))
			j.waitChangelog(1)
			j.produce("input", inputLine("k1", "before"), inputLine("k1", strings.Repeat("x", 4000)), inputLine("k1", "after"))

			letters := j.records(j.topics.DLQ(), 1, 60*time.Second)
			require.Len(t, letters, 1)
			assert.Equal(t, string(codecs.ReasonOutputTooLarge), headers(letters[0])[dlq.HeaderDLQReason])
			assert.Contains(t, string(letters[0].Value), strings.Repeat("x", 4000), "the input as it came")
			got := j.outputs(2)["k1"]
			require.Len(t, got, 2)
			assert.Equal(t, []string{"before", "after"}, []string{got[0].Message, got[1].Message})
			assert.Equal(t, int64(7), got[1].Score)
			assert.NotContains(t, p.logs(), "processor failed", "no restart")
			require.Equal(t, 0, p.stop(syscall.SIGTERM))
		})
	}
}

// A write the broker refuses for good (here a dead letter larger than the DLQ topic takes) stops
// the replica with exit 1 and the reason, instead of restarting onto the same record forever.
func TestUnwritableRecordStopsInsteadOfLooping(t *testing.T) {
	t.Parallel()
	j := newJob(t)
	j.createTopics(partitions)
	j.setTopicConfig(j.topics.DLQ(), "max.message.bytes", "1024")
	p := j.start(t.TempDir())
	p.waitRunning(partitions)
	j.produceRaw(j.topics.Input, &kgo.Record{Key: []byte("k1"), Value: []byte("not json " + strings.Repeat("x", 4000))})
	require.Equal(t, 1, p.exited(90*time.Second), p.logs())
	logs := p.logs()
	assert.Contains(t, logs, "no retry mends")
	assert.Contains(t, logs, "MESSAGE_TOO_LARGE")
	assert.LessOrEqual(t, strings.Count(logs, "processor failed"), 1, "at most the one failure, never a loop")
}
