package web

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lovoo/goka"

	"github.com/enricher/enricher/internal/job"
	"github.com/enricher/enricher/internal/members"
	"github.com/enricher/enricher/internal/partition"
	"github.com/enricher/enricher/internal/store"
	"github.com/enricher/enricher/topology"
)

// Directory is what the server needs to know of the group: its members and their partitions,
// and its lag by partition (members.Directory).
type Directory interface {
	Describe(ctx context.Context) (members.Group, error)
	Lag(ctx context.Context, topics ...string) (map[int32]int64, error)
}

// Config configures the server.
type Config struct {
	// Addr is host:port to listen on.
	Addr string
	// Advertise is the host:port the other replicas reach this server on. Empty: the address
	// it listens on, with a wildcard host (0.0.0.0, ::) replaced by the machine's host name when
	// that resolves to this machine, else by 127.0.0.1.
	Advertise string
	// Token, when set, must come as "Authorization: Bearer TOKEN" (or ?token=TOKEN) on every
	// request but /healthz, /readyz and /assets/; calls to the other replicas carry it. Under
	// /goka/ the cookie a request with the token was given stands in for it.
	Token  string
	Topics topology.Topics
	// Scheme partitions keys as the job's producers do, so a key's partition is found.
	Scheme partition.Scheme
	// Directory describes the group; nil serves this replica's own partitions only.
	Directory Directory
	Stats     *job.Stats
	Logger    *slog.Logger
	// Profiling serves Go's runtime profiles (net/http/pprof) under /debug/pprof/, behind Token.
	Profiling bool
	// Client makes the calls to the other replicas; nil: one with a 2 s timeout.
	Client *http.Client
}

// Server is the operator HTTP server of one replica.
type Server struct {
	cfg      Config
	log      *slog.Logger
	metrics  *metrics
	client   *http.Client
	advert   members.Advert
	attached atomic.Pointer[job.Attached]
	// goka is goka's monitor and query for the attached processor, swapped whole on Attach.
	goka atomic.Pointer[gokaWeb]
}

// New returns a server; it serves only once Listen and Serve are called.
func New(cfg Config) (*Server, error) {
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, fmt.Errorf("web-addr %q: %w", cfg.Addr, err)
	}
	if cfg.Advertise != "" {
		if _, _, err := net.SplitHostPort(cfg.Advertise); err != nil {
			return nil, fmt.Errorf("advertise-addr %q: %w", cfg.Advertise, err)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Stats == nil {
		return nil, errors.New("web: no stats")
	}
	s := &Server{cfg: cfg, log: cfg.Logger, client: cfg.Client}
	if s.client == nil {
		s.client = &http.Client{Timeout: 2 * time.Second}
	}
	s.metrics = newMetrics(cfg.Stats, s.current, s.copies, s.diskBytes)
	return s, nil
}

// Attach makes the pages show a's processor; the Runner calls it with every processor it builds.
// goka's own monitor and query under /goka/ are built anew for it.
func (s *Server) Attach(a job.Attached) {
	s.attached.Store(&a)
	s.goka.Store(s.newGokaWeb(&a))
}

// current is the processor attached last, or nil.
func (s *Server) current() *goka.Processor {
	if a := s.attached.Load(); a != nil {
		return a.Processor
	}
	return nil
}

// copies lists the standby and warm-up copies of the processor attached last; none before.
func (s *Server) copies() map[int32]store.Copy {
	if a := s.attached.Load(); a != nil && a.Copies != nil {
		return a.Copies()
	}
	return nil
}

// diskBytes reads the bytes on disk of the attached processor's stores.
func (s *Server) diskBytes() map[int32]int64 {
	if a := s.attached.Load(); a != nil && a.DiskBytes != nil {
		return a.DiskBytes()
	}
	return nil
}

// Advert is what the replica advertises to its group: valid once Listen returned.
func (s *Server) Advert() members.Advert { return s.advert }

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"alive"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("GET /scores/{key...}", s.scores)
	mux.HandleFunc("GET /api/replica", s.replica)
	mux.HandleFunc("GET /api/group", s.group)
	s.pages(mux)
	mux.HandleFunc("GET /goka/", s.gokaPages)
	mux.HandleFunc("GET /goka/{$}", gokaRedirect(gokaMonitorPath+"/"))
	mux.HandleFunc("GET "+gokaMonitorPath, gokaRedirect(gokaMonitorPath+"/"))
	mux.HandleFunc("GET "+gokaQueryPath, gokaRedirect(gokaQueryPath+"/"))
	if s.cfg.Profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return s.auth(mux)
}

// Listen binds the server's address and settles what it advertises. It comes before the
// processor starts, so a port that is taken stops the start before any store is opened.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("web: listen on %s: %w", s.cfg.Addr, err)
	}
	bound := ln.Addr().String()
	host, port, _ := net.SplitHostPort(bound)
	if !isLoopback(host) && s.cfg.Token == "" {
		s.log.Warn("web server listens beyond loopback without --web-token: anyone who reaches it can read the table", "addr", bound)
	}
	advertise := s.cfg.Advertise
	if advertise == "" {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			host = localName()
		}
		advertise = net.JoinHostPort(host, port)
	}
	if s.advert, err = members.NewAdvert(advertise); err != nil {
		_ = ln.Close()
		return nil, err
	}
	return ln, nil
}

// Serve serves on ln until ctx ends, then shuts down within 5 s.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.log.Info("web server listening", "addr", ln.Addr().String(), "advertised", s.advert.Web,
		"pages", "/ /monitor /query /group /scores/{key} /healthz /readyz /metrics /goka/monitor/ /goka/query/")
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

// localName is the host a wildcard bind advertises: the machine's host name when it resolves
// to an address of this machine (a container's id on its network, a host's line in /etc/hosts),
// so replicas in other containers or on other hosts can reach it; else 127.0.0.1.
func localName() string {
	const loopback = "127.0.0.1"
	name, err := os.Hostname()
	if err != nil || name == "" {
		return loopback
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, name)
	if err != nil {
		return loopback
	}
	addrs, _ := net.InterfaceAddrs()
	for _, ip := range ips {
		if ip.IP.IsLoopback() {
			return name
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip.IP) {
				return name
			}
		}
	}
	return loopback
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// auth requires the token on every path but the health checks and the pages' script and
// stylesheet, which hold no data (a browser loads them without the page's ?token=). Under
// /goka/ a request with the token also gets a cookie, and one with the cookie needs no token:
// goka's pages request their data without either.
func (s *Server) auth(next http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return next
	}
	want := []byte("Bearer " + s.cfg.Token)
	cookie := gokaCookieAuth{value: gokaCookieValue(s.cfg.Token)}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || strings.HasPrefix(r.URL.Path, "/assets/") {
			next.ServeHTTP(w, r)
			return
		}
		got := []byte(r.Header.Get("Authorization"))
		if t := r.URL.Query().Get("token"); t != "" {
			got = []byte("Bearer " + t)
		}
		ok := subtle.ConstantTimeCompare(got, want) == 1
		if underGoka(r.URL.Path) {
			if ok {
				cookie.set(w, r)
			} else {
				ok = cookie.valid(r)
			}
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// peer calls another replica's web server: GET http://web+path with the token, decoding a
// JSON body into out; it returns the status.
func (s *Server) peer(ctx context.Context, web, path string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+web+path, nil)
	if err != nil {
		return 0, err
	}
	if s.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.Token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return resp.StatusCode, errors.New("it refused this replica's --web-token")
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("its answer (%s): %w", resp.Status, err)
	}
	return resp.StatusCode, nil
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
