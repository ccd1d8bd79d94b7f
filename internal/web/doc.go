// Package web serves an enricher replica's operator surface over HTTP: its own monitor, group
// and query pages (HTML, CSS and a script embedded in the binary, loading nothing from another
// host), GET /scores/{key} answered for any key on any replica, /api/replica and /api/group
// (the pages' data), /healthz (process alive), /readyz (every partition assigned here
// recovered and running, else 503 with the partitions still recovering) and /metrics in
// Prometheus format.
//
// A key lookup is answered by the replica that owns the key's partition, from its store. Any
// other replica learns the owner from the group's coordinator (package members) and asks it;
// when no owner can answer, the reply is 503 with the reason, or an answer from a standby or
// warm-up copy that says so: never a "no score" that may be false.
//
// Beside its own pages the server mounts goka's: its monitor at /goka/monitor/ and its query
// at /goka/query/ (github.com/lovoo/goka/web, on a gorilla/mux router). They load jQuery, d3,
// lodash and Bootstrap from public CDNs, so they need a browser with internet access; enricher's
// own pages stay the offline default and link to them. goka's query reads the key's committed
// score in this replica's store (as /scores/{key}?local=1 does), never goka's Processor.Get,
// and answers only for a partition the group assigned here. goka's monitor indexes its lists
// past their end (/goka/monitor/processor/1 with one processor): those indexes are answered 404
// before goka sees them.
//
// The Runner builds a new goka processor after a failure; Attach switches every page to the
// newest one. goka's monitor cannot detach a processor, so each Attach builds goka's servers
// anew and swaps them in whole; before the first Attach, and while a stopped processor waits
// for its successor, /goka/ answers 503.
//
// A bearer token, when set, protects every page but the health checks and the pages' static
// assets, and goes with every call to another replica. goka's pages request their data with
// neither the header nor ?token=: a request under /goka/ that brings the token gets an
// HttpOnly, SameSite=Strict cookie for /goka/ only, which later /goka/ requests may carry
// instead.
package web
