package web

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"regexp"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/web/index"
	"github.com/lovoo/goka/web/monitor"
	"github.com/lovoo/goka/web/query"

	"github.com/enricher/enricher/consumergroup"
	"github.com/enricher/enricher/processor"
)

// Config configures the server.
type Config struct {
	// Addr is host:port to listen on.
	Addr string
	// Token, when set, must come as "Authorization: Bearer TOKEN" (or ?token=TOKEN) on every
	// request but /healthz and /readyz.
	Token  string
	Table  string // the score table's name on the query page
	Stats  *processor.Stats
	Logger *slog.Logger
	// Profiling serves Go's runtime profiles (net/http/pprof) under /debug/pprof/, behind Token.
	Profiling bool
}

// Server is the operator HTTP server of one replica.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	proc    atomic.Pointer[goka.Processor]
	pages   atomic.Pointer[http.Handler]
}

// New returns a server; it serves only once Run is called.
func New(cfg Config) (*Server, error) {
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("web-addr %q: %w", cfg.Addr, err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Stats == nil {
		return nil, errors.New("web: no stats")
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	s.metrics = newMetrics(cfg.Stats, s.current)
	var none http.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "the processor has not started yet", http.StatusServiceUnavailable)
	})
	s.pages.Store(&none)
	return s, nil
}

// Attach makes the pages show p; the Runner calls it with every processor it builds.
func (s *Server) Attach(p *goka.Processor) {
	s.proc.Store(p)
	router := mux.NewRouter()
	gl := processor.GokaLogger(s.log.With("component", "web"))
	mon := monitor.NewServer("/monitor", router, monitor.WithLogger(gl))
	mon.AttachProcessor(p)
	qry := query.NewServer("/query", router, query.WithLogger(gl))
	if err := qry.AttachSource(s.cfg.Table, scoreOrAbsent(p.Get)); err != nil {
		s.log.Error("query page: attach the table", "error", err.Error())
	}
	idx := index.NewServer("/", router)
	idx.AddComponent(mon, "Monitor")
	idx.AddComponent(qry, "Query")
	var h http.Handler = monitorBounds(router)
	s.pages.Store(&h)
}

