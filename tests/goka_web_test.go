package tests

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goka's own monitor and query, mounted under /goka/ beside enricher's pages, behind
// --web-token: the first request brings ?token=, the rest ride on the cookie it set (goka's
// pages request their data with neither the header nor ?token=).
func TestGokaWeb(t *testing.T) {
	t.Parallel()
	const token = "goka-web-token"
	j, p, _ := runningJob(t, "--web-token", token)
	base := p.webAddr()
	j.produce("score", scoreLine("alice", 77))
	j.waitChangelog(1)

	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	fetch := func(client *http.Client, path string) (*http.Response, string) {
		t.Helper()
		resp, err := client.Get(base + path)
		require.NoError(t, err, path)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err, path)
		return resp, string(b)
	}

	// Without the token or the cookie, every goka page and data request is refused.
	stranger := &http.Client{Timeout: 10 * time.Second}
	for _, path := range []string{"/goka/monitor/", "/goka/monitor/data/processor/0", "/goka/query/",
		"/goka/query/" + j.topics.Table() + "/alice"} {
		resp, _ := fetch(stranger, path)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
	}

	resp, body := fetch(browser, "/goka/monitor/?token="+url.QueryEscape(token))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	assert.True(t, strings.Contains(body, `href="/goka/monitor/processor/0">`+j.topics.Group+`</a>`),
		"the monitor lists the processor, linked under the mount point")
	require.Len(t, resp.Cookies(), 1, "the token sets the cookie")
	c := resp.Cookies()[0]
	assert.Equal(t, "/goka/", c.Path)
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, c.SameSite)

	// From here on the browser sends no token: the cookie alone.
	resp, body = fetch(browser, "/goka/monitor/processor/0")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, strings.Contains(body, "<h1>"+j.topics.Group+"</h1>"), "the processor page names the group")
	// The page's script asks for its data under the mount point (its template escapes "/" as "\/").
	assert.True(t, strings.Contains(strings.ReplaceAll(body, `\/`, "/"), `d3.json("/goka/monitor/data/processor/0"`),
		"the processor page's data request is under /goka/monitor")

	resp, body = fetch(browser, "/goka/monitor/data/processor/0")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var stats struct {
		Group map[string]struct {
			TableStats *struct{ Status int }
			Input      map[string]any
		}
	}
	require.NoError(t, json.Unmarshal([]byte(body), &stats), body)
	assert.Len(t, stats.Group, partitions, "one entry per partition the processor runs")
	for part, ps := range stats.Group {
		assert.NotNil(t, ps.TableStats, "partition %s has its table", part)
		assert.Contains(t, ps.Input, j.topics.Scores, "partition %s consumes the scores", part)
	}

	resp, body = fetch(browser, "/goka/query/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, strings.Contains(body, `href="/goka/query/`+j.topics.Table()+`"`), "the table is the query's source")

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		resp, body := fetch(browser, "/goka/query/"+j.topics.Table()+"/alice")
		assert.Equal(c, http.StatusOK, resp.StatusCode)
		text := html.UnescapeString(body)
		assert.Contains(c, text, `"key": "alice"`)
		assert.Contains(c, text, `"score": 77`)
	}, 30*time.Second, 100*time.Millisecond, "goka's query never showed alice's score")
	resp, body = fetch(browser, "/goka/query/"+j.topics.Table()+"/nobody")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, html.UnescapeString(body), "Key 'nobody' not found", "a key without a score")

	// Indexes goka's monitor would panic on are 404, and the server stays up.
	for _, path := range []string{"/goka/monitor/processor/1", "/goka/monitor/processor/5", "/goka/monitor/data/processor/5",
		"/goka/monitor/view/0", "/goka/monitor/data/view/0"} {
		resp, body := fetch(browser, path)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, "%s: %s", path, body)
	}
	resp, _ = fetch(stranger, "/healthz")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, body = fetch(browser, "/goka/monitor/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, strings.Contains(body, j.topics.Group))
	assert.NotContains(t, p.logs(), "http: panic serving", "no handler panicked")
}
