package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// browser is a headless Chromium whose network ends at 127.0.0.1: every other host fails to
// resolve, and anything that would still leave goes to a proxy on a closed port. It records
// every URL a page requests.
type browser struct {
	t   *testing.T
	ctx context.Context
	mu  sync.Mutex
	got []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if inCI {
			t.Fatal("chromium not installed (scripts/test.sh installs it)")
		}
		t.Skip("chromium not installed")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 900),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"),
		chromedp.ProxyServer("http://127.0.0.1:9"),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx}
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			b.mu.Lock()
			b.got = append(b.got, e.Request.URL)
			b.mu.Unlock()
		}
	}))
	_, err = chromedp.Call(ctx, network.Enable, network.EnableParams{})
	require.NoError(t, err)
	return b
}

// open navigates to url and waits for the page's body.
func (b *browser) open(url string) {
	b.t.Helper()
	require.NoError(b.t, chromedp.Do(b.ctx, chromedp.Navigate(url), chromedp.WaitReady("body")))
}

// count waits until selector matches n elements, and fails with what matched last.
func (b *browser) count(selector string, n int) {
	b.t.Helper()
	require.EventuallyWithT(b.t, func(c *assert.CollectT) {
		got, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", selector)))
		assert.NoError(c, err)
		assert.Equal(c, n, got, selector)
	}, 60*time.Second, 200*time.Millisecond)
}

// texts returns the text of every element selector matches.
func (b *browser) texts(selector string) []string {
	b.t.Helper()
	out, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](
		fmt.Sprintf("Array.from(document.querySelectorAll(%q)).map(e => e.innerText)", selector)))
	require.NoError(b.t, err)
	return out
}

// screenshot saves the page as name in the artifacts directory.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	shot, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	require.NoError(b.t, err)
	dir := os.Getenv("ENRICHER_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(repoRoot, "tests", "artifacts")
	}
	require.NoError(b.t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, name)
	require.NoError(b.t, os.WriteFile(path, shot, 0o644))
	b.t.Logf("screenshot: %s", path)
}

// requests returns every URL the pages requested so far.
func (b *browser) requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.got...)
}

// lookup asks the query page for key and returns the answer's status and score as shown.
func (b *browser) lookup(base, token, key string) (status, score string) {
	b.t.Helper()
	b.open(base + "/query?token=" + url.QueryEscape(token))
	require.NoError(b.t, chromedp.Do(b.ctx, chromedp.WaitVisible("#key"), chromedp.SendKeys("#key", key+"\n"),
		chromedp.WaitVisible(`#answer[data-status]`)))
	attr, err := chromedp.Run(b.ctx, chromedp.AttributeValue("#answer", "data-status"))
	require.NoError(b.t, err)
	score, err = chromedp.Run(b.ctx, chromedp.Text("#a-score"))
	require.NoError(b.t, err)
	return attr.Value, score
}

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

// call GETs a replica's JSON endpoint with the token and decodes the body into out.
func call(t *testing.T, base, path, token string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(body, out), "%s%s: %s", base, path, body)
	return resp.StatusCode
}

// scoreAnswer is /scores/{key}'s body.
type scoreAnswer struct {
	Key        string `json:"key"`
	Score      *int64 `json:"score"`
	Partition  int32  `json:"partition"`
	Owner      string `json:"owner"`
	AnsweredBy string `json:"answered_by"`
	Standby    bool   `json:"standby"`
	Reason     string `json:"reason"`
}

// groupPage is the part of /api/group the tests read.
type groupPage struct {
	State   string `json:"state"`
	Members []struct {
		Advert struct {
			Web string `json:"web"`
		} `json:"advert"`
		Partitions []int32 `json:"partitions"`
		State      string  `json:"state"`
	} `json:"members"`
}

// owners returns, by partition, the web address of its owner on the group page, once the group
// is stable with n members that cover every partition.
func owners(t *testing.T, base, token string, n, parts int) map[int32]string {
	t.Helper()
	var out map[int32]string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var g groupPage
		assert.Equal(c, http.StatusOK, call(t, base, "/api/group", token, &g))
		out = map[int32]string{}
		for _, m := range g.Members {
			for _, p := range m.Partitions {
				out[p] = "http://" + m.Advert.Web
			}
		}
		assert.Equal(c, "Stable", g.State)
		assert.Len(c, g.Members, n)
		assert.Len(c, out, parts)
	}, 90*time.Second, 250*time.Millisecond, "the group never showed %d members owning %d partitions", n, parts)
	return out
}

// Three replicas, six partitions: every key asked on every replica gets its score from the
// replica that owns it (the calls between replicas carry --web-token), and a key without one
// gets 404. Then the owner of some keys is SIGKILLed: until its partitions fail over, a replica
// without a standby copy answers those keys 503 (never 404), the --standby replica answers
// them from its standby copy and says so; after the failover every replica gives the right
// score again. The group page shows three members, then two.
func TestAnyKeyFromAnyReplica(t *testing.T) {
	t.Parallel()
	const token, keys = "between-replicas", 60
	j := newJob(t)
	j.createTopics(scalePartitions)
	reps := []*proc{
		j.start(t.TempDir(), "--web-token", token),
		j.start(t.TempDir(), "--web-token", token),
		j.start(t.TempDir(), "--web-token", token, "--standby"),
	}
	waitBalanced(t, scalePartitions, reps...)
	bases := []string{reps[0].webAddr(), reps[1].webAddr(), reps[2].webAddr()}
	j.scoreRound(keys, 500)
	j.waitChangelog(keys)
	owner := owners(t, bases[0], token, 3, scalePartitions)

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
						assert.Equal(t, 1, r, "only the --standby replica answers from a standby copy")
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
