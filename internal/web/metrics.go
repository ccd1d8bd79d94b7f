package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/job"
	"github.com/enricher/enricher/internal/stagetime"
	"github.com/enricher/enricher/internal/store"
)

// metrics exposes job.Stats and goka's per-partition stats to Prometheus.
type metrics struct {
	reg     *prometheus.Registry
	stats   *job.Stats
	current func() *goka.Processor

	dlq       *prometheus.Desc
	lag       *prometheus.Desc
	remaining *prometheus.Desc
	state     *prometheus.Desc
	// copies lists the standby and warm-up copies; copyLag is their lag.
	copies  func() map[int32]store.Copy
	copyLag *prometheus.Desc
	// diskBytes reads the stores' bytes on disk; disk is their metric.
	diskBytes func() map[int32]int64
	disk      *prometheus.Desc

	streamTime, waiting, waits, waitSeconds, waitsExpired, noTimestamp *prometheus.Desc
	// stageSeconds and breakdowns expose the breakdown of sampled outputs' time.
	stageSeconds, breakdowns *prometheus.Desc
}

func newMetrics(stats *job.Stats, current func() *goka.Processor, copies func() map[int32]store.Copy, diskBytes func() map[int32]int64) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(), stats: stats, current: current, copies: copies, diskBytes: diskBytes,
		disk: prometheus.NewDesc("enricher_store_disk_bytes", "Bytes on disk of this replica's local store of each table partition (owned, standby, warm-up, or not yet cleaned up).",
			[]string{"partition"}, nil),
		copyLag: prometheus.NewDesc("enricher_copy_lag", "Changelog records a standby or warm-up copy trails its changelog's end by, by partition and mode.",
			[]string{"partition", "mode"}, nil),
		dlq: prometheus.NewDesc("enricher_dlq_records_total", "Records sent to the dead-letter topic, by reason.",
			[]string{"reason"}, nil),
		lag: prometheus.NewDesc("enricher_consumer_lag", "Records not yet consumed, by input topic and owned partition.",
			[]string{"topic", "partition"}, nil),
		remaining: prometheus.NewDesc("enricher_changelog_records_remaining", "Changelog records still to restore, by owned partition.",
			[]string{"partition"}, nil),
		state: prometheus.NewDesc("enricher_partition_running", "1 when an owned partition is recovered and running, 0 while it recovers.",
			[]string{"partition"}, nil),
		streamTime: prometheus.NewDesc("enricher_stream_time_seconds", "Highest record timestamp handed to the callbacks, by partition (Unix seconds).",
			[]string{"partition"}, nil),
		waiting: prometheus.NewDesc("enricher_alignment_waiting", "1 while a partition holds a record back for its other topic, by the topic waited for.",
			[]string{"partition", "topic"}, nil),
		waits: prometheus.NewDesc("enricher_alignment_waits_total", "Spells in which a partition held a record back for its other topic (timestamp alignment).",
			[]string{"partition"}, nil),
		waitSeconds: prometheus.NewDesc("enricher_alignment_wait_seconds_total", "Time partitions held records back for their other topic.",
			[]string{"partition"}, nil),
		waitsExpired: prometheus.NewDesc("enricher_alignment_waits_expired_total", "Waits that ran out: for records on the broker that did not arrive (lag), or for --max-idle (idle).",
			[]string{"partition", "kind"}, nil),
		stageSeconds: prometheus.NewDesc("enricher_output_stage_seconds_total",
			"Time sampled outputs (one input offset in 16) spent in each stage: fetch (from the input's timestamp until received), hold (timestamp alignment or an exactly-once commit), queue (goka's channels), callback, produce (until acknowledged); by band of the output's total time.",
			[]string{"stage", "band"}, nil),
		breakdowns: prometheus.NewDesc("enricher_output_breakdowns_total",
			"Sampled outputs whose time enricher_output_stage_seconds_total breaks down, by band of their total time (from the input's timestamp until the output was acknowledged).",
			[]string{"band"}, nil),
		noTimestamp: prometheus.NewDesc("enricher_records_without_timestamp_total", "Records without a timestamp, handed on in offset order.",
			[]string{"partition"}, nil),
	}
	counter := func(name, help string, read func() int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(read()) })
	}
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "enricher_processing_seconds",
		Help:    "Time from an input record's timestamp to its output being emitted.",
		Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30},
	})
	stats.OnLatency(func(d time.Duration) { latency.Observe(d.Seconds()) })
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "enricher_state_dir_free_bytes",
			Help: "Free bytes of the state directory's filesystem at its last check (every second; 0 with --state-min-free 0)."},
			func() float64 { return float64(stats.FreeBytes.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "enricher_state_dir_min_free_bytes",
			Help: "The free space the state directory's filesystem must keep (--state-min-free): below it the replica stops."},
			func() float64 { return float64(stats.MinFreeBytes.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "enricher_schema_registry_waiting",
			Help: "1 while the schema registry's last request failed: records whose schemas are not cached wait for it (0 without a registry format)."},
			func() float64 {
				if st, ok := stats.Registry(); ok && st.Waiting != nil {
					return 1
				}
				return 0
			}),
		counter("enricher_schema_registry_failures_total", "Schema registry requests that failed (no answer, a refused connection, a 5xx).",
			func() int64 { st, _ := stats.Registry(); return st.Failures }),
		counter("enricher_inputs_consumed_total", "Input records consumed.", stats.InputsConsumed.Load),
		counter("enricher_outputs_emitted_total", "Output records emitted.", stats.OutputsEmitted.Load),
		counter("enricher_outputs_no_score_total", "Output records emitted with score -1 (the key had no score).", stats.OutputsNoScore.Load),
		counter("enricher_scores_applied_total", "Score records applied to the table.", stats.ScoresApplied.Load),
		counter("enricher_tombstones_applied_total", "Score tombstones applied (keys deleted from the table).", stats.TombstonesApplied.Load),
		counter("enricher_changelog_records_restored_total", "Changelog records applied while restoring partitions.", stats.RecordsRestored.Load),
		counter("enricher_changelog_records_replicated_total", "Changelog records written into standby and warm-up copies.", stats.RecordsReplicated.Load),
		counter("enricher_rebalances_total", "Partition assignments received.", stats.Rebalances.Load),
		counter("enricher_processor_restarts_total", "Processors rebuilt after a failure.", stats.Restarts.Load),
		counter("enricher_asof_outside_history_total", "Inputs of the as-of join stamped before their key's kept history (they got -1).", stats.AsOfOutsideHistory.Load),
		counter("enricher_consumer_group_sessions_total", "Consumer-group sessions that ended in a rebalance.", stats.Alignment.Sessions.Load),
		counter("enricher_offset_marks_ignored_total", "Offset marks naming a record the session never handed on: ignored, never committed.", stats.Alignment.MarksIgnored.Load),
		counter("enricher_transactions_committed_total", "Exactly-once transactions committed.", stats.Alignment.Commits.Load),
		counter("enricher_transactions_failed_total", "Exactly-once transactions whose commit failed (they were aborted).", stats.Alignment.CommitsFailed.Load),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "enricher_transaction_commit_seconds_total",
			Help: "Time exactly-once commits held records back, waiting for goka's marks and the broker."},
			func() float64 { return time.Duration(stats.Alignment.CommitNanos.Load()).Seconds() }),
		latency,
		m,
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Describe implements prometheus.Collector for the metrics read at scrape time.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.dlq
	ch <- m.lag
	ch <- m.remaining
	ch <- m.state
	ch <- m.copyLag
	ch <- m.disk
	for _, d := range []*prometheus.Desc{m.streamTime, m.waiting, m.waits, m.waitSeconds, m.waitsExpired, m.noTimestamp, m.stageSeconds, m.breakdowns} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	dlq := m.stats.DeadLettered()
	for _, r := range codecs.Reasons() {
		ch <- prometheus.MustNewConstMetric(m.dlq, prometheus.CounterValue, float64(dlq[r]), string(r))
	}
	m.collectAlignment(ch)
	m.collectStages(ch)
	for part, n := range m.diskBytes() {
		ch <- prometheus.MustNewConstMetric(m.disk, prometheus.GaugeValue, float64(n), strconv.Itoa(int(part)))
	}
	for part, c := range m.copies() {
		mode := standby
		if c.Warmup {
			mode = warmup
		}
		if c.End >= 0 {
			ch <- prometheus.MustNewConstMetric(m.copyLag, prometheus.GaugeValue, float64(max(0, c.End-(c.Offset+1))), strconv.Itoa(int(part)), mode)
		}
	}
	p := m.current()
	if p == nil {
		return
	}
	for part, ps := range p.Stats().Group {
		label := strconv.Itoa(int(part))
		for topic, in := range ps.Input {
			ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, float64(in.OffsetLag), topic, label)
		}
		st, remaining := tableState(part, ps, m.stats)
		running := 0.0
		if st.State == "running" {
			running = 1
		}
		ch <- prometheus.MustNewConstMetric(m.remaining, prometheus.GaugeValue, float64(remaining), label)
		ch <- prometheus.MustNewConstMetric(m.state, prometheus.GaugeValue, running, label)
	}
}

