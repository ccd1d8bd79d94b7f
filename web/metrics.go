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
	"github.com/enricher/enricher/processor"
)

// metrics exposes processor.Stats and goka's per-partition stats to Prometheus.
type metrics struct {
	reg     *prometheus.Registry
	stats   *processor.Stats
	current func() *goka.Processor

	dlq       *prometheus.Desc
	lag       *prometheus.Desc
	remaining *prometheus.Desc
	state     *prometheus.Desc
}

func newMetrics(stats *processor.Stats, current func() *goka.Processor) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(), stats: stats, current: current,
		dlq: prometheus.NewDesc("enricher_dlq_records_total", "Records sent to the dead-letter topic, by reason.",
			[]string{"reason"}, nil),
		lag: prometheus.NewDesc("enricher_consumer_lag", "Records not yet consumed, by input topic and owned partition.",
			[]string{"topic", "partition"}, nil),
		remaining: prometheus.NewDesc("enricher_changelog_records_remaining", "Changelog records still to restore, by owned partition.",
			[]string{"partition"}, nil),
		state: prometheus.NewDesc("enricher_partition_running", "1 when an owned partition is recovered and running, 0 while it recovers.",
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
		counter("enricher_inputs_consumed_total", "Input records consumed.", stats.InputsConsumed.Load),
		counter("enricher_outputs_emitted_total", "Output records emitted.", stats.OutputsEmitted.Load),
		counter("enricher_outputs_no_score_total", "Output records emitted with score -1 (the key had no score).", stats.OutputsNoScore.Load),
		counter("enricher_scores_applied_total", "Score records applied to the table.", stats.ScoresApplied.Load),
		counter("enricher_tombstones_applied_total", "Score tombstones applied (keys deleted from the table).", stats.TombstonesApplied.Load),
		counter("enricher_changelog_records_restored_total", "Changelog records applied while restoring partitions.", stats.RecordsRestored.Load),
		counter("enricher_rebalances_total", "Partition assignments received.", stats.Rebalances.Load),
		counter("enricher_processor_restarts_total", "Processors rebuilt after a failure.", stats.Restarts.Load),
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
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	dlq := m.stats.DeadLettered()
	for _, r := range codecs.Reasons {
		ch <- prometheus.MustNewConstMetric(m.dlq, prometheus.CounterValue, float64(dlq[r]), string(r))
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
