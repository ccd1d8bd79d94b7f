package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/processor"
)

// The program's processor, on an in-process Kafka broker (franz-go's kfake, the one behind
// `enricher dev`): orders come out with their customer's tier, an order keyed by another
// customer goes to the dead-letter topic, and lookups answer from the local table.
func TestOrdersAreEnrichedWithTheirTier(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	brokers := cluster.ListenAddrs()

	cfg := config(brokers, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	p, err := processor.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "a clean stop")
		case <-time.After(30 * time.Second):
			t.Error("the processor did not stop")
		}
	})
	require.Eventually(t, func() bool { return len(p.Stats().Partitions) == 4 }, 60*time.Second, 50*time.Millisecond,
		"the processor runs all 4 partitions of the topics it created")

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	produce := func(topic, key, value string) {
		require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(value)}).FirstErr())
	}
	produce("customer-tiers", "c-1", "3")
	produce("customer-tiers", "c-2", "1")
	require.Eventually(t, func() bool {
		tier, found, err := p.Lookup(ctx, "c-2")
		return err == nil && found && tier == 1
	}, 30*time.Second, 20*time.Millisecond, "the tiers reach the table")
	_, found, err := p.Lookup(ctx, "c-3")
	require.NoError(t, err)
	assert.False(t, found, "a customer without a tier")

	produce("orders", "c-1", `{"id":"o-1","customer":"c-1","amount_cents":1250}`)
	produce("orders", "c-2", `{"id":"o-2","customer":"c-2","amount_cents":99}`)
	produce("orders", "c-3", `{"id":"o-3","customer":"c-3","amount_cents":5}`)
	produce("orders", "c-1", `{"id":"o-4","customer":"c-9","amount_cents":1}`)

	got := map[string]OrderWithTier{}
	reader, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("orders-with-tier"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	t.Cleanup(reader.Close)
	deadline, stopReading := context.WithTimeout(ctx, 30*time.Second)
	defer stopReading()
	for len(got) < 3 && deadline.Err() == nil {
		reader.PollFetches(deadline).EachRecord(func(r *kgo.Record) {
			var o OrderWithTier
			require.NoError(t, json.Unmarshal(r.Value, &o))
			assert.Equal(t, o.Customer, string(r.Key), "outputs keep their input's key")
			got[o.ID] = o
		})
	}
	assert.Equal(t, map[string]OrderWithTier{
		"o-1": {Order: Order{ID: "o-1", Customer: "c-1", AmountCents: 1250}, Tier: "gold"},
		"o-2": {Order: Order{ID: "o-2", Customer: "c-2", AmountCents: 99}, Tier: "bronze"},
		"o-3": {Order: Order{ID: "o-3", Customer: "c-3", AmountCents: 5}, Tier: "none"},
	}, got)
	require.Eventually(t, func() bool { return p.Stats().DeadLettered[codecs.ReasonKeyMismatch] == 1 },
		10*time.Second, 20*time.Millisecond, "the order keyed by another customer is dead-lettered")
}

func TestBadConfigurationExitsTwo(t *testing.T) {
	assert.Equal(t, 2, run([]string{"-no-such-flag"}))
	cfg := config(nil, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	err := enrich(context.Background(), cfg)
	var cfgErr *processor.ConfigError
	require.True(t, errors.As(err, &cfgErr), "no brokers is a configuration error: %v", err)
	assert.Equal(t, "Cluster", cfgErr.Field)
}
