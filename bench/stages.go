package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// stageNames returns enricher's output stages in the order an input passes them (its
// enricher_output_stage_seconds_total labels).
func stageNames() []string { return []string{"fetch", "hold", "queue", "callback", "produce"} }

// stageFigures is where the time of enricher's sampled outputs went in one load phase, from its
// /metrics: mean milliseconds per stage over every sampled output, and over the slowest bands
// that together hold at least 1% of them (the tail).
type stageFigures struct {
	Sampled int64              `json:"sampled_outputs"`
	MeanMs  map[string]float64 `json:"mean_ms"`
	// TailAbove is the lower bound of the tail's total time, TailOutputs its sampled outputs.
	TailAbove   string             `json:"tail_above"`
	TailOutputs int64              `json:"tail_outputs"`
	TailMeanMs  map[string]float64 `json:"tail_mean_ms"`
}

// stageBand is one band of /metrics' breakdown: its sampled outputs and seconds per stage.
type stageBand struct {
	above   time.Duration
	outputs float64
	seconds map[string]float64
}

// scrapeStages reads the breakdown's counters from enricher's /metrics at addr, by band label.
func scrapeStages(ctx context.Context, addr string) (map[string]*stageBand, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseStages(resp.Body)
}

// parseStages reads the breakdown's counters from Prometheus' text format.
func parseStages(r io.Reader) (map[string]*stageBand, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	bands := map[string]*stageBand{}
	for _, name := range []string{"enricher_output_breakdowns_total", "enricher_output_stage_seconds_total"} {
		for _, m := range families[name].GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			b, ok := bands[labels["band"]]
			if !ok {
				lower, _, _ := strings.Cut(labels["band"], "-")
				above, err := time.ParseDuration(lower)
				if err != nil {
					return nil, fmt.Errorf("%s band %q: %w", name, labels["band"], err)
				}
				b = &stageBand{above: above, seconds: map[string]float64{}}
				bands[labels["band"]] = b
			}
			// A sample without its # TYPE line parses as untyped.
			v := m.GetCounter().GetValue() + m.GetUntyped().GetValue()
			if name == "enricher_output_breakdowns_total" {
				b.outputs = v
			} else {
				b.seconds[labels["stage"]] = v
			}
		}
	}
	return bands, nil
}

// stagesBetween is the breakdown of the outputs sampled between two scrapes; nil when there
// were none (a build without the breakdown, or a system that is not enricher).
func stagesBetween(before, after map[string]*stageBand) *stageFigures {
	type delta struct {
		label   string
		above   time.Duration
		outputs float64
		seconds map[string]float64
	}
	var ds []delta
	var total float64
	for label, a := range after {
		d := delta{label: label, above: a.above, outputs: a.outputs, seconds: map[string]float64{}}
		b := before[label]
		for _, st := range stageNames() {
			d.seconds[st] = a.seconds[st]
			if b != nil {
				d.seconds[st] -= b.seconds[st]
			}
		}
		if b != nil {
			d.outputs -= b.outputs
		}
		total += d.outputs
		ds = append(ds, d)
	}
	if total <= 0 {
		return nil
	}
	slices.SortFunc(ds, func(x, y delta) int { return cmp.Compare(y.above, x.above) }) // slowest first
	f := &stageFigures{Sampled: int64(total), MeanMs: map[string]float64{}, TailMeanMs: map[string]float64{}}
	var tail float64
	tailSecs := map[string]float64{}
	for _, d := range ds {
		for _, st := range stageNames() {
			f.MeanMs[st] += 1000 * d.seconds[st] / total
		}
		if tail < 0.01*total && d.outputs > 0 {
			tail += d.outputs
			f.TailAbove = d.above.String()
			for _, st := range stageNames() {
				tailSecs[st] += d.seconds[st]
			}
		}
	}
	f.TailOutputs = int64(tail)
	for _, st := range stageNames() {
		f.TailMeanMs[st] = 1000 * tailSecs[st] / tail
	}
	return f
}

// describe is the breakdown in one line for the progress and the report.
func (f *stageFigures) describe() string {
	parts := func(m map[string]float64) string {
		var b strings.Builder
		for i, st := range stageNames() {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %.1f", st, m[st])
		}
		return b.String()
	}
	return fmt.Sprintf("mean ms of %d sampled outputs: %s; the slowest %d (%.1f%%, over %s): %s",
		f.Sampled, parts(f.MeanMs), f.TailOutputs, 100*float64(f.TailOutputs)/float64(f.Sampled), f.TailAbove, parts(f.TailMeanMs))
}
