package processor_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/processor"
	"github.com/enricher/enricher/topology"
)

func TestConfigValidate(t *testing.T) {
	valid := func() processor.Config {
		return processor.Config{Cluster: topology.Cluster{Brokers: []string{"127.0.0.1:9092"}}, StateDir: t.TempDir()}
	}
	for _, tc := range []struct {
		name   string
		change func(*processor.Config)
		field  string // "" for a valid config
	}{
		{"defaults", func(*processor.Config) {}, ""},
		{"every field set", func(c *processor.Config) {
			c.Topics = topology.Topics{Group: "g", Input: "i", Scores: "s", Output: "o"}
			c.CreateTopics, c.Partitions, c.ReplicationFactor = true, 12, 3
			c.Partitioner, c.Guarantee, c.CommitInterval = processor.FNV1a, processor.ExactlyOnce, time.Second
			c.ScoreHistory, c.MaxIdle, c.InstanceID, c.SessionTimeout = time.Hour, -1, "a", 10*time.Second
			c.Cluster.SASL = topology.SASL{Mechanism: "SCRAM-SHA-512", User: "u", Password: "p"}
		}, ""},
		{"no brokers", func(c *processor.Config) { c.Cluster.Brokers = nil }, "Cluster"},
		{"SASL without a user", func(c *processor.Config) { c.Cluster.SASL.Mechanism = "PLAIN" }, "Cluster"},
		{"unknown SASL mechanism", func(c *processor.Config) { c.Cluster.SASL = topology.SASL{Mechanism: "GSSAPI", User: "u"} }, "Cluster"},
		{"no state dir", func(c *processor.Config) { c.StateDir = "" }, "StateDir"},
		{"unknown partitioner", func(c *processor.Config) { c.Partitioner = "random" }, "Partitioner"},
		{"unknown guarantee", func(c *processor.Config) { c.Guarantee = "twice" }, "Guarantee"},
		{"clashing topics", func(c *processor.Config) {
			c.Topics = topology.Topics{Group: "g", Input: "x", Scores: "x", Output: "o"}
		}, "Topics"},
		{"negative partitions", func(c *processor.Config) { c.Partitions = -1 }, "Partitions"},
		{"replication below -1", func(c *processor.Config) { c.ReplicationFactor = -2 }, "ReplicationFactor"},
		{"negative commit interval", func(c *processor.Config) { c.CommitInterval = -time.Second }, "CommitInterval"},
		{"negative history", func(c *processor.Config) { c.ScoreHistory = -time.Second }, "ScoreHistory"},
		{"negative standbys", func(c *processor.Config) { c.StandbyReplicas = -1 }, "StandbyReplicas"},
		{"negative score bound", func(c *processor.Config) { c.MaxScoreAhead = -time.Second }, "MaxScoreAhead"},
		{"negative memory limit", func(c *processor.Config) { c.MemoryLimit = -1 }, "MemoryLimit"},
		{"negative savepoint retention", func(c *processor.Config) { c.SavepointRetention = -time.Hour }, "SavepointRetention"},
		{"session timeout below three heartbeats", func(c *processor.Config) { c.SessionTimeout = 500 * time.Millisecond }, "SessionTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.change(&c)
			err := c.Validate()
			_, newErr := processor.New(c)
			if tc.field == "" {
				assert.NoError(t, err)
				assert.NoError(t, newErr)
				return
			}
			var ce *processor.ConfigError
			require.True(t, errors.As(err, &ce), "want a *ConfigError, got %v", err)
			assert.Equal(t, tc.field, ce.Field)
			assert.Equal(t, err.Error(), newErr.Error(), "New refuses what Validate refuses")
		})
	}
}

func TestLookupBeforeRunIsNotReady(t *testing.T) {
	p, err := processor.New(processor.Config{Cluster: topology.Cluster{Brokers: []string{"127.0.0.1:9"}}, StateDir: t.TempDir()})
	require.NoError(t, err)
	_, _, err = p.Lookup(context.Background(), "k")
	assert.ErrorIs(t, err, processor.ErrNotReady)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err = p.Lookup(ctx, "k")
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, processor.Stats{DeadLettered: map[codecs.Reason]int64{}}, p.Stats())
}

func TestNotLocalErrorIsErrNotLocal(t *testing.T) {
	var err error = &processor.NotLocalError{Key: "k", Partition: 3}
	assert.ErrorIs(t, err, processor.ErrNotLocal)
	assert.NotErrorIs(t, err, processor.ErrNotReady)
	assert.Equal(t, `key "k": partition 3: key's partition is not owned by this process`, err.Error())
}
