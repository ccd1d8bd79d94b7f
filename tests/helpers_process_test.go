package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// proc is a running `enricher run` process.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
	err  error
	web  string // the web server's base URL, once read from the log
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
		// A line longer than the scanner's buffer would end the reading, and a process whose
		// stderr pipe is full blocks on its next log line.
		sc.Buffer(make([]byte, 64<<10), 64<<20)
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

// waitRestores waits until the process logged at least n "partition restored" lines and returns
// them. /readyz can turn ready a moment before the last line reaches the log.
func (p *proc) waitRestores(n int) []string {
	p.t.Helper()
	var lines []string
	require.Eventually(p.t, func() bool {
		lines = p.restoreLines()
		return len(lines) >= n
	}, 30*time.Second, 20*time.Millisecond, "fewer than %d partition restores were logged", n)
	return lines
}

// readiness is the part of /readyz's body the tests read.
type readiness struct {
	Ready  bool    `json:"ready"`
	Reason string  `json:"reason"`
	Owned  []int32 `json:"owned"`
}

// ready asks the replica's /readyz; it fails while the replica cannot be asked.
func (p *proc) ready() (readiness, error) {
	var r readiness
	resp, err := http.Get(p.webAddr() + "/readyz")
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	return r, json.NewDecoder(resp.Body).Decode(&r)
}

// waitRunning waits until the replica's /readyz says it owns partitions partitions, every one
// of them recovered and running.
func (p *proc) waitRunning(partitions int) {
	p.t.Helper()
	require.EventuallyWithT(p.t, func(c *assert.CollectT) {
		r, err := p.ready()
		if assert.NoError(c, err) {
			assert.True(c, r.Ready, "ready")
			assert.Len(c, r.Owned, partitions, "owned")
		}
	}, 90*time.Second, 50*time.Millisecond, "the replica never ran %d partitions", partitions)
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

// running reports whether the process has not exited.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func grepLines(logs string, any ...string) string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		for _, a := range any {
			if strings.Contains(line, a) {
				out = append(out, line)
				break
			}
		}
	}
	n := len(out)
	return strings.Join(out[:min(n, 12)], "\n") + fmt.Sprintf("\n(%d such lines)", n)
}

// assigned returns the partitions the replica's /readyz says it owns; none while it cannot
// be asked.
func (p *proc) assigned() map[int]bool {
	out := map[int]bool{}
	r, err := p.ready()
	if err != nil {
		return out
	}
	for _, part := range r.Owned {
		out[int(part)] = true
	}
	return out
}

// waitBalanced waits until every replica's /readyz says it is ready, together they own each of
// the partitions once, and each owns its share (counts differ by one at most): a joining
// replica owns its share once its warm-up copies have caught up.
func waitBalanced(t *testing.T, partitions int, replicas ...*proc) {
	t.Helper()
	waitBalancedWithin(t, 120*time.Second, partitions, replicas...)
}

// waitBalancedWithin is waitBalanced with its own timeout, for tables of millions of keys.
func waitBalancedWithin(t *testing.T, timeout time.Duration, partitions int, replicas ...*proc) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		seen := map[int32]int{}
		for _, p := range replicas {
			r, err := p.ready()
			if !assert.NoError(c, err) || !assert.True(c, r.Ready, "replica ready") {
				return
			}
			assert.InDelta(c, float64(partitions)/float64(len(replicas)), len(r.Owned), 0.999, "partitions owned by one replica")
			for _, part := range r.Owned {
				seen[part]++
			}
		}
		assert.Len(c, seen, partitions, "partitions owned")
		for part, n := range seen {
			assert.Equal(c, 1, n, "owners of partition %d", part)
		}
	}, timeout, 100*time.Millisecond, "replicas never split the %d partitions", partitions)
}

var webAddrRE = regexp.MustCompile(`msg="web server listening" addr=(\S+)`)

// webAddr returns the address the replica's web server listens on.
func (p *proc) webAddr() string {
	p.t.Helper()
	p.mu.Lock()
	web := p.web
	p.mu.Unlock()
	if web != "" {
		return web
	}
	line := p.waitLog(30*time.Second, "web server listening")
	m := webAddrRE.FindStringSubmatch(line)
	require.NotNil(p.t, m, line)
	p.mu.Lock()
	p.web = "http://" + m[1]
	p.mu.Unlock()
	return "http://" + m[1]
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
