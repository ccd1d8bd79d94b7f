package web

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/job"
	"github.com/enricher/enricher/internal/members"
	"github.com/enricher/enricher/topology"
)

var testTopics = topology.Topics{Group: "g", Input: "in", Scores: "sc", Output: "out"}

func newServer(t *testing.T, token string) *Server {
	t.Helper()
	s, err := New(Config{Addr: "127.0.0.1:0", Token: token, Topics: testTopics, Stats: job.NewStats()})
	require.NoError(t, err)
	return s
}

func serve(h http.Handler, path, header string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if header != "" {
		r.Header.Set("Authorization", header)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func status(h http.Handler, path, header string) int { return serve(h, path, header).Code }

func TestTokenProtectsAllButHealth(t *testing.T) {
	h := newServer(t, "s3cret").Handler()
	for _, tc := range []struct {
		path, header string
		want         int
	}{
		{"/healthz", "", http.StatusOK},
		{"/readyz", "", http.StatusServiceUnavailable}, // open, and not ready: no processor yet
		{"/metrics", "", http.StatusUnauthorized},
		{"/metrics", "Bearer wrong", http.StatusUnauthorized},
		{"/metrics", "Bearer s3cret", http.StatusOK},
		{"/metrics?token=s3cret", "", http.StatusOK},
		{"/monitor", "", http.StatusUnauthorized},
		{"/monitor", "Bearer s3cret", http.StatusOK},
		{"/scores/k", "", http.StatusUnauthorized},
		{"/scores/k", "Bearer s3cret", http.StatusServiceUnavailable}, // no processor attached yet
		{"/api/group", "", http.StatusUnauthorized},
		{"/assets/app.js", "", http.StatusOK}, // no data: a page's script loads without the token
	} {
		assert.Equal(t, tc.want, status(h, tc.path, tc.header), "%s %q", tc.path, tc.header)
	}
	open := newServer(t, "").Handler()
	assert.Equal(t, http.StatusOK, status(open, "/metrics", ""), "no token: open")
}

func TestPagesAreServedFromTheBinary(t *testing.T) {
	h := newServer(t, "").Handler()
	for path, want := range map[string]string{
		"/":                    `data-page="index"`,
		"/monitor":             `data-page="monitor"`,
		"/monitor/processor/0": `data-page="monitor"`, // goka's monitor address
		"/query":               `data-page="query"`,
		"/query?key=alice":     `data-page="query"`,
		"/group":               `data-page="group"`,
		"/assets/app.js":       `"use strict"`,
		"/assets/style.css":    `:root`,
	} {
		w := serve(h, path, "")
		assert.Equal(t, http.StatusOK, w.Code, path)
		assert.Contains(t, w.Body.String(), want, path)
	}
	assert.Equal(t, http.StatusNotFound, status(h, "/nothing-here", ""))
}

// The pages load nothing from another host: no absolute URL in any HTML or CSS file, and the
// script fetches only paths of the server that served it.
func TestPagesReferToNoOtherHost(t *testing.T) {
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assets, path)
		require.NoError(t, err)
		text := string(b)
		switch {
		case strings.HasSuffix(path, ".html"), strings.HasSuffix(path, ".css"):
			for _, ref := range []string{"http:", "https:", "//", "@import"} {
				assert.NotContains(t, text, ref, path)
			}
		case strings.HasSuffix(path, ".js"):
			for _, ref := range []string{"https:", "import ", "XMLHttpRequest", "getJSON(\"http", "fetch(\"http"} {
				assert.NotContains(t, text, ref, path)
			}
		}
		return nil
	})
	require.NoError(t, err)
}

func TestNewRefusesBadAddress(t *testing.T) {
	for _, cfg := range []Config{
		{Addr: "nope", Stats: job.NewStats()},
		{Addr: "127.0.0.1:0", Advertise: "no-port", Stats: job.NewStats()},
		{Addr: "127.0.0.1:0"}, // stats are required
	} {
		_, err := New(cfg)
		assert.Error(t, err, "%+v", cfg)
	}
}

func TestListenAdvertises(t *testing.T) {
	for _, tc := range []struct {
		addr, advertise, wantHost string
	}{
		{"127.0.0.1:0", "", "127.0.0.1"},
		{"0.0.0.0:0", "", localName()}, // the host name if it resolves here, else loopback
		{"127.0.0.1:0", "enricher-2.svc:9095", ""},
	} {
		s, err := New(Config{Addr: tc.addr, Advertise: tc.advertise, Token: "t", Stats: job.NewStats()})
		require.NoError(t, err)
		ln, err := s.Listen()
		require.NoError(t, err)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		want := tc.advertise
		if want == "" {
			want = net.JoinHostPort(tc.wantHost, port)
		}
		assert.Equal(t, want, s.Advert().Web, tc.addr)
		assert.NotEmpty(t, s.Advert().ID)
		require.NoError(t, ln.Close())
	}
}

