package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	path := needTool(t, "chromium")
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
	_, err := chromedp.Call(ctx, network.Enable, network.EnableParams{})
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
	out, err := b.textsOf(selector)
	require.NoError(b.t, err)
	return out
}

// textsOf is texts for a caller that handles the error (a condition of EventuallyWithT).
func (b *browser) textsOf(selector string) ([]string, error) {
	return chromedp.Run(b.ctx, chromedp.Evaluate[[]string](
		fmt.Sprintf("Array.from(document.querySelectorAll(%q)).map(e => e.innerText)", selector)))
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

// call GETs a replica's JSON endpoint with the token and decodes the body into out.
func call(t *testing.T, base, path, token string, out any) int {
	t.Helper()
	code, body := getWith(t, base+path, token)
	require.NoError(t, json.Unmarshal([]byte(body), out), "%s%s: %s", base, path, body)
	return code
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
	State   string          `json:"state"`
	Lag     map[int32]int64 `json:"lag"`
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

// get returns the status and body of a GET of url.
func get(t *testing.T, url string) (int, string) { return getWith(t, url, "") }

// getWith is get with the bearer token, when there is one.
func getWith(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// scrape returns every sample of /metrics by its name and labels as printed.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	code, body := get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, code)
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	return out
}
