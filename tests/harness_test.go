package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/internal/kafkaconf"
	"github.com/enricher/enricher/internal/topology"
)

// topicSafe matches what may not stand in a topic name.
var topicSafe = regexp.MustCompile(`[^a-z0-9._-]+`)

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
			var out bytes.Buffer
			start := exec.Command("bash", filepath.Join(repoRoot, "scripts/kafka.sh"), "start", brokerDir)
			start.Stdout, start.Stderr = &out, os.Stderr
			if err := start.Run(); err != nil {
				setupErr = fmt.Errorf("start Apache Kafka with scripts/kafka.sh: %w", err)
			} else {
				brokers = strings.TrimSpace(out.String())
				defer func() {
					stop := exec.Command("bash", filepath.Join(repoRoot, "scripts/kafka.sh"), "stop", brokerDir)
					stop.Stdout, stop.Stderr = os.Stderr, os.Stderr
					_ = stop.Run()
				}()
			}
		}
		return m.Run()
	}()
	os.Exit(code)
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

// job is one test's topics and group on the shared broker.
type job struct {
	t       *testing.T
	brokers string
	// flags and env are added to every enricher command of the job (security settings).
	flags []string
	env   []string
	// readOpts are added to the test's readers of the job's topics (read_committed).
	readOpts []kgo.Opt
	topics   topology.Topics
	kc       kafkaconf.Config
	adm      *kadm.Client
	cl       *kgo.Client
}

func newJob(t *testing.T) *job {
	t.Helper()
	needKafka(t)
	return newJobOn(t, brokers)
}

// newJobOn is newJob on another broker (a test's own), optionally with TLS and SASL settings
// for the test's own clients.
func newJobOn(t *testing.T, brokers string, sec ...kafkaconf.Security) *job {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := topicSafe.ReplaceAllString(strings.ToLower(t.Name()), "-") + "-" + hex.EncodeToString(b)
	kc := kafkaconf.Defaults()
	kc.Brokers = strings.Split(brokers, ",")
	if len(sec) > 0 {
		kc.Security = sec[0]
	}
	cl, err := kc.Client()
	require.NoError(t, err)
	j := &job{t: t, brokers: brokers, kc: kc, cl: cl, adm: kadm.NewClient(cl), topics: topology.Topics{
		Group: "g-" + id, Input: "in-" + id, Scores: "sc-" + id, Output: "out-" + id,
	}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _ = j.adm.DeleteTopics(ctx, j.topics.Input, j.topics.Scores, j.topics.Output, j.topics.Table(), j.topics.DLQ())
		cl.Close()
	})
	return j
}

// topicArgs are the flags that point a command at this job.
func (j *job) topicArgs() []string {
	return append([]string{"--brokers", j.brokers, "--group", j.topics.Group, "--input", j.topics.Input,
		"--scores", j.topics.Scores, "--output", j.topics.Output}, j.flags...)
}

// enricher runs the binary to completion and returns its exit code, stdout and stderr.
func (j *job) enricher(stdin string, args ...string) (int, string, string) {
	j.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), j.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(j.t, err)
	}
	return code, stdout.String(), stderr.String()
}

func (j *job) createTopics(partitions int) {
	j.t.Helper()
	code, _, stderr := j.enricher("", append([]string{"topics", "create", "--partitions", fmt.Sprint(partitions)}, j.topicArgs()...)...)
	require.Equal(j.t, 0, code, stderr)
}

// produce sends JSON lines through `enricher produce input|score`.
func (j *job) produce(kind string, lines ...string) {
	j.t.Helper()
	code, _, stderr := j.enricher(strings.Join(lines, "\n")+"\n", append([]string{"produce", kind}, j.topicArgs()...)...)
	require.Equal(j.t, 0, code, stderr)
}

