// Package web serves an enricher replica's operator surface over HTTP: goka's monitor
// (processor, partitions, states, offsets), goka's query page (look a key up in the score
// table), goka's index page linking them, /healthz (process alive), /readyz (every owned
// partition recovered and running, else 503 with the partitions still recovering) and
// /metrics in Prometheus format.
//
// The Runner builds a new goka processor after a failure; Attach switches every page to the
// newest one. A bearer token, when set, protects every page but the two health checks.
package web
