package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	brokers   string // comma-separated broker list of the real Kafka under test
	binary    string // the built enricher binary
	repoRoot  string
	setupErr  error
	inCI      = os.Getenv("CI") == "true"
	brokerDir string
)

func TestMain(m *testing.M) {
	code := func() int {
		wd, _ := os.Getwd()
		repoRoot = filepath.Dir(wd)
		tmp, err := os.MkdirTemp("", "enricher-systest-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(tmp)
		binary = filepath.Join(tmp, "enricher")
		build := exec.Command("go", "build", "-o", binary, "./cmd/enricher")
		build.Dir, build.Stdout, build.Stderr = repoRoot, os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build enricher:", err)
			return 1
		}
		brokers = os.Getenv("KAFKA_BROKERS")
		if brokers == "" {
			brokerDir = filepath.Join(tmp, "kafka")
			if brokers, err = startKafka("start", brokerDir); err != nil {
				setupErr = err
			} else {
				defer func() { _, _ = startKafka("stop", brokerDir) }()
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// needTool returns the path of a program a test needs; without it the test is skipped, or,
// under CI, fails (scripts/test.sh installs it).
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if inCI {
			t.Fatalf("%s not installed (scripts/test.sh installs it)", name)
		}
		t.Skipf("%s not installed", name)
	}
	return path
}

// needKafka skips (or, under CI, fails) a test when no broker is available.
func needKafka(t *testing.T) {
	t.Helper()
	if setupErr == nil && brokers != "" {
		return
	}
	if inCI {
		t.Fatalf("no Kafka broker: %v", setupErr)
	}
	t.Skipf("no Kafka broker (set KAFKA_BROKERS or install Java and Maven): %v", setupErr)
}

// startKafka runs `scripts/kafka.sh ACTION DIR [ARGS]`, the one way every broker of the tests
// starts, stops and restarts, and returns what it printed (a start prints the bootstrap list).
func startKafka(action, dir string, args ...string) (string, error) {
	out, err := runScript(filepath.Join(repoRoot, "scripts/kafka.sh"), append([]string{action, dir}, args...)...)
	if err != nil {
		return "", fmt.Errorf("scripts/kafka.sh %s %s: %w", action, dir, err)
	}
	return out, nil
}

// kafkaScript runs scripts/kafka.sh ACTION DIR for a test.
func kafkaScript(t *testing.T, action, dir string) {
	t.Helper()
	_, err := startKafka(action, dir)
	require.NoError(t, err)
}

// ownKafka starts brokers of the test's own (`kafka.sh KIND DIR ARGS`), stopped when the test
// ends, and returns their bootstrap list and directory.
func ownKafka(t *testing.T, kind string, args ...string) (string, string) {
	t.Helper()
	needKafka(t)
	dir := t.TempDir()
	addr, err := startKafka(kind, dir, args...)
	require.NoError(t, err)
	t.Cleanup(func() { kafkaScript(t, "stop", dir) })
	return addr, dir
}

// ownBroker starts a single Kafka broker for one test (to stop and restart it) and returns its
// address and directory.
func ownBroker(t *testing.T) (string, string) { return ownKafka(t, "start") }

// ownCluster starts a 3-node Kafka cluster (replication 3, min.insync.replicas 2) for one test
// and returns its bootstrap list and directory (node i lives in DIR/node<i>).
func ownCluster(t *testing.T) (string, string) { return ownKafka(t, "start-cluster", "3") }

// ownSecureBroker starts a broker whose client listener is SASL_SSL and returns its address
// and the CA file its certificate chains to.
func ownSecureBroker(t *testing.T) (string, string) {
	addr, dir := ownKafka(t, "start-secure")
	return addr, filepath.Join(dir, "certs", "ca.pem")
}

// clusterJob returns a job on a 3-node cluster of the test's own, its topics created with
// partitions and replicated to all three nodes, and the cluster's directory.
func clusterJob(t *testing.T, partitions int) (*job, string) {
	t.Helper()
	addr, dir := ownCluster(t)
	j := newJobOn(t, addr)
	j.createTopics(partitions)
	// A created topic reaches the other brokers' metadata a moment after the controller
	// confirms it, and `topics describe` may ask one of those.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, info := range j.describe() {
			assert.Equal(c, 3, info.Replicas, "topic %s has replication 3", info.Name)
		}
	}, 30*time.Second, 200*time.Millisecond)
	return j, dir
}

// killBroker SIGKILLs node 2 of the cluster in dir while c's outputs flow, waits until they
// flow on two brokers, brings the node back and waits until they flow again.
func killBroker(t *testing.T, c *collector, dir string) {
	t.Helper()
	node := filepath.Join(dir, "node2")
	pid, err := os.ReadFile(filepath.Join(node, "kafka.pid"))
	require.NoError(t, err)
	require.NoError(t, exec.Command("kill", "-KILL", strings.TrimSpace(string(pid))).Run())
	killed := time.Now()
	c.waitProgress(t, 300) // the cluster goes on with two brokers
	t.Logf("outputs flowing again with two brokers %s after the kill", time.Since(killed).Round(time.Millisecond))
	kafkaScript(t, "restart", node)
	c.waitProgress(t, 300)
}
