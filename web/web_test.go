package web

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/enricher/enricher/processor"
)

func newServer(t *testing.T, token string) *Server {
	t.Helper()
	s, err := New(Config{Addr: "127.0.0.1:0", Token: token, Table: "g-table", Stats: processor.NewStats()})
	require.NoError(t, err)
	return s
}

func status(h http.Handler, path, header string) int {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if header != "" {
		r.Header.Set("Authorization", header)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

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
		{"/monitor/", "", http.StatusUnauthorized},
		{"/monitor/", "Bearer s3cret", http.StatusServiceUnavailable}, // no processor attached yet
	} {
		assert.Equal(t, tc.want, status(h, tc.path, tc.header), "%s %q", tc.path, tc.header)
	}
	open := newServer(t, "").Handler()
	assert.Equal(t, http.StatusOK, status(open, "/metrics", ""), "no token: open")
}

func TestMonitorBounds(t *testing.T) {
	h := monitorBounds(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	for path, want := range map[string]int{
		"/monitor/processor/0":      http.StatusTeapot,
		"/monitor/data/processor/0": http.StatusTeapot,
		"/monitor/processor/1":      http.StatusNotFound,
		"/monitor/data/processor/7": http.StatusNotFound,
		"/monitor/view/0":           http.StatusNotFound,
		"/monitor/":                 http.StatusTeapot,
		"/query/g-table/k":          http.StatusTeapot,
	} {
		assert.Equal(t, want, status(h, path, ""), path)
	}
}

func TestScoreOrAbsent(t *testing.T) {
	get := scoreOrAbsent(func(key string) (any, error) {
		switch key {
		case "known":
			return "value", nil
		case "broken":
			return nil, errors.New("partition not owned")
		}
		return nil, nil
	})
	v, err := get("known")
	require.NoError(t, err)
	assert.Equal(t, "value", v)
	v, err = get("nobody")
	require.NoError(t, err)
	assert.Equal(t, absent{Key: "nobody", Note: "no score: inputs of this key get -1"}, v)
	_, err = get("broken")
	assert.Error(t, err)
}

func TestNewRefusesBadAddress(t *testing.T) {
	_, err := New(Config{Addr: "nope", Stats: processor.NewStats()})
	assert.Error(t, err)
	_, err = New(Config{Addr: "127.0.0.1:0"})
	assert.Error(t, err, "stats are required")
}

func TestProfilingIsOptInAndBehindTheToken(t *testing.T) {
	off := newServer(t, "").Handler()
	assert.Equal(t, http.StatusServiceUnavailable, status(off, "/debug/pprof/", ""), "off: falls through to the pages")
	s, err := New(Config{Addr: "127.0.0.1:0", Token: "s3cret", Table: "g-table", Stats: processor.NewStats(), Profiling: true})
	require.NoError(t, err)
	on := s.Handler()
	assert.Equal(t, http.StatusUnauthorized, status(on, "/debug/pprof/", ""))
	assert.Equal(t, http.StatusOK, status(on, "/debug/pprof/", "Bearer s3cret"))
	assert.Equal(t, http.StatusOK, status(on, "/debug/pprof/heap", "Bearer s3cret"))
}
