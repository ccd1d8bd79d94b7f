package tests

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	faultNodes            = 4  // brokers of the test's cluster
	faultPartitions       = 3  // input, scores, table and DLQ, on brokers that stay up
	faultOutputPartitions = 12 // one replica each, three on every broker
	// faultStateTopicPartitions is the partition count of the cluster's offsets and
	// transaction state topics (scripts/kafka.sh sets both).
	faultStateTopicPartitions = 3
)

// A broker that leads a quarter of the output partitions stops (SIGSTOP) under a steady load:
// outputs to its partitions wait while the others are acknowledged, so goka marks inputs done
// out of order within each input partition, and the group goes on committing. After 2 s the
// replica is SIGKILLed, the broker resumes (SIGCONT), and the replica starts again on its
// state directory. The commit watermark (internal/consumergroup) commits an input's offset
// only once every earlier input of its partition is done, so no input loses its output;
// at-least-once repeats some (counted), and exactly-once, read committed, repeats none.
//
// The cluster has four brokers, and the one stopped holds no replica of the group's offsets:
// on three, every offsets partition has a replica on every broker, and a commit waits for the
// stopped one (acks=all, until it leaves the ISR after 5 s), so nothing is committed while it
// is stopped and no commit can pass a held output. The output topic has one replica per
// partition (min.insync.replicas=1), and every other topic of the job lives on brokers that
// stay up, for the same reason.
func TestBrokerFault(t *testing.T) {
	t.Parallel()
	addr, dir := ownKafka(t, "start-cluster", strconv.Itoa(faultNodes))
	for _, guarantee := range []string{"at-least-once", "exactly-once"} {
		t.Run(guarantee, func(t *testing.T) {
			began := time.Now()
			j := newJobOn(t, addr)
			eos := guarantee == "exactly-once"
			if eos {
				readCommitted(j)
			}
			// A static member takes its partitions back at once after the restart, and under
			// exactly-once its transactional id is known before it starts.
			instance := "fault-replica"
			flags := []string{"--guarantee", guarantee, "--instance-id", instance}
			victim := j.faultVictim(j.topics.Group + "-" + instance)
			j.placeFaultTopics(victim)
			state := t.TempDir()
			p := j.start(state, flags...)
			p.waitRunning(faultPartitions)
			c, l := j.steadyLoad(200)

			pid := brokerPID(t, dir, victim)
			// The test's own requests stay off the stopped broker: one that went to it would
			// wait for it, and stretch the fault.
			before := j.committed(j.topics.Input)
			require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) // a failed test must not leave it stopped
			stopped := time.Now()
			time.Sleep(2 * time.Second) // the fault: acknowledgements of the other brokers' partitions go on
			p.stop(syscall.SIGKILL)
			require.NoError(t, syscall.Kill(pid, syscall.SIGCONT))
			resumed := time.Now()
			t.Logf("broker %d (pid %d) stopped for %s, the replica SIGKILLed meanwhile; inputs committed since the stop: %d",
				victim, pid, resumed.Sub(stopped).Round(time.Millisecond), j.committed(j.topics.Input)-before)

			p = j.start(state, flags...)
			p.waitRunning(faultPartitions)
			c.waitProgress(t, 200)
			sent := l.stop()
			v := j.settle(c, sent)
			v.report(t, sent)
			lost, wrong := sent-v.unique, c.wrongScores(want(60, 1000))
			live, held := j.outputsWritten(v.unique+v.duplicates, victim, stopped, resumed)
			t.Logf("%s: inputs %d, lost %d, wrong scores %d, duplicates %d; outputs stamped while broker %d was stopped: %d to other brokers' partitions, %d to its own; took %s",
				guarantee, sent, lost, wrong, v.duplicates, victim, live, held, time.Since(began).Round(time.Millisecond))
			if !eos {
				// The case under test happened: acknowledgements overtook writes held by the
				// stopped broker. (Under exactly-once a transaction waits for it.)
				assert.Positive(t, live, "outputs acknowledged while broker %d was stopped", victim)
			}
			assert.Zero(t, lost, "inputs without an output")
			assert.Zero(t, wrong, "outputs without their key's score")
			if eos {
				assert.Zero(t, v.duplicates, "a read_committed reader sees each output once")
			}
		})
	}
}

