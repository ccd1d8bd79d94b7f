package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/web/monitor"
	"github.com/lovoo/goka/web/query"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/job"
)

// Where goka's own servers are mounted. They register on router.PathPrefix(base).Subrouter()
// and build every link from their base path, so they need no StripPrefix.
const (
	gokaPrefix      = "/goka/"
	gokaMonitorPath = "/goka/monitor"
	gokaQueryPath   = "/goka/query"
	// gokaCookie carries the token's stand-in on goka's pages: their links and d3.json data
	// requests send neither the Authorization header nor ?token=.
	gokaCookie = "enricher_goka"
)

// gokaWeb is goka's monitor and query, built for one processor.
type gokaWeb struct {
	handler   http.Handler
	processor *goka.Processor
}

// newGokaWeb builds goka's monitor and query servers for a's processor on a router of their
// own. goka's monitor cannot detach a processor, so a restart gets a new router rather than a
// second processor on the old one.
func (s *Server) newGokaWeb(a *job.Attached) *gokaWeb {
	r := mux.NewRouter()
	// The monitor has one processor and no view: the guard keeps every other index from goka.
	r.Use(monitorBounds(1, 0))
	logger := job.GokaLogger(s.log.With("component", "goka-web"))
	mon := monitor.NewServer(gokaMonitorPath, r, monitor.WithLogger(logger))
	mon.AttachProcessor(a.Processor)
	q := query.NewServer(gokaQueryPath, r, query.WithLogger(logger))
	if err := q.AttachSource(s.cfg.Topics.Table(), s.committedScore(a)); err != nil {
		// A new query server has no source yet: this cannot happen, and the page says "no
		// sources" if it did.
		s.log.Error("goka query page has no source", "err", err)
	}
	return &gokaWeb{handler: r, processor: a.Processor}
}

// gokaPages serves /goka/... from the router of the processor attached last. Before the first
// Attach, and after that processor stopped (the Runner is building the next), it answers 503:
// goka's pages never show a processor that no longer runs.
func (s *Server) gokaPages(w http.ResponseWriter, r *http.Request) {
	g := s.goka.Load()
	switch {
	case g == nil:
		http.Error(w, "goka's monitor and query start with the processor, which has not started on this replica", http.StatusServiceUnavailable)
	case g.processor.StateReader().IsState(goka.ProcStateStopped):
		http.Error(w, "the processor on this replica stopped; goka's pages come back with the next one", http.StatusServiceUnavailable)
	default:
		g.handler.ServeHTTP(w, r)
	}
}

// gokaRedirect sends a base path without its slash to the page goka serves, query kept (it may
// hold the ?token= that sets the cookie).
func gokaRedirect(to string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := *r.URL
		u.Path = to
		http.Redirect(w, r, u.RequestURI(), http.StatusFound)
	}
}

// monitorBounds answers 404 for a monitor route whose index names no processor or view the
// monitor holds. goka v1.1.16 checks idx > len where idx >= len is meant, and indexes its
// slice anyway: /monitor/processor/{len} panics. The guard runs after gorilla matched the
// route, on the same variables goka reads, and before goka's handler.
func monitorBounds(processors, views int) mux.MiddlewareFunc {
	limits := map[string]int{"processor": processors, "view": views}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			vars := mux.Vars(r)
			raw, ok := vars["idx"]
			if !ok {
				next.ServeHTTP(w, r)
				return
			}
			// /data/{type}/{idx} names its kind; /processor/{idx} and /view/{idx} in the path.
			kind := vars["type"]
			if kind == "" {
				if route := mux.CurrentRoute(r); route != nil {
					tpl, _ := route.GetPathTemplate()
					kind = path.Base(path.Dir(tpl))
				}
			}
			limit, known := limits[kind]
			idx, err := strconv.Atoi(raw)
			if !known || err != nil || idx < 0 || idx >= limit {
				http.NotFound(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// committedScore is the source of goka's query page: the key's score in this replica's store
// of the key's partition, as /scores/{key}?local=1 reads it. It is not goka's Processor.Get,
// which under exactly-once would read writes of a transaction that may still abort.
func (s *Server) committedScore(a *job.Attached) goka.Getter {
	return func(key string) (any, error) {
		part := s.partitionOf(a, key)
		return scoreValue(s.localIn(context.Background(), a, key, part), part)
	}
}

// scoreValue turns a local answer into what goka's query page shows: the Score, nil for a key
// without one, or an error saying why this replica cannot answer. Only a partition the group
// assigned here answers: a standby or warm-up copy can trail its owner and the page could not say so.
func scoreValue(la localAnswer, part int32) (any, error) {
	switch {
	case la.status == http.StatusServiceUnavailable:
		return nil, errors.New(la.answer.Reason)
	case la.mode != active:
		return nil, fmt.Errorf("partition %d is not assigned to this replica (its copy here is %s); /scores/{key} asks the owner", part, la.mode)
	case la.status == http.StatusNotFound:
		return nil, nil
	case la.status != http.StatusOK || la.answer.Score == nil:
		return nil, fmt.Errorf("partition %d answered %d", part, la.status)
	}
	return codecs.Score{Key: la.answer.Key, Score: *la.answer.Score}, nil
}

// underGoka reports whether a request path is goka's, before and after cleaning: the cookie
// opens /goka/ only, not a path that ServeMux would clean into another one.
func underGoka(p string) bool {
	c := path.Clean(p)
	return strings.HasPrefix(p, gokaPrefix) && (c+"/" == gokaPrefix || strings.HasPrefix(c, gokaPrefix))
}

// gokaCookieValue is what the cookie holds: a MAC of the token, not the token, so a cookie
// read off a browser does not open the rest of the API as the bearer token would.
func gokaCookieValue(token string) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("enricher goka pages cookie"))
	return []byte(hex.EncodeToString(m.Sum(nil)))
}

// gokaCookieAuth accepts goka's requests by the cookie a token set, and sets it on a request
// that brought the token.
type gokaCookieAuth struct{ value []byte }

// set gives the browser the cookie, for /goka/ only and never to scripts.
func (c gokaCookieAuth) set(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: gokaCookie, Value: string(c.value), Path: gokaPrefix,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// valid reports whether r carries the cookie.
func (c gokaCookieAuth) valid(r *http.Request) bool {
	got, err := r.Cookie(gokaCookie)
	return err == nil && subtle.ConstantTimeCompare([]byte(got.Value), c.value) == 1
}
