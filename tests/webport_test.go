package tests

import (
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A web port that cannot be bound stops the processor as a graceful stop does and exits 1 with
// one line naming the address; the stores were closed cleanly, so the next start restores no
// changelog record.
func TestTakenWebPort(t *testing.T) {
	t.Parallel()
	j, p, state := runningJob(t)
	j.scoreRound(20, 0)
	j.waitChangelog(20)
	require.Equal(t, 0, p.stop(syscall.SIGTERM))

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	addr := taken.Addr().String()
	code, _, stderr := j.enricher("", append([]string{"run", "--state-dir", state, "--web-addr", addr}, j.topicArgs()...)...)
	assert.Equal(t, 1, code, stderr)
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if strings.HasPrefix(l, "enricher run:") {
			lines = append(lines, l)
		}
	}
	require.Len(t, lines, 1, stderr)
	assert.Contains(t, lines[0], addr)

	again := j.start(state)
	again.waitRunning(partitions)
	for _, line := range again.waitRestores(partitions) {
		assert.Contains(t, line, "records=0 ", "a store that was closed cleanly restores nothing: %s", line)
	}
	require.Equal(t, 0, again.stop(syscall.SIGTERM))
}
