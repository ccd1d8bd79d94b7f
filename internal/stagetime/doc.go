// Package stagetime records where the time from an input record to its output goes, for a
// sample of inputs: in the fetch, held by enricher's merge or an exactly-once commit, in goka's
// queues, in the callback, and in the output's produce until the broker acknowledged it.
//
// The consumer group notes when it receives a sampled input and when it hands it to goka; the
// callback looks both up by partition and offset, adds its own times, and observes the whole
// breakdown when the output is acknowledged. Breakdowns are summed by how long the output took
// in all (bands), so the slowest outputs' stages can be told from the typical ones'. The web
// server's /metrics exposes them.
package stagetime