// faultVictim picks the broker to stop: one that holds no replica of the partition of the
// offsets topic that keeps the group's offsets, so commits land while it is stopped, and,
// where one is left, none of the transaction state partition that keeps txnID's.
func (j *job) faultVictim(txnID string) int32 {
	j.t.Helper()
	offsets := j.stateReplicas("__consumer_offsets", j.topics.Group, func(ctx context.Context) kadm.FindCoordinatorResponses {
		return j.adm.FindGroupCoordinators(ctx, j.topics.Group)
	})
	txns := j.stateReplicas("__transaction_state", txnID, func(ctx context.Context) kadm.FindCoordinatorResponses {
		return j.adm.FindTxnCoordinators(ctx, txnID)
	})
	victim := int32(-1)
	for n := int32(1); n <= faultNodes; n++ {
		if offsets[n] {
			continue
		}
		if victim < 0 || !txns[n] {
			victim = n
		}
	}
	require.Positive(j.t, victim, "a broker without the group's offsets")
	j.t.Logf("group offsets on brokers %v, transaction state on %v; broker to stop: %d", brokerList(offsets), brokerList(txns), victim)
	return victim
}

// stateReplicas returns the brokers holding the partition of an internal state topic that
// keeps key: Kafka's abs(key.hashCode()) % partitions, checked against its coordinator, which
// leads it. On a new cluster the state topic is made on the first ask for a coordinator.
func (j *job) stateReplicas(topic, key string, find func(context.Context) kadm.FindCoordinatorResponses) map[int32]bool {
	j.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var h int32
	for _, r := range key {
		h = 31*h + int32(r) // Java's String.hashCode over ASCII
	}
	switch { // Kafka's Utils.abs
	case h == math.MinInt32:
		h = 0
	case h < 0:
		h = -h
	}
	partition := h % faultStateTopicPartitions
	replicas := map[int32]bool{}
	require.EventuallyWithT(j.t, func(c *assert.CollectT) {
		rs := find(ctx)
		if !assert.NoError(c, rs.Error()) {
			return
		}
		coordinator := int32(-1)
		rs.Each(func(r kadm.FindCoordinatorResponse) { coordinator = r.NodeID })
		md, err := j.adm.Metadata(ctx, topic)
		if !assert.NoError(c, err) || !assert.NoError(c, md.Topics.Error()) {
			return
		}
		pd, ok := md.Topics[topic].Partitions[partition]
		if !assert.True(c, ok, "%s/%d in the metadata", topic, partition) ||
			!assert.Equal(c, coordinator, pd.Leader, "the coordinator leads %s/%d", topic, partition) {
			return
		}
		for _, n := range pd.Replicas {
			replicas[n] = true
		}
	}, 60*time.Second, 200*time.Millisecond, "the replicas of %s's partition of %s", key, topic)
	return replicas
}

func brokerList(set map[int32]bool) []int32 {
	var out []int32
	for n := int32(1); n <= faultNodes; n++ {
		if set[n] {
			out = append(out, n)
		}
	}
	return out
}

// placeFaultTopics creates the job's topics: the output's partitions one replica each, spread
// over all brokers; every other topic with two replicas on brokers other than victim.
func (j *job) placeFaultTopics(victim int32) {
	j.t.Helper()
	var up []int32
	for n := int32(1); n <= faultNodes; n++ {
		if n != victim {
			up = append(up, n)
		}
	}
	others := make([][]int32, faultPartitions)
	for p := range others {
		others[p] = []int32{up[p%len(up)], up[(p+1)%len(up)]}
	}
	spread := make([][]int32, faultOutputPartitions)
	for p := range spread {
		spread[p] = []int32{int32(p%faultNodes) + 1}
	}
	j.createPlaced(j.topics.Input, others, nil)
	j.createPlaced(j.topics.Scores, others, nil)
	j.createPlaced(j.topics.Table(), others, map[string]string{"cleanup.policy": "compact"})
	j.createPlaced(j.topics.DLQ(), others, nil)
	// Appended, not input, time: outputsWritten counts the outputs written while the broker was
	// stopped.
	j.createPlaced(j.topics.Output, spread, map[string]string{"min.insync.replicas": "1", "message.timestamp.type": "LogAppendTime"})
}

