package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/tester"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/job"
	"github.com/enricher/enricher/internal/store"
	"github.com/enricher/enricher/topology"
)

// testProcessor is a goka processor of group on goka's in-memory tester: real enough for goka's
// monitor pages, with no broker.
func testProcessor(t *testing.T, group string) *goka.Processor {
	t.Helper()
	g := goka.DefineGroup(goka.Group(group),
		goka.Input("in", new(codec.String), func(goka.Context, any) {}),
		goka.Persist(new(codec.String)))
	p, err := goka.NewProcessor(nil, g, goka.WithTester(tester.New(t)),
		goka.WithLogger(job.GokaLogger(slog.New(slog.DiscardHandler))))
	require.NoError(t, err)
	return p
}

// attached is p with a one-partition layout and a lookup that fails the test if it is called.
func attached(t *testing.T, p *goka.Processor) job.Attached {
	return job.Attached{Processor: p, Layout: topology.Layout{Partitions: 1},
		Lookup: func(int32, string) (store.Lookup, error) {
			t.Error("lookup called")
			return store.Lookup{}, errors.New("not expected")
		}}
}

// run runs p until the test ends and returns once it is running; stop stops it and waits.
func run(t *testing.T, p *goka.Processor) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			assert.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	require.Eventually(t, func() bool { return p.StateReader().IsState(goka.ProcStateRunning) },
		10*time.Second, 10*time.Millisecond, "the processor never ran")
	return stop
}

func TestGokaPagesAnswer503BeforeAttach(t *testing.T) {
	h := newServer(t, "").Handler()
	for _, path := range []string{"/goka/monitor/", "/goka/monitor/processor/0", "/goka/monitor/data/processor/0",
		"/goka/query/", "/goka/query/g-table/k", "/goka/anything"} {
		w := serve(h, path, "")
		assert.Equal(t, http.StatusServiceUnavailable, w.Code, path)
		assert.Contains(t, w.Body.String(), "has not started", path)
	}
}

func TestGokaPagesFollowTheAttachedProcessor(t *testing.T) {
	s := newServer(t, "")
	h := s.Handler()
	s.Attach(attached(t, testProcessor(t, "first")))
	w := serve(h, "/goka/monitor/", "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Contains(t, w.Body.String(), `href="/goka/monitor/processor/0">first</a>`, "links carry the mount point")

	// A restart attaches a new processor: the pages show it alone, at index 0.
	s.Attach(attached(t, testProcessor(t, "second")))
	for _, path := range []string{"/goka/monitor/", "/goka/monitor/processor/0"} {
		w = serve(h, path, "")
		require.Equal(t, http.StatusOK, w.Code, path)
		assert.Contains(t, w.Body.String(), "second", path)
		assert.NotContains(t, w.Body.String(), "first", path)
	}
	w = serve(h, "/goka/monitor/data/processor/0", "")
	require.Equal(t, http.StatusOK, w.Code)
	var stats struct{ Group map[string]any }
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &stats), w.Body.String())
	assert.NotNil(t, stats.Group)
	assert.Equal(t, http.StatusNotFound, status(h, "/goka/monitor/data/processor/1", ""), "one processor, never two")

	w = serve(h, "/goka/query/", "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Contains(t, w.Body.String(), `href="/goka/query/g-table"`, "the table is the query's source")
}

// A processor whose Run returned is not shown: the Runner is building the next one.
func TestGokaPagesHideAStoppedProcessor(t *testing.T) {
	s := newServer(t, "")
	h := s.Handler()
	p := testProcessor(t, "dies")
	s.Attach(attached(t, p))
	stop := run(t, p)
	assert.Equal(t, http.StatusOK, status(h, "/goka/monitor/", ""))
	stop()
	w := serve(h, "/goka/monitor/", "")
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Contains(t, w.Body.String(), "stopped")

	s.Attach(attached(t, testProcessor(t, "next")))
	w = serve(h, "/goka/monitor/", "")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Contains(t, w.Body.String(), "next")
}

// Pages are served while Attach swaps the router (run with -race): each answer is whole and
// from one processor.
func TestGokaPagesSwapWhileServed(t *testing.T) {
	s := newServer(t, "")
	h := s.Handler()
	procs := []*goka.Processor{testProcessor(t, "one"), testProcessor(t, "two")}
	s.Attach(attached(t, procs[0]))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 50 {
			s.Attach(attached(t, procs[i%2]))
		}
	}()
	for range 50 {
		w := serve(h, "/goka/monitor/processor/0", "")
		if assert.Equal(t, http.StatusOK, w.Code) {
			body := w.Body.String()
			assert.True(t, strings.Contains(body, "one") != strings.Contains(body, "two"), "one processor per page")
		}
	}
	wg.Wait()
}

