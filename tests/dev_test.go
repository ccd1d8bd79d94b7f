package tests

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// `enricher dev` runs the whole job on the embedded broker; the CLI works against it; a restart
// keeps both the topics and the scores. This is the README's quick start, on a free port.
func TestDevModeKeepsScoresAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	startDev := func() *proc {
		p := &proc{t: t, cmd: exec.Command(binary, "dev", "--listen", addr,
			"--data-dir", filepath.Join(dir, "data"), "--state-dir", filepath.Join(dir, "state"), "--web-addr", "127.0.0.1:0"), done: make(chan struct{})}
		p.cmd.Stderr = &lockedWriter{p: p}
		require.NoError(t, p.cmd.Start())
		go func() { p.err = p.cmd.Wait(); close(p.done) }()
		t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
		p.waitRunning(4)
		return p
	}
	j := &job{t: t}
	cli := func(stdin string, args ...string) string {
		code, stdout, stderr := j.enricher(stdin, append(args, "--brokers", addr)...)
		require.Equal(t, 0, code, stderr)
		return stdout
	}

	p := startDev()
	p.waitLog(time.Second, "embedded broker started", "for demos and local development only")
	cli("", "produce", "score", "--key", "alice", "--score", "10")
	require.Eventually(t, func() bool {
		return strings.Contains(cli("", "consume", "table", "--idle", "500ms"), `"score":10`)
	}, 30*time.Second, 200*time.Millisecond)
	require.Equal(t, 0, p.stop(syscall.SIGTERM))

	p = startDev()
	cli("", "produce", "input", "--key", "alice", "--message", "after restart")
	cli("", "produce", "input", "--key", "bob", "--message", "no score")
	out := cli("", "consume", "output", "--max", "2", "--idle", "30s")
	assert.Contains(t, out, `{"key":"alice","message":"after restart","score":10}`)
	assert.Contains(t, out, `{"key":"bob","message":"no score","score":-1}`)
	require.Equal(t, 0, p.stop(syscall.SIGTERM))
}

// lockedWriter appends a process's output to its log.
type lockedWriter struct{ p *proc }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.log.Write(b)
}