// createPlaced creates topic with the replicas of each partition given, and waits until the
// metadata lists every partition with its leader.
func (j *job) createPlaced(topic string, replicas [][]int32, configs map[string]string) {
	j.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for p, rs := range replicas {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(p), rs
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rt.Configs = append(rt.Configs, c)
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, j.cl)
	require.NoError(j.t, err)
	require.Len(j.t, resp.Topics, 1)
	require.NoError(j.t, kerr.ErrorForCode(resp.Topics[0].ErrorCode), "create %s", topic)
	// Each broker learns of a new topic on its own a moment after the controller confirms
	// it, and a replica asks any of them: wait until every one lists every partition's leader.
	require.EventuallyWithT(j.t, func(c *assert.CollectT) {
		for n := int32(1); n <= faultNodes; n++ {
			mreq := kmsg.NewPtrMetadataRequest()
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr(topic)
			mreq.Topics = append(mreq.Topics, mt)
			mresp, err := mreq.RequestWith(ctx, j.cl.Broker(int(n)))
			if !assert.NoError(c, err) || !assert.Len(c, mresp.Topics, 1) {
				return
			}
			listed := mresp.Topics[0]
			if !assert.NoError(c, kerr.ErrorForCode(listed.ErrorCode), "broker %d: %s", n, topic) ||
				!assert.Len(c, listed.Partitions, len(replicas), "broker %d: %s", n, topic) {
				return
			}
			for _, pd := range listed.Partitions {
				assert.GreaterOrEqual(c, pd.Leader, int32(0), "broker %d: leader of %s/%d", n, topic, pd.Partition)
			}
		}
	}, 30*time.Second, 100*time.Millisecond, "topic %s never showed in every broker's metadata with leaders", topic)
}

// brokerPID returns the PID of node's Kafka process in the cluster in dir (from the PID file
// scripts/kafka.sh keeps).
func brokerPID(t *testing.T, dir string, node int32) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node%d", node), "kafka.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return pid
}

// settle waits until every one of sent inputs has an output, or, when some never get one,
// until the group has committed every input and no output has arrived for 5 s: those are
// lost, not late. It returns what the collector saw.
func (j *job) settle(c *collector, sent int) verdict {
	j.t.Helper()
	const quiet = 5 * time.Second
	var v verdict
	seen, since := -1, time.Now()
	require.Eventually(j.t, func() bool {
		v = c.judge()
		if v.unique >= sent {
			return true
		}
		if n := len(c.snapshot()); n != seen || j.inputLag() != 0 {
			seen, since = n, time.Now()
		}
		return time.Since(since) >= quiet
	}, 120*time.Second, 200*time.Millisecond, "the group never committed every input")
	return v
}

// inputLag is how many inputs the group has not committed; -1 while it cannot be read or has
// not committed every partition.
func (j *job) inputLag() int64 {
	lag, err := j.adm.Lag(context.Background(), j.topics.Group)
	if err != nil {
		return -1
	}
	total, parts, ok := int64(0), 0, true
	lag.Each(func(l kadm.DescribedGroupLag) {
		for _, pl := range l.Lag[j.topics.Input] {
			ok = ok && pl.Commit.At >= 0 && pl.Lag >= 0
			total += pl.Lag
			parts++
		}
	})
	if !ok || parts != faultPartitions {
		return -1
	}
	return total
}

// outputsWritten reads the n outputs and counts those stamped between from and to (while the
// victim was stopped) by where their partition lives: on another broker (live) or on the
// victim (held). Live ones are the acknowledgements that overtook the held writes.
func (j *job) outputsWritten(n int, victim int32, from, to time.Time) (live, held int) {
	j.t.Helper()
	for _, r := range j.records(j.topics.Output, n, 30*time.Second) {
		if r.Timestamp.Before(from) || r.Timestamp.After(to) {
			continue
		}
		if r.Partition%faultNodes+1 == victim {
			held++
		} else {
			live++
		}
	}
	return live, held
}

// committed sums the group's committed offsets of topic; partitions without one count 0.
func (j *job) committed(topic string) int64 {
	j.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := j.adm.FetchOffsets(ctx, j.topics.Group)
	require.NoError(j.t, err)
	var n int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At > 0 {
			n += o.At
		}
	})
	return n
}
