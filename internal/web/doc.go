// Package web serves an enricher replica's operator surface over HTTP: its own monitor, group
// and query pages (HTML, CSS and a script embedded in the binary, loading nothing from another
// host), GET /scores/{key} answered for any key on any replica, /api/replica and /api/group
// (the pages' data), /healthz (process alive), /readyz (every partition assigned here
// recovered and running, else 503 with the partitions still recovering) and /metrics in
// Prometheus format.
//
// A key lookup is answered by the replica that owns the key's partition, from its store. Any
// other replica learns the owner from the group's coordinator (package members) and asks it;
// when no owner can answer, the reply is 503 with the reason, or an answer from a hot-standby
// copy that says so: never a "no score" that may be false.
//
// The Runner builds a new goka processor after a failure; Attach switches every page to the
// newest one. A bearer token, when set, protects every page but the health checks and the
// pages' static assets, and goes with every call to another replica.
package web