// collectAlignment reports each partition's timestamp alignment.
func (m *metrics) collectAlignment(ch chan<- prometheus.Metric) {
	for _, ps := range m.stats.Alignment.Partitions() {
		label := strconv.Itoa(int(ps.ID()))
		if st := ps.StreamTime(); !st.IsZero() {
			ch <- prometheus.MustNewConstMetric(m.streamTime, prometheus.GaugeValue, float64(st.UnixMilli())/1000, label)
		}
		if w := ps.Waiting(); w != nil {
			ch <- prometheus.MustNewConstMetric(m.waiting, prometheus.GaugeValue, 1, label, w.Topic)
		}
		ch <- prometheus.MustNewConstMetric(m.waits, prometheus.CounterValue, float64(ps.Waits.Load()), label)
		ch <- prometheus.MustNewConstMetric(m.waitSeconds, prometheus.CounterValue, time.Duration(ps.WaitNanos.Load()).Seconds(), label)
		ch <- prometheus.MustNewConstMetric(m.waitsExpired, prometheus.CounterValue, float64(ps.LagWaitsExpired.Load()), label, "lag")
		ch <- prometheus.MustNewConstMetric(m.waitsExpired, prometheus.CounterValue, float64(ps.IdleWaitsExpired.Load()), label, "idle")
		ch <- prometheus.MustNewConstMetric(m.noTimestamp, prometheus.CounterValue, float64(ps.MissingTimestamps.Load()), label)
	}
}

// collectStages reports the breakdown of sampled outputs' time, every band and stage included
// from the start, so a rate over them never misses a series that appeared late.
func (m *metrics) collectStages(ch chan<- prometheus.Metric) {
	if m.stats.Stages == nil {
		return
	}
	for _, b := range m.stats.Stages.Bands() {
		label := b.Label()
		ch <- prometheus.MustNewConstMetric(m.breakdowns, prometheus.CounterValue, float64(b.Outputs), label)
		for _, st := range stagetime.Stages() {
			ch <- prometheus.MustNewConstMetric(m.stageSeconds, prometheus.CounterValue, b.Time[st].Seconds(), st.String(), label)
		}
	}
}
