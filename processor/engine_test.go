package processor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/enricher/enricher/topology"
)

// Every setting of Config reaches the engine: a field dropped on the way is a setting that
// silently does nothing.
func TestEngineCarriesTheSettings(t *testing.T) {
	c := Config{Cluster: topology.Cluster{Brokers: []string{"127.0.0.1:9092"}}, StateDir: t.TempDir(),
		CreateTopics: true, Partitions: 6, ReplicationFactor: 3, RequireDurableTopics: true,
		SavepointRetention: 2 * time.Hour, ScoreHistory: time.Minute, MaxScoreAhead: 5 * time.Minute, StandbyReplicas: 1, RebuildRecreatedChangelog: true, MemoryLimit: 1 << 30, StateMinFree: 1 << 20}
	e, err := c.engine()
	require.NoError(t, err)
	assert.Equal(t, topology.Spec{Partitions: 6, ReplicationFactor: 3, CreateStreams: true, RequireDurable: true,
		SavepointRetention: 2 * time.Hour}, e.Spec)
	assert.True(t, e.Create)
	assert.Equal(t, time.Minute, e.ScoreHistory)
	assert.Equal(t, 5*time.Minute, e.MaxScoreAhead)
	assert.Equal(t, 1, e.StandbyReplicas)
	assert.True(t, e.RebuildRecreatedChangelog)
	assert.Equal(t, int64(1<<30), e.MemoryLimit)
	assert.Equal(t, int64(1<<20), e.StateMinFree)
}