// goka's monitor indexes its slices after checking idx > len: every index it has no processor
// or view for must be answered 404 before goka sees it.
func TestGokaMonitorBounds(t *testing.T) {
	s := newServer(t, "")
	s.Attach(attached(t, testProcessor(t, "bounds")))
	h := s.Handler()
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/goka/monitor/processor/0", http.StatusOK},
		{"/goka/monitor/data/processor/0", http.StatusOK},
		{"/goka/monitor/processor/1", http.StatusNotFound}, // len: goka's own check lets it through
		{"/goka/monitor/processor/2", http.StatusNotFound},
		{"/goka/monitor/processor/-1", http.StatusNotFound},
		{"/goka/monitor/processor/+1", http.StatusNotFound},
		{"/goka/monitor/processor/x", http.StatusNotFound},
		{"/goka/monitor/processor/0x0", http.StatusNotFound},
		{"/goka/monitor/processor/99999999999999999999999", http.StatusNotFound},
		{"/goka/monitor/processor/%20", http.StatusNotFound},
		{"/goka/monitor/data/processor/1", http.StatusNotFound},
		{"/goka/monitor/data/processor/5", http.StatusNotFound},
		{"/goka/monitor/data/processor/-1", http.StatusNotFound},
		{"/goka/monitor/data/processor/abc", http.StatusNotFound},
		{"/goka/monitor/data/view/0", http.StatusNotFound}, // no views attached
		{"/goka/monitor/data/view/1", http.StatusNotFound},
		{"/goka/monitor/data/view/x", http.StatusNotFound},
		{"/goka/monitor/data/table/0", http.StatusNotFound},
		{"/goka/monitor/view/0", http.StatusNotFound},
		{"/goka/monitor/view/1", http.StatusNotFound},
		{"/goka/monitor/view/-1", http.StatusNotFound},
		{"/goka/monitor/view/y", http.StatusNotFound},
	} {
		t.Run(tc.path, func(t *testing.T) {
			var got int
			require.NotPanics(t, func() { got = status(h, tc.path, "") })
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestGokaTokenAndCookie(t *testing.T) {
	const token = "s3cret"
	s := newServer(t, token)
	s.Attach(attached(t, testProcessor(t, "guarded")))
	h := s.Handler()

	// The cookie a valid token sets.
	w := serve(h, "/goka/monitor/?token="+token, "")
	require.Equal(t, http.StatusOK, w.Code)
	set := w.Result().Cookies()
	require.Len(t, set, 1)
	c := set[0]
	assert.Equal(t, gokaCookie, c.Name)
	assert.Equal(t, "/goka/", c.Path)
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, c.SameSite)
	assert.NotContains(t, c.Value, token, "the cookie does not hold the token")
	good := c.Value

	for _, tc := range []struct {
		name, path, header, cookie string
		want                       int
		setsCookie                 bool
	}{
		{name: "no token", path: "/goka/monitor/", want: http.StatusUnauthorized},
		{name: "data without token", path: "/goka/monitor/data/processor/0", want: http.StatusUnauthorized},
		{name: "query without token", path: "/goka/query/g-table/k", want: http.StatusUnauthorized},
		{name: "wrong token", path: "/goka/monitor/?token=wrong", want: http.StatusUnauthorized},
		{name: "wrong header", path: "/goka/monitor/", header: "Bearer wrong", want: http.StatusUnauthorized},
		{name: "query token", path: "/goka/monitor/?token=" + token, want: http.StatusOK, setsCookie: true},
		{name: "header", path: "/goka/monitor/data/processor/0", header: "Bearer " + token, want: http.StatusOK, setsCookie: true},
		{name: "cookie", path: "/goka/monitor/", cookie: good, want: http.StatusOK},
		{name: "cookie on data", path: "/goka/monitor/data/processor/0", cookie: good, want: http.StatusOK},
		{name: "cookie on processor page", path: "/goka/monitor/processor/0", cookie: good, want: http.StatusOK},
		{name: "cookie on query", path: "/goka/query/", cookie: good, want: http.StatusOK},
		{name: "cookie, out of bounds", path: "/goka/monitor/processor/1", cookie: good, want: http.StatusNotFound},
		{name: "wrong cookie", path: "/goka/monitor/", cookie: "0000", want: http.StatusUnauthorized},
		{name: "token as cookie", path: "/goka/monitor/", cookie: token, want: http.StatusUnauthorized},
		{name: "cookie beyond goka: scores", path: "/scores/k", cookie: good, want: http.StatusUnauthorized},
		{name: "cookie beyond goka: api", path: "/api/replica", cookie: good, want: http.StatusUnauthorized},
		{name: "cookie beyond goka: own monitor", path: "/monitor", cookie: good, want: http.StatusUnauthorized},
		{name: "cookie on a path cleaned out of goka", path: "/goka/../scores/k", cookie: good, want: http.StatusUnauthorized},
		{name: "cookie on a dot-dot path", path: "/goka/monitor/../../metrics", cookie: good, want: http.StatusUnauthorized},
		{name: "token beyond goka sets no cookie", path: "/api/replica?token=" + token, want: http.StatusOK},
		{name: "redirect keeps the token", path: "/goka/monitor?token=" + token, want: http.StatusFound, setsCookie: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tc.path, nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			if tc.cookie != "" {
				r.AddCookie(&http.Cookie{Name: gokaCookie, Value: tc.cookie})
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			assert.Equal(t, tc.want, w.Code, w.Body.String())
			assert.Equal(t, tc.setsCookie, len(w.Result().Cookies()) == 1, "sets the cookie")
		})
	}

	w = serve(h, "/goka/monitor?token="+token, "")
	assert.Equal(t, "/goka/monitor/?token="+token, w.Header().Get("Location"))

	// The cookie of one token does not open a server with another.
	other := newServer(t, "other")
	other.Attach(attached(t, testProcessor(t, "other")))
	r := httptest.NewRequest(http.MethodGet, "/goka/monitor/", nil)
	r.AddCookie(&http.Cookie{Name: gokaCookie, Value: good})
	w = httptest.NewRecorder()
	other.Handler().ServeHTTP(w, r)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
}

func TestGokaPathsWithoutTokenAreOpen(t *testing.T) {
	s := newServer(t, "")
	s.Attach(attached(t, testProcessor(t, "open")))
	w := serve(s.Handler(), "/goka/monitor/", "")
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Empty(t, w.Result().Cookies(), "no token, no cookie")
}

func TestScoreValue(t *testing.T) {
	for _, tc := range []struct {
		name    string
		la      localAnswer
		want    any
		wantErr string
	}{
		{name: "score", la: localAnswer{status: http.StatusOK, mode: active, answer: answer{Key: "k", Score: score(7)}},
			want: codecs.Score{Key: "k", Score: 7}},
		{name: "no score", la: localAnswer{status: http.StatusNotFound, mode: active, answer: answer{Key: "k", Note: noScore}}},
		{name: "recovering", la: localAnswer{status: http.StatusServiceUnavailable, mode: active,
			answer: answer{Reason: "partition 3 is recovering on this replica"}}, wantErr: "partition 3 is recovering"},
		{name: "not here", la: localAnswer{status: http.StatusServiceUnavailable,
			answer: answer{Reason: "partition 3 is not on this replica"}}, wantErr: "not on this replica"},
		{name: "standby copy", la: localAnswer{status: http.StatusOK, mode: standby, answer: answer{Key: "k", Score: score(7)}},
			wantErr: "not assigned to this replica"},
		{name: "standby copy without score", la: localAnswer{status: http.StatusNotFound, mode: standby}, wantErr: "not assigned"},
		{name: "warm-up copy", la: localAnswer{status: http.StatusOK, mode: warmup, answer: answer{Key: "k", Score: score(7)}},
			wantErr: "not assigned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := scoreValue(tc.la, 3)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// The query page reads this replica's committed lookup of the key's partition, never goka's
// Processor.Get, and says why it cannot answer.
func TestGokaQueryReadsTheCommittedLookup(t *testing.T) {
	s := newServer(t, "")
	h := s.Handler()
	p := testProcessor(t, "query")
	a := attached(t, p)
	a.Layout.Partitions = 1
	var mu sync.Mutex
	var asked []string
	a.Lookup = func(part int32, key string) (store.Lookup, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, fmt.Sprintf("%d/%s", part, key))
		return store.Lookup{Open: true, Found: true, Score: 42}, nil
	}
	s.Attach(a)

	w := serve(h, "/goka/query/g-table/alice", "")
	require.Equal(t, http.StatusOK, w.Code)
	assert.Contains(t, w.Body.String(), "partition 0 is not on this replica", "not running yet: no answer")

	run(t, p)
	w = serve(h, "/goka/query/g-table/alice", "")
	require.Equal(t, http.StatusOK, w.Code)
	// goka runs the partitions the group assigned here: the answer is the lookup's.
	assert.Contains(t, w.Body.String(), "&#34;score&#34;: 42")
	mu.Lock()
	assert.Equal(t, []string{"0/alice"}, asked, "the committed lookup of the key's partition")
	mu.Unlock()
}
