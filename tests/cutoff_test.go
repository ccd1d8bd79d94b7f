package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cutoffFor is how long the replica stays cut off: past the 6 s session timeout, so its
// partitions move, and past the 10 s transaction timeout, so the broker aborts the transaction
// it left open and its next request meets the fence.
const cutoffFor = 14 * time.Second

// A replica of two, under exactly-once and a steady load, is cut off from the broker: every
// byte between it and the broker is dropped by a TCP proxy on loopback (toxiproxy), with its
// connections held open, as a network partition does, and new ones dropped too. The other
// replica takes its partitions once its session times out. The cut is healed; the broker
// refuses what the cut-off replica still tries to commit, it rejoins, and a read_committed
// reader sees every input once, with its key's score.
func TestReplicaCutOffByProxy(t *testing.T) {
	t.Parallel()
	proxyPort := freePort(t)
	direct, dir := ownKafka(t, "start-proxied", strconv.Itoa(proxyPort))
	upstream, err := os.ReadFile(filepath.Join(dir, "proxied-upstream"))
	require.NoError(t, err)
	cut := newCutter(t, fmt.Sprintf("127.0.0.1:%d", proxyPort), strings.TrimSpace(string(upstream)))

	j := readCommitted(newJobOn(t, direct))
	j.createTopics(scalePartitions)
	kept := j.start(t.TempDir(), exactlyOnce...)
	victim := j.start(t.TempDir(), append([]string{"--brokers", cut.addr}, exactlyOnce...)...)
	waitBalanced(t, scalePartitions, kept, victim)
	c, l := j.steadyLoad(200)

	cut.cut()
	began := time.Now()
	waitBalancedWithin(t, time.Minute, scalePartitions, kept)
	moved := time.Since(began)
	c.waitProgress(t, 100)
	time.Sleep(max(0, cutoffFor-time.Since(began)))
	cut.heal()
	t.Logf("the replica was cut off for %s; its partitions moved after %s", time.Since(began).Round(time.Millisecond), moved.Round(time.Millisecond))
	assert.Less(t, moved, 20*time.Second, "its partitions move once its session times out")

	// Fenced: whatever it was committing when the cut came is refused, never committed.
	line := victim.waitLog(2*time.Minute, "exactly-once commit failed")
	t.Logf("cut-off replica: %s", line)
	assert.True(t, victim.running(), "a fenced replica rejoins; it does not exit")
	waitBalancedWithin(t, 2*time.Minute, scalePartitions, kept, victim)
	c.waitProgress(t, 200)

	sent := l.stop()
	eosVerdict(t, c, sent, want(60, 1000))
}

// cutter is a TCP proxy in front of a broker listener that can drop every byte both ways.
type cutter struct {
	t     *testing.T
	addr  string
	proxy *toxiproxy.Proxy
}

func newCutter(t *testing.T, listen, upstream string) *cutter {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "broker", listen, upstream)
	require.NoError(t, p.Start())
	t.Cleanup(p.Stop)
	return &cutter{t: t, addr: listen, proxy: p}
}

// cut drops all data in both directions until heal, on open and new connections alike: a
// timeout toxic of 0 never closes a connection, so the client sees silence, not a reset.
func (c *cutter) cut() {
	c.t.Helper()
	for _, stream := range []string{"upstream", "downstream"} {
		_, err := c.proxy.Toxics.AddToxicJson(strings.NewReader(
			fmt.Sprintf(`{"name":"cut-%s","type":"timeout","stream":%q,"attributes":{"timeout":0}}`, stream, stream)))
		require.NoError(c.t, err)
	}
}

func (c *cutter) heal() {
	c.t.Helper()
	for _, stream := range []string{"upstream", "downstream"} {
		require.NoError(c.t, c.proxy.Toxics.RemoveToxic(context.Background(), "cut-"+stream))
	}
}
