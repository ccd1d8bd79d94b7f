package tests

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The single broker stops for 30 s: `enricher run` does not exit while it is away, and the
// inputs sent before and after are all enriched with their scores.
func TestBrokerOutage(t *testing.T) {
	t.Parallel()
	addr, dir := ownBroker(t)
	j := newJobOn(t, addr)
	j.createTopics(partitions)
	p := j.start(t.TempDir())
	p.waitRunning(partitions)
	j.scoreRound(40, 500)
	j.waitChangelog(40)
	assert.Equal(t, want(40, 500), j.enrichOn(j.topics.Output, 40, "before"))

	kafkaScript(t, "stop", dir)
	outage := time.Now()
	for time.Since(outage) < 30*time.Second {
		require.True(t, p.running(), "enricher exited while the broker was away:\n%s", p.logs())
		time.Sleep(500 * time.Millisecond)
	}
	kafkaScript(t, "restart", dir)

	assert.Equal(t, want(40, 500), j.enrichOn(j.topics.Output, 40, "after"), "scores survive the outage")
	require.True(t, p.running())
	t.Logf("what enricher logged during the outage:\n%s", grepLines(p.logs(), "level=WARN", "level=ERROR"))
	assert.Equal(t, 0, p.stop(syscall.SIGTERM))
}

func grepLines(logs string, any ...string) string {
	out := ""
	n := 0
	for _, line := range splitLines(logs) {
		for _, a := range any {
			if contains(line, a) {
				if n < 12 {
					out += line + "\n"
				}
				n++
				break
			}
		}
	}
	return out + fmt.Sprintf("(%d such lines)", n)
}

func splitLines(s string) []string { return strings.Split(s, "\n") }
func contains(s, sub string) bool  { return strings.Contains(s, sub) }