func TestListenOnATakenPortNamesTheAddress(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	s, err := New(Config{Addr: taken.Addr().String(), Stats: job.NewStats()})
	require.NoError(t, err)
	_, err = s.Listen()
	require.Error(t, err)
	assert.Contains(t, err.Error(), taken.Addr().String())
}

func TestProfilingIsOptInAndBehindTheToken(t *testing.T) {
	off := newServer(t, "").Handler()
	assert.Equal(t, http.StatusNotFound, status(off, "/debug/pprof/", ""), "off: not served")
	s, err := New(Config{Addr: "127.0.0.1:0", Token: "s3cret", Topics: testTopics, Stats: job.NewStats(), Profiling: true})
	require.NoError(t, err)
	on := s.Handler()
	assert.Equal(t, http.StatusUnauthorized, status(on, "/debug/pprof/", ""))
	assert.Equal(t, http.StatusOK, status(on, "/debug/pprof/", "Bearer s3cret"))
	assert.Equal(t, http.StatusOK, status(on, "/debug/pprof/heap", "Bearer s3cret"))
}

func TestScoresWantsAKey(t *testing.T) {
	assert.Equal(t, http.StatusBadRequest, status(newServer(t, "").Handler(), "/scores/", ""))
}

// A key with a slash and a space reaches the handler whole.
func TestScoresKeepsTheKeyWhole(t *testing.T) {
	w := serve(newServer(t, "").Handler(), "/scores/a%2Fb%20c", "")
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	var a answer
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &a))
	assert.Equal(t, "a/b c", a.Key)
	assert.Nil(t, a.Score)
	assert.Contains(t, a.Reason, "has not started")
}

func score(n int64) *int64 { return &n }

func TestRouterLookup(t *testing.T) {
	self := members.Advert{ID: "self", Web: "127.0.0.1:1"}
	owner := members.Advert{ID: "other", Web: "127.0.0.1:2"}
	stable := members.Group{State: "Stable", Members: []members.Member{
		{ID: "m-self", Advert: self, Partitions: []int32{0}},
		{ID: "m-other", Advert: owner, Partitions: []int32{1}},
		{ID: "m-silent", AdvertErr: "the member advertises no address", Partitions: []int32{2}},
	}}
	found := func(mode string) localAnswer {
		return localAnswer{status: http.StatusOK, mode: mode, answer: answer{Key: "k", Score: score(7), AnsweredBy: self.Web}}
	}
	notHere := localAnswer{status: http.StatusServiceUnavailable, answer: answer{Reason: "partition 1 is not on this replica"}}
	recovering := localAnswer{status: http.StatusServiceUnavailable, mode: active, answer: answer{Reason: "partition 0 is recovering on this replica"}}
	peerSays := func(status int, a answer, err error) func(context.Context, string, string, any) (int, error) {
		return func(_ context.Context, web, path string, out any) (int, error) {
			if web != owner.Web || path != "/scores/k?local=1" {
				return 0, errors.New("asked the wrong replica: " + web + path)
			}
			*(out.(*answer)) = a
			return status, err
		}
	}
	okPeer := peerSays(http.StatusOK, answer{Key: "k", Score: score(9)}, nil)
	for _, tc := range []struct {
		name       string
		part       int32
		here       localAnswer
		group      members.Group
		describe   error
		peer       func(context.Context, string, string, any) (int, error)
		wantStatus int
		wantScore  *int64
		wantOwner  string
		standby    bool
		reason     string
	}{
		{name: "owned here", part: 0, here: found(active), describe: errors.New("not asked"), wantStatus: 200, wantScore: score(7), wantOwner: self.Web},
		{name: "owned elsewhere", part: 1, here: notHere, group: stable, peer: okPeer, wantStatus: 200, wantScore: score(9), wantOwner: owner.Web},
		{name: "no score at the owner", part: 1, here: notHere, group: stable,
			peer: peerSays(http.StatusNotFound, answer{Key: "k", Note: noScore}, nil), wantStatus: 404, wantOwner: owner.Web},
		{name: "owner unreachable", part: 1, here: notHere, group: stable,
			peer: peerSays(0, answer{}, errors.New("connection refused")), wantStatus: 503, wantOwner: owner.Web, reason: "unreachable: connection refused"},
		{name: "owner recovering", part: 1, here: notHere, group: stable,
			peer: peerSays(503, answer{Reason: "partition 1 is recovering"}, nil), wantStatus: 503, wantOwner: owner.Web, reason: "cannot answer: partition 1 is recovering"},
		{name: "owner unreachable, standby here", part: 1, here: found(standby), group: stable,
			peer: peerSays(0, answer{}, errors.New("connection refused")), wantStatus: 200, wantScore: score(7), wantOwner: owner.Web, standby: true, reason: "standby copy"},
		{name: "standby is not asked first", part: 1, here: found(standby), group: stable, peer: okPeer, wantStatus: 200, wantScore: score(9), wantOwner: owner.Web},
		{name: "rebalancing", part: 1, here: notHere, group: members.Group{State: "PreparingRebalance"}, wantStatus: 503, reason: "rebalancing (PreparingRebalance)"},
		{name: "rebalancing, standby here", part: 1, here: found(standby), group: members.Group{State: "CompletingRebalance"}, wantStatus: 200, wantScore: score(7), standby: true, reason: "rebalancing"},
		{name: "coordinator unreachable", part: 1, here: notHere, describe: errors.New("broker down"), wantStatus: 503, reason: "broker down"},
		{name: "recovering here", part: 0, here: recovering, group: stable, wantStatus: 503, wantOwner: self.Web, reason: "recovering on this replica"},
		{name: "assigned here, not started", part: 0, here: notHere, group: stable, wantStatus: 503, wantOwner: self.Web, reason: "has not started it yet"},
		{name: "owner without web server", part: 2, here: notHere, group: stable, wantStatus: 503, reason: "advertises no web server"},
		{name: "no owner", part: 3, here: notHere, group: stable, wantStatus: 503, reason: "no member of the group owns partition 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := router{
				self:  self,
				local: func(context.Context, string, int32) localAnswer { return tc.here },
				describe: func(context.Context) (members.Group, error) {
					return tc.group, tc.describe
				},
				peer: tc.peer,
			}
			if rt.peer == nil {
				rt.peer = func(context.Context, string, string, any) (int, error) { return 0, errors.New("no peer may be asked") }
			}
			code, a := rt.lookup(context.Background(), "k", tc.part)
			assert.Equal(t, tc.wantStatus, code)
			assert.Equal(t, tc.wantScore, a.Score)
			assert.Equal(t, tc.wantOwner, a.Owner)
			assert.Equal(t, tc.standby, a.Standby)
			if tc.reason != "" {
				assert.Contains(t, a.Reason, tc.reason)
			}
			if code == http.StatusServiceUnavailable {
				assert.Nil(t, a.Score, "a 503 carries no score")
			}
		})
	}
}

