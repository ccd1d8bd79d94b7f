package tests

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/internal/producer"
)

// A transaction that carries the group's offsets and no record (every record of the stretch it
// commits wrote nothing) is ended: its offsets become stable at once, and the producer goes on to
// the next transaction. franz-go ends only transactions it wrote to; left open, the coordinator
// would abort this one at its timeout and fence the producer.
func TestOffsetsOnlyTransactionEnds(t *testing.T) {
	t.Parallel()
	j := newJob(t)
	j.createTopic(j.topics.Input, 1)
	j.createTopic(j.topics.Output, 1)
	ctx := context.Background()
	tp, err := producer.NewTransactional(ctx, j.kc, "txn-"+j.topics.Group, 10*time.Second)
	require.NoError(t, err)
	defer tp.Close()
	meta := &sarama.ConsumerGroupMetadata{GroupID: j.topics.Group, GenerationID: -1}

	stable := func(want int64) {
		t.Helper()
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			offsets, err := j.adm.FetchOffsets(kadm.RequireStable(ctx), j.topics.Group)
			if assert.NoError(c, err) && assert.NoError(c, offsets.Error()) {
				o, ok := offsets.Lookup(j.topics.Input, 0)
				assert.True(c, ok, "no committed offset")
				assert.Equal(c, want, o.At)
			}
		}, 3*time.Second, 100*time.Millisecond, "offset %d never became stable (the transaction was left open)", want)
	}

	require.NoError(t, tp.Begin())
	require.NoError(t, tp.Commit(ctx, map[string]map[int32]int64{j.topics.Input: {0: 5}}, meta))
	stable(5)

	require.NoError(t, tp.Begin())
	done := make(chan error, 1)
	tp.Produce(&kgo.Record{Topic: j.topics.Output, Value: []byte("v")}, func(err error) { done <- err })
	require.NoError(t, tp.Commit(ctx, map[string]map[int32]int64{j.topics.Input: {0: 7}}, meta), "the next transaction, with a record")
	require.NoError(t, <-done)
	stable(7)
	assert.Len(t, readCommitted(j).records(j.topics.Output, 1, 10*time.Second), 1)
}
