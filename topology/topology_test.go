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
	assert.Equal(t, Layout{Partitions: 3, OutputPartitions: 3, DLQPartitions: 3}, Layout{Partitions: layout.Partitions,
		OutputPartitions: layout.OutputPartitions, DLQPartitions: layout.DLQPartitions})
	assert.Len(t, layout.Weak, 3, "one broker: table, output and DLQ each on one replica")

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

// A write acknowledged by all in-sync replicas survives a broker's loss only with replication
// and min.insync.replicas of 2 or more: the layout names every job topic where it does not, and
// Ensure refuses them under RequireDurable.
func TestWeakTopics(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		rf     int16
		minISR string
		want   string // "" for a durable topic
	}{
		{"one replica", 1, "1", "has replication factor 1: an acknowledged write lives on one broker"},
		{"min.insync.replicas 1", 3, "1", "has min.insync.replicas=1: an acknowledged write may live on its leader alone"},
		{"durable", 3, "2", ""},
		{"min.insync.replicas above replication", 2, "3", "has min.insync.replicas=3 above its replication factor 2: every write to it fails"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(3))
			require.NoError(t, err)
			t.Cleanup(c.Close)
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.MetadataMinAge(100*time.Millisecond))
			require.NoError(t, err)
			t.Cleanup(cl.Close)
			adm := kadm.NewClient(cl)
			cluster := Cluster{Brokers: c.ListenAddrs()}
			tp := DefaultTopics()
			isr := tc.minISR
			compact := "compact"
			for _, name := range []string{tp.Input, tp.Scores} {
				_, err := adm.CreateTopic(ctx, 2, 3, map[string]*string{"min.insync.replicas": ptr("2")}, name)
				require.NoError(t, err)
			}
			for _, name := range []string{tp.Output, tp.DLQ(), tp.Table()} {
				configs := map[string]*string{"min.insync.replicas": &isr}
				if name == tp.Table() {
					configs["cleanup.policy"] = &compact
				}
				_, err := adm.CreateTopic(ctx, 2, tc.rf, configs, name)
				require.NoError(t, err)
			}
			layout, err := Check(ctx, cluster, tp)
			require.NoError(t, err)
			_, strictErr := Ensure(ctx, cluster, tp, Spec{Partitions: 2, ReplicationFactor: -1, RequireDurable: true})
			if tc.want == "" {
				assert.Empty(t, layout.Weak)
				assert.NoError(t, strictErr)
				return
			}
			require.Len(t, layout.Weak, 3, "table, output and DLQ")
			for _, w := range layout.Weak {
				assert.Contains(t, w, tc.want)
			}
			require.ErrorIs(t, strictErr, ErrNotDurable)
			assert.True(t, Permanent(strictErr))
		})
	}
}

func ptr(s string) *string { return &s }