// registryFormat is a registry format whose registry is in a given state.
type registryFormat struct {
	codecs.JSON
	state codecs.RegistryState
}

func (f registryFormat) RegistryState() codecs.RegistryState { return f.state }

// A registry format whose registry fails holds readiness back and says why, and the metrics
// show the wait and count the failures; once it answers, neither holds anything back.
func TestSchemaRegistryWaitInReadyzAndMetrics(t *testing.T) {
	for _, tc := range []struct {
		name        string
		state       codecs.RegistryState
		waitingLine string
		reason      string
	}{
		{"waiting", codecs.RegistryState{Waiting: errors.New("schema registry: connection refused"), Since: time.Now(), Failures: 3},
			"enricher_schema_registry_waiting 1", "waiting for the schema registry"},
		{"answering", codecs.RegistryState{Failures: 3}, "enricher_schema_registry_waiting 0", "the processor has not started"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stats := job.NewStats()
			stats.ReportRegistry(registryFormat{state: tc.state})
			s, err := New(Config{Addr: "127.0.0.1:0", Topics: testTopics, Stats: stats})
			require.NoError(t, err)
			h := s.Handler()
			w := serve(h, "/readyz", "")
			assert.Equal(t, http.StatusServiceUnavailable, w.Code)
			var body struct {
				Reason         string
				SchemaRegistry *struct {
					Error    string
					Failures int64
				} `json:"schema_registry"`
			}
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
			assert.Equal(t, tc.reason, body.Reason)
			if tc.state.Waiting != nil {
				require.NotNil(t, body.SchemaRegistry)
				assert.Equal(t, "schema registry: connection refused", body.SchemaRegistry.Error)
				assert.Equal(t, int64(3), body.SchemaRegistry.Failures)
			} else {
				assert.Nil(t, body.SchemaRegistry)
			}
			metrics := serve(h, "/metrics", "").Body.String()
			assert.Contains(t, metrics, tc.waitingLine+"\n")
			assert.Contains(t, metrics, "enricher_schema_registry_failures_total 3\n")
		})
	}
}