// produceRaw writes records as they are (bad ones included) with murmur2 partitioning.
func (j *job) produceRaw(topic string, records ...*kgo.Record) {
	j.t.Helper()
	partitions := j.partitions(topic)
	for _, r := range records {
		r.Topic = topic
		j.kc.PartitionRecord(r, partitions)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(j.t, j.cl.ProduceSync(ctx, records...).FirstErr())
}

func (j *job) partitions(topic string) int32 {
	j.t.Helper()
	md, err := j.adm.ListTopics(context.Background(), topic)
	require.NoError(j.t, err)
	require.NoError(j.t, md[topic].Err)
	return int32(len(md[topic].Partitions))
}

// endOffsets sums the end offsets of a topic's partitions.
func (j *job) endOffsets(topic string) int64 {
	j.t.Helper()
	ends, err := j.adm.ListEndOffsets(context.Background(), topic)
	require.NoError(j.t, err)
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// waitChangelog waits until the table's changelog holds at least n records: the scores were applied.
func (j *job) waitChangelog(n int64) {
	j.t.Helper()
	require.Eventually(j.t, func() bool { return j.endOffsets(j.topics.Table()) >= n }, 60*time.Second, 100*time.Millisecond,
		"changelog %s never reached %d records", j.topics.Table(), n)
}

// records reads a topic from the start until it has n records or the timeout passes.
func (j *job) records(topic string, n int, timeout time.Duration) []*kgo.Record {
	j.t.Helper()
	cl, err := j.kc.Client(append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, j.readOpts...)...)
	require.NoError(j.t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		for _, fe := range fs.Errors() {
			j.t.Fatalf("consume %s: %v", topic, fe.Err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// proc is a running `enricher run` process.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
	err  error
}

// start runs `enricher run` for the job with extra flags.
func (j *job) start(stateDir string, extra ...string) *proc {
	j.t.Helper()
	args := append([]string{"run", "--state-dir", stateDir, "--shutdown-timeout", "60s", "--web-addr", "127.0.0.1:0"}, j.topicArgs()...)
	p := &proc{t: j.t, cmd: exec.Command(binary, append(args, extra...)...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), j.env...)
	stderr, err := p.cmd.StderrPipe()
	require.NoError(j.t, err)
	require.NoError(j.t, p.cmd.Start())
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	j.t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if j.t.Failed() {
			j.t.Logf("enricher run log (pid %d):\n%s", p.cmd.Process.Pid, p.logs())
		}
	})
	return p
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// waitLog waits until the process logged a line containing every one of parts.
func (p *proc) waitLog(timeout time.Duration, parts ...string) string {
	p.t.Helper()
	var found string
	require.Eventually(p.t, func() bool {
		for _, line := range strings.Split(p.logs(), "\n") {
			ok := true
			for _, part := range parts {
				ok = ok && strings.Contains(line, part)
			}
			if ok {
				found = line
				return true
			}
		}
		return false
	}, timeout, 50*time.Millisecond, "no log line with %q", parts)
	return found
}

// restoreLines returns the process's "partition restored" log lines. With --recover-ahead (the
// default) a partition is restored before the replica joins and again when it is assigned, so
// a start logs one line per partition at least.
func (p *proc) restoreLines() []string {
	var out []string
	for _, line := range strings.Split(p.logs(), "\n") {
		if strings.Contains(line, `msg="partition restored"`) {
			out = append(out, line)
		}
	}
	return out
}

// waitRunning waits until the processor got its partitions and restored them all.
func (p *proc) waitRunning(partitions int) {
	p.t.Helper()
	require.Eventually(p.t, func() bool {
		return strings.Count(p.logs(), "partition restored") >= partitions
	}, 90*time.Second, 50*time.Millisecond, "processor did not restore %d partitions", partitions)
}

// stop sends sig and waits for the process to exit; it returns the exit code.
func (p *proc) stop(sig syscall.Signal) int {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(sig))
	select {
	case <-p.done:
	case <-time.After(90 * time.Second):
		p.t.Fatalf("enricher did not exit after %v", sig)
	}
	return p.cmd.ProcessState.ExitCode()
}

// exited waits for the process to exit by itself and returns its exit code.
func (p *proc) exited(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		p.t.Fatalf("enricher still running after %s", timeout)
		return -1
	}
}

// ownBroker starts a single Kafka broker for one test (to stop and restart it) and returns its
// address and directory; it is stopped when the test ends.
func ownBroker(t *testing.T) (string, string) {
	t.Helper()
	needKafka(t)
	dir := t.TempDir()
	out, err := exec.Command("bash", filepath.Join(repoRoot, "scripts/kafka.sh"), "start", dir).Output()
	require.NoError(t, err, "start a broker of the test's own")
	t.Cleanup(func() { kafkaScript(t, "stop", dir) })
	return strings.TrimSpace(string(out)), dir
}

// kafkaScript runs scripts/kafka.sh ACTION DIR.
func kafkaScript(t *testing.T, action, dir string) {
	t.Helper()
	out, err := exec.Command("bash", filepath.Join(repoRoot, "scripts/kafka.sh"), action, dir).CombinedOutput()
	require.NoError(t, err, "kafka.sh %s: %s", action, out)
}

// running reports whether the process has not exited.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// ownCluster starts a 3-node Kafka cluster (replication 3, min.insync.replicas 2) for one test
// and returns its bootstrap list and directory (node i lives in DIR/node<i>).
func ownCluster(t *testing.T) (string, string) {
	t.Helper()
	needKafka(t)
	dir := t.TempDir()
	out, err := exec.Command("bash", filepath.Join(repoRoot, "scripts/kafka.sh"), "start-cluster", dir, "3").Output()
	require.NoError(t, err, "start a 3-node cluster")
	t.Cleanup(func() { kafkaScript(t, "stop", dir) })
	return strings.TrimSpace(string(out)), dir
}

// describe returns the job's topics as `enricher topics describe --json` reports them.
func (j *job) describe() []topology.TopicInfo {
	j.t.Helper()
	code, stdout, stderr := j.enricher("", append([]string{"topics", "describe", "--json"}, j.topicArgs()...)...)
	require.Equal(j.t, 0, code, stderr)
	var infos []topology.TopicInfo
	require.NoError(j.t, json.Unmarshal([]byte(stdout), &infos))
	return infos
}

// ownSecureBroker starts a broker whose client listener is SASL_SSL (scripts/kafka.sh
// start-secure) and returns its address and the CA file its certificate chains to.
func ownSecureBroker(t *testing.T) (string, string) {
	t.Helper()
	needKafka(t)
	dir := t.TempDir()
	out, err := exec.Command("bash", filepath.Join(repoRoot, "scripts/kafka.sh"), "start-secure", dir).Output()
	require.NoError(t, err, "start a SASL_SSL broker")
	t.Cleanup(func() { kafkaScript(t, "stop", dir) })
	return strings.TrimSpace(string(out)), filepath.Join(dir, "certs", "ca.pem")
}

// runningJob is a job with its topics created (4 partitions) and one `enricher run` that has
// restored all of them; it returns the job, the process and its state directory.
func runningJob(t *testing.T, extra ...string) (*job, *proc, string) {
	t.Helper()
	j := newJob(t)
	j.createTopics(partitions)
	state := t.TempDir()
	p := j.start(state, extra...)
	p.waitRunning(partitions)
	return j, p, state
}
