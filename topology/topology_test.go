package topology

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestTopicsNamesAndValidate(t *testing.T) {
	d := DefaultTopics()
	assert.Equal(t, "enricher-table", d.Table())
	assert.Equal(t, "enricher-dlq", d.DLQ())
	require.NoError(t, d.Validate())
	for name, mutate := range map[string]func(*Topics){
		"empty group":        func(t *Topics) { t.Group = "" },
		"empty input":        func(t *Topics) { t.Input = " " },
		"input is scores":    func(t *Topics) { t.Scores = t.Input },
		"output is input":    func(t *Topics) { t.Output = t.Input },
		"output is the DLQ":  func(t *Topics) { t.Output = "enricher-dlq" },
		"input is the table": func(t *Topics) { t.Input = "enricher-table" },
	} {
		tp := DefaultTopics()
		mutate(&tp)
		assert.Error(t, tp.Validate(), name)
	}
}

// fakeCluster is an in-process broker, and an admin client of it for the test's own setup:
// enough for the topology's own logic; the system tests run the same checks against Apache Kafka.
func fakeCluster(t *testing.T) (Cluster, *kadm.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.MetadataMinAge(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return Cluster{Brokers: c.ListenAddrs()}, kadm.NewClient(cl)
}

func TestEnsureCreatesAndChecks(t *testing.T) {
	cluster, _ := fakeCluster(t)
	ctx := context.Background()
	tp := DefaultTopics()

	_, err := Check(ctx, cluster, tp)
	require.ErrorIs(t, err, ErrMissingTopic)
	assert.True(t, Permanent(err))

	_, err = Ensure(ctx, cluster, tp, Spec{Partitions: 3, ReplicationFactor: -1})
	require.ErrorIs(t, err, ErrMissingTopic, "input, scores and output are not created without CreateStreams")
	infos, err := Describe(ctx, cluster, tp)
	require.NoError(t, err)
	for _, i := range infos {
		assert.False(t, i.Exists, "%s was created by a refused Ensure", i.Name)
	}

	layout, err := Ensure(ctx, cluster, tp, Spec{Partitions: 3, ReplicationFactor: -1, CreateStreams: true,
		TableConfigs: map[string]string{"segment.ms": "100"}})
	require.NoError(t, err)
	assert.Equal(t, Layout{Partitions: 3, OutputPartitions: 3, DLQPartitions: 3}, layout)

	infos, err = Describe(ctx, cluster, tp)
	require.NoError(t, err)
	require.Len(t, infos, 5)
	for _, i := range infos {
		assert.True(t, i.Exists, i.Name)
		assert.Equal(t, int32(3), i.Partitions, i.Name)
	}
	n, err := PartitionCount(ctx, cluster, tp.Table())
	require.NoError(t, err)
	assert.Equal(t, int32(3), n)
	_, err = PartitionCount(ctx, cluster, "nope")
	assert.ErrorIs(t, err, ErrMissingTopic)
}

func TestCheckRefusesBadLayouts(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name                 string
		input, scores, table int32
		tablePolicy          string
		want                 error
		wantText             string
	}{
		{"not co-partitioned", 4, 6, 4, "compact", ErrNotCopartitioned, `topic "input" has 4 partitions but topic "scores" has 6`},
		{"table count differs", 4, 4, 2, "compact", ErrBadTable, "has 2 partitions"},
		{"table not compacted", 4, 4, 4, "delete", ErrBadTable, "cleanup.policy=delete"},
		{"table compacted and deleted", 4, 4, 4, "compact,delete", ErrBadTable, "cleanup.policy=compact,delete, want compact alone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cluster, adm := fakeCluster(t)
			tp := DefaultTopics()
			policy := tc.tablePolicy
			for name, n := range map[string]int32{tp.Input: tc.input, tp.Scores: tc.scores, tp.Output: 1, tp.DLQ(): 1} {
				_, err := adm.CreateTopic(ctx, n, -1, nil, name)
				require.NoError(t, err)
			}
			_, err := adm.CreateTopic(ctx, tc.table, -1, map[string]*string{"cleanup.policy": &policy}, tp.Table())
			require.NoError(t, err)
			_, err = Check(ctx, cluster, tp)
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.wantText)
			assert.True(t, Permanent(err))
		})
	}
}
