package tests

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The monitor, query and group pages work in a browser that reaches nothing but this host: the
// monitor draws a row per partition with its state, the query page finds a scored key and says
// "no score" for another, and no page asks for anything from another host.
func TestPagesWorkOffline(t *testing.T) {
	t.Parallel()
	const token = "pages-token"
	j, p, _ := runningJob(t, "--web-token", token)
	base := p.webAddr()
	j.produce("score", scoreLine("alice", 42))
	j.waitChangelog(1)
	b := newBrowser(t)

	b.open(base + "/monitor?token=" + token)
	b.count(`#partitions tbody tr[data-state="running"][data-mode="active"]`, partitions)
	rows := b.texts("#partitions tbody tr")
	require.Len(t, rows, partitions)
	for i, row := range rows {
		assert.True(t, strings.HasPrefix(row, fmt.Sprint(i)), "row %d: %q", i, row)
		assert.Contains(t, row, "running", "row %d", i)
	}
	b.count(`#processor-state .running`, 1)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, id := range []string{"#input-rate", "#output-rate"} {
			rate, err := b.textsOf(id)
			if assert.NoError(c, err) && assert.Len(c, rate, 1) {
				_, err := strconv.ParseFloat(rate[0], 64)
				assert.NoError(c, err, "%s shows a rate", id)
			}
		}
	}, 30*time.Second, 250*time.Millisecond)
	b.screenshot("monitor-page.png")

	status, score := b.lookup(base, token, "alice")
	assert.Equal(t, "200", status)
	assert.Equal(t, "42", score)
	b.screenshot("query-page.png")
	status, score = b.lookup(base, token, "nobody")
	assert.Equal(t, "404", status)
	assert.Equal(t, "none", score)
	assert.Contains(t, b.texts("#a-status")[0], "no score")

	b.open(base + "/group?token=" + token)
	b.count(`#members tbody tr.member[data-state="running"]`, 1)
	b.screenshot("group-page.png")

	got := b.requests()
	require.NotEmpty(t, got)
	for _, u := range got {
		assert.True(t, strings.HasPrefix(u, base+"/"), "a page requested %s, outside %s", u, base)
	}
	t.Logf("%d requests, all to %s", len(got), base)
}

// Three replicas, six partitions: every key asked on every replica gets its score from the
// replica that owns it (the calls between replicas carry --web-token), and a key without one
// gets 404. Then the owner of some keys is SIGKILLed: until its partitions fail over, a replica
// without a standby copy of a key's partition answers 503 (never 404), the replica with the
// standby copy (--standby-replicas 1) answers from it and says so; after the failover every
// replica gives the right score again. The group page shows three members, then two.
func TestAnyKeyFromAnyReplica(t *testing.T) {
	t.Parallel()
	const token, keys = "between-replicas", 60
	j := newJob(t)
	j.createTopics(scalePartitions)
	reps := []*proc{
		j.start(t.TempDir(), "--web-token", token, "--standby-replicas", "1"),
		j.start(t.TempDir(), "--web-token", token, "--standby-replicas", "1"),
		j.start(t.TempDir(), "--web-token", token, "--standby-replicas", "1"),
	}
	waitBalanced(t, scalePartitions, reps...)
	bases := []string{reps[0].webAddr(), reps[1].webAddr(), reps[2].webAddr()}
	j.scoreRound(keys, 500)
	j.waitChangelog(keys)
	owner := owners(t, bases[0], token, 3, scalePartitions)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var g groupPage
		assert.Equal(c, http.StatusOK, call(t, bases[1], "/api/group", token, &g))
		assert.Len(c, g.Lag, scalePartitions, "a lag for every partition")
		for p, n := range g.Lag {
			assert.Zero(c, n, "partition %d: every score consumed and committed", p)
		}
	}, 60*time.Second, 250*time.Millisecond)

	ask := func(base, key string) (int, scoreAnswer) {
		var a scoreAnswer
		code := call(t, base, "/scores/"+url.PathEscape(key), token, &a)
		return code, a
	}
	for _, base := range bases {
		for i := range keys {
			key := fmt.Sprintf("k%d", i)
			code, a := ask(base, key)
			require.Equal(t, http.StatusOK, code, "%s on %s: %+v", key, base, a)
			require.NotNil(t, a.Score)
			assert.Equal(t, int64(500+i), *a.Score, "%s on %s", key, base)
			assert.Equal(t, owner[a.Partition], "http://"+a.Owner, "%s on %s", key, base)
			assert.False(t, a.Standby)
		}
		for i := range 10 {
			code, a := ask(base, fmt.Sprintf("nobody-%d", i))
			assert.Equal(t, http.StatusNotFound, code, "%+v", a)
			assert.Nil(t, a.Score)
		}
	}

	b := newBrowser(t)
	b.open(bases[0] + "/group?token=" + token)
	b.count(`#members tbody tr.member[data-state="running"]`, 3)

	// The victim's keys, asked on the plain replica and on the standby replica until both give
	// every one of them its score from the new owner.
	victim := reps[1]
	var victimKeys []int
	for i := range keys {
		_, a := ask(bases[0], fmt.Sprintf("k%d", i))
		if owner[a.Partition] == bases[1] {
			victimKeys = append(victimKeys, i)
		}
	}
	require.NotEmpty(t, victimKeys)
	// Which survivor holds the standby copy of each partition.
	standbyOn := map[int32]int{}
	for r, p := range []*proc{reps[0], reps[2]} {
		for _, part := range p.copies(token)["standby"] {
			standbyOn[int32(part)] = r
		}
	}
	victim.stop(syscall.SIGKILL)
	t0 := time.Now()
	var unavailable, fromStandby int
	var failedOver time.Duration
	for failedOver == 0 {
		require.Less(t, time.Since(t0), 2*time.Minute, "the victim's partitions never failed over")
		settled := true
		for _, i := range victimKeys {
			key := fmt.Sprintf("k%d", i)
			for r, base := range []string{bases[0], bases[2]} {
				code, a := ask(base, key)
				switch code {
				case http.StatusOK:
					require.NotNil(t, a.Score)
					require.Equal(t, int64(500+i), *a.Score, "%s on %s: %+v", key, base, a)
					if a.Standby {
						fromStandby++
						holder, ok := standbyOn[a.Partition]
						assert.True(t, ok && holder == r, "partition %d answered from a standby copy by a replica without one", a.Partition)
						assert.NotEmpty(t, a.Reason)
						settled = false
					}
				case http.StatusServiceUnavailable:
					unavailable++
					assert.Nil(t, a.Score)
					assert.NotEmpty(t, a.Reason)
					settled = false
				default:
					require.Failf(t, "a false answer while the owner was gone", "%s on %s: %d %+v", key, base, code, a)
				}
			}
		}
		if settled {
			failedOver = time.Since(t0)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("after SIGKILL of the owner of %d keys: %d answers 503 and %d from the standby copy; every key right again after %s",
		len(victimKeys), unavailable, fromStandby, failedOver.Round(time.Millisecond))
	assert.Positive(t, unavailable, "the plain replica answered 503 while the owner was gone")
	assert.Positive(t, fromStandby, "the standby replica answered from its copy while the owner was gone")

	owners(t, bases[2], token, 2, scalePartitions)
	b.open(bases[2] + "/group?token=" + token)
	b.count(`#members tbody tr.member[data-state="running"]`, 2)
	b.screenshot("group-page-after-kill.png")
}