func (s *Server) current() *goka.Processor { return s.proc.Load() }

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"alive"}` + "\n"))
	})
	mux.HandleFunc("/readyz", s.readyz)
	mux.Handle("/metrics", s.metrics.handler())
	if s.cfg.Profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*s.pages.Load()).ServeHTTP(w, r) }))
	return s.auth(mux)
}

// Run serves until ctx ends, then shuts down within 5 s.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("web: listen on %s: %w", s.cfg.Addr, err)
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !isLoopback(host) && s.cfg.Token == "" {
		s.log.Warn("web server listens beyond loopback without --web-token: anyone who reaches it can read the table", "addr", ln.Addr().String())
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.log.Info("web server listening", "addr", ln.Addr().String(), "pages", "/ /monitor /query /healthz /readyz /metrics")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("web: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// auth requires the token on every path but the health checks.
func (s *Server) auth(next http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return next
	}
	want := []byte("Bearer " + s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		got := []byte(r.Header.Get("Authorization"))
		if t := r.URL.Query().Get("token"); t != "" {
			got = []byte("Bearer " + t)
		}
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// monitorIndex matches goka's monitor pages that take an index: the monitor checks it with >
// where >= is meant and panics on /monitor/processor/{len}.
var monitorIndex = regexp.MustCompile(`^/monitor/(?:data/)?(processor|view)/([0-9]+)$`)

// monitorBounds answers 404 for a monitor index past the one processor attached.
func monitorBounds(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := monitorIndex.FindStringSubmatch(r.URL.Path); m != nil {
			if i, err := strconv.Atoi(m[2]); err != nil || m[1] == "view" || i != 0 {
				http.NotFound(w, r)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// waitingPartition is a partition of /readyz's body that holds a record back for one topic.
type waitingPartition struct {
	Partition int32 `json:"partition"`
	consumergroup.Wait
}

// partitionState is one partition of /readyz's body.
type partitionState struct {
	Partition int32  `json:"partition"`
	State     string `json:"state"`
	Offset    int64  `json:"offset"`
	HWM       int64  `json:"hwm"`
}

var stateNames = map[goka.PartitionStatus]string{
	goka.PartitionStopped: "stopped", goka.PartitionInitializing: "initializing", goka.PartitionConnecting: "connecting",
	goka.PartitionRecovering: "recovering", goka.PartitionPreparing: "preparing", goka.PartitionRunning: "running",
}

// tableState is where the table of one owned partition stands, from goka's stats and from
// processor.Stats for a store restored ahead of goka (goka shows it as initializing), and how
// many changelog records it has still to restore.
func tableState(part int32, ps *goka.PartitionProcStats, stats *processor.Stats) (st partitionState, remaining int64) {
	st = partitionState{Partition: part, State: "unknown"}
	if ts := ps.TableStats; ts != nil {
		st.State = stateNames[ts.Status]
		if ts.Recovery != nil {
			st.Offset, st.HWM = ts.Recovery.Offset, ts.Recovery.Hwm
			if ts.Status != goka.PartitionRunning && st.HWM > st.Offset {
				remaining = st.HWM - st.Offset
			}
		}
	}
	if rp, ok := stats.Restoring(part); ok {
		st.State, st.Offset, st.HWM = "recovering", rp.Offset, rp.HWM
		remaining = rp.HWM - 1 - rp.Offset
	}
	return st, remaining
}

// readyz is 200 when the processor runs with every owned partition recovered, else 503 with
// the partitions that are not running yet.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	body := struct {
		Ready      bool             `json:"ready"`
		Reason     string           `json:"reason,omitempty"`
		Owned      []int32          `json:"owned"`
		Recovering []partitionState `json:"recovering"`
		// Waiting lists owned partitions holding a record back for their other topic
		// (timestamp alignment); a waiting partition is still ready.
		Waiting []waitingPartition `json:"waiting"`
	}{Owned: []int32{}, Recovering: []partitionState{}, Waiting: []waitingPartition{}}
	p := s.current()
	switch {
	case p == nil:
		body.Reason = "the processor has not started"
	default:
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		stats := p.StatsWithContext(ctx)
		cancel()
		for part, ps := range stats.Group {
			body.Owned = append(body.Owned, part)
			if st, _ := tableState(part, ps, s.cfg.Stats); st.State != "running" {
				body.Recovering = append(body.Recovering, st)
			}
		}
		for _, ps := range s.cfg.Stats.Alignment.Partitions() {
			if _, owned := stats.Group[ps.ID()]; owned {
				if w := ps.Waiting(); w != nil {
					body.Waiting = append(body.Waiting, waitingPartition{Partition: ps.ID(), Wait: *w})
				}
			}
		}
		sort.Slice(body.Owned, func(i, j int) bool { return body.Owned[i] < body.Owned[j] })
		sort.Slice(body.Recovering, func(i, j int) bool { return body.Recovering[i].Partition < body.Recovering[j].Partition })
		switch {
		case !p.StateReader().IsState(goka.ProcStateRunning):
			body.Reason = "the processor is joining its group or recovering"
		case len(body.Recovering) > 0:
			body.Reason = "partitions are recovering"
		default:
			body.Ready = true
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if !body.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(body)
}

// absent is what the query page shows for a key without a score (goka's page shows nothing).
type absent struct {
	Key   string `json:"key"`
	Score *int64 `json:"score"`
	Note  string `json:"note"`
}

// scoreOrAbsent makes a missing key an explicit answer on the query page.
func scoreOrAbsent(get goka.Getter) goka.Getter {
	return func(key string) (any, error) {
		v, err := get(key)
		if err != nil || v != nil {
			return v, err
		}
		return absent{Key: key, Note: "no score: inputs of this key get -1"}, nil
	}
}
