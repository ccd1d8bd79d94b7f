package web

import (
	"embed"
	"io/fs"
	"net/http"
)

// assets are the operator pages: HTML, one stylesheet and one script written for enricher, so
// they render with no network beyond this server (no CDN, no web font).
//
//go:embed assets
var assets embed.FS

// pages adds the HTML pages and their assets to mux. The pages are static; their script reads
// /api/replica, /api/group and /scores/{key} from the server that served them.
func (s *Server) pages(mux *http.ServeMux) {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	page := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-cache")
			http.ServeFileFS(w, r, sub, name)
		}
	}
	mux.HandleFunc("GET /{$}", page("index.html"))
	// goka's monitor lived under /monitor/processor/0; its links keep working.
	mux.HandleFunc("GET /monitor", page("monitor.html"))
	mux.HandleFunc("GET /monitor/", page("monitor.html"))
	mux.HandleFunc("GET /query", page("query.html"))
	mux.HandleFunc("GET /query/", page("query.html"))
	mux.HandleFunc("GET /group", page("group.html"))
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(sub)))
}
