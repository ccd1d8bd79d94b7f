package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// result is what one system measured.
type result struct {
	System string `json:"system"`
	ID     string `json:"id"`
	// StartupSeconds runs from the first process start until probes of every partition came
	// back with the right scores: the scores topic read and the table built.
	StartupSeconds float64     `json:"startup_seconds"`
	InputsPerSec   float64     `json:"inputs_per_sec"`
	Load           []loadPoint `json:"load"`
	// RebalancePauseSeconds is the longest gap between outputs after a second replica started.
	RebalancePauseSeconds *float64 `json:"rebalance_pause_seconds,omitempty"`
	// RebalanceStallSeconds is the longest time one output partition went without an output
	// after the second replica started: a partition stopped by the rebalance shows here even
	// while others go on.
	RebalanceStallSeconds *float64 `json:"rebalance_stall_seconds,omitempty"`
	// RebalanceInputOwners is how many replicas were assigned input partitions when the
	// rebalance phase ended: 2 means the new replica took work within the phase.
	RebalanceInputOwners *int `json:"rebalance_input_owners,omitempty"`
	// Cold restore: a replica started with no local state, from its start until probes of
	// every partition came back right; records are the changelog's at that time.
	RestoredRecords    int64    `json:"restored_records,omitempty"`
	ColdRestoreSeconds float64  `json:"cold_restore_seconds,omitempty"`
	ColdRestorePerSec  *float64 `json:"cold_restore_records_per_sec,omitempty"`
	// RawChangelogReadPerSec is one franz-go client reading the same changelog, records/s.
	RawChangelogReadPerSec *float64 `json:"raw_changelog_read_records_per_sec,omitempty"`
	WarmRestartSeconds     *float64 `json:"warm_restart_seconds,omitempty"`
	PeakRSSBytes           int64    `json:"peak_rss_bytes"`
	// Duplicates are outputs seen more than once (at-least-once redelivery), not errors.
	Duplicates int64 `json:"duplicates"`
}

// loadPoint is one fixed-load phase: a fraction of the system's own peak, or (FractionOfPeak 0)
// a rate every system in the run is offered.
type loadPoint struct {
	FractionOfPeak float64 `json:"fraction_of_peak,omitempty"`
	OfferedPerSec  float64 `json:"offered_per_sec"`
	AchievedPerSec float64 `json:"achieved_per_sec"`
	P50ms          float64 `json:"p50_ms"`
	P95ms          float64 `json:"p95_ms"`
	P99ms          float64 `json:"p99_ms"`
	P999ms         float64 `json:"p99_9_ms"`
	MaxMs          float64 `json:"max_ms"`
	// With --repeat above 1, the figures above are the run with the median p99, and these are
	// the number of runs and the lowest and highest p99 among them: the spread.
	Runs     int     `json:"runs,omitempty"`
	P99MinMs float64 `json:"p99_min_ms,omitempty"`
	P99MaxMs float64 `json:"p99_max_ms,omitempty"`
	// Stages is where enricher's sampled outputs' time went in the run reported (enricher only).
	Stages *stageFigures `json:"stages,omitempty"`
}

// peakFractions are the loads, as fractions of each system's own peak, every run measures.
func peakFractions() []float64 { return []float64{0.25, 0.50, 0.90} }

// label names the load point in the table and progress lines.
func (l loadPoint) label() string {
	if l.FractionOfPeak > 0 {
		return fmt.Sprintf("%d%% of peak", int(math.Round(100*l.FractionOfPeak)))
	}
	return fmt.Sprintf("%.0f/s", l.OfferedPerSec)
}

// matches reports whether l is the load point of the same fraction or common rate as want.
func (l loadPoint) matches(want loadPoint) bool {
	if want.FractionOfPeak > 0 {
		return l.FractionOfPeak == want.FractionOfPeak
	}
	return l.FractionOfPeak == 0 && l.OfferedPerSec == want.OfferedPerSec
}

// report is the run: its workload and each system's figures, in the JSON file as well.
type report struct {
	Brokers       string                        `json:"brokers"`
	Partitions    int                           `json:"partitions"`
	Keys          int                           `json:"keys"`
	Scores        int                           `json:"scores"`
	Inputs        int                           `json:"inputs"`
	MessageBytes  int                           `json:"message_bytes"`
	Distribution  string                        `json:"keys_distribution"`
	LoadWindow    string                        `json:"load_window"`
	Rates         []float64                     `json:"rates,omitempty"`
	Repeat        int                           `json:"repeat"`
	Quick         bool                          `json:"quick"`
	EnricherFlags []string                      `json:"enricher_flags,omitempty"`
	Systems       []result                      `json:"systems"`
	Notes         []string                      `json:"notes,omitempty"`
	Ratios        map[string]map[string]float64 `json:"enricher_ratios,omitempty"`
}

func newReport(o options) *report {
	dist := "uniform"
	if o.zipf {
		dist = "zipf"
	}
	return &report{Brokers: o.brokers, Partitions: o.partitions, Keys: o.keys, Scores: o.scores, Inputs: o.inputs,
		MessageBytes: o.msgBytes, Distribution: dist, LoadWindow: o.window.String(), Rates: o.rates,
		Repeat: o.repeat, Quick: o.quick, EnricherFlags: o.enricherArgs}
}

func (r *report) add(res result) {
	r.Systems = append(r.Systems, res)
	r.Ratios = r.ratios()
}

// figure is one row of the table: how to read it from a result, and which way is better.
type figure struct {
	name   string
	higher bool // higher is better
	get    func(result) (float64, bool)
	format string
}

// figures are the table's rows for this report's load points.
func (r *report) figures() []figure {
	f := []figure{
		{"throughput, inputs/s", true, func(r result) (float64, bool) { return r.InputsPerSec, r.InputsPerSec > 0 }, "%.0f"},
	}
	var loads []loadPoint
	for _, frac := range peakFractions() {
		loads = append(loads, loadPoint{FractionOfPeak: frac})
	}
	for _, rate := range r.Rates {
		loads = append(loads, loadPoint{OfferedPerSec: rate})
	}
	for _, want := range loads {
		at := func(get func(loadPoint) float64) func(result) (float64, bool) {
			return func(r result) (float64, bool) {
				for _, l := range r.Load {
					if l.matches(want) {
						return get(l), true
					}
				}
				return 0, false
			}
		}
		name := want.label()
		if want.FractionOfPeak == 0 {
			name = fmt.Sprintf("%s offered", name)
		}
		f = append(f,
			figure{fmt.Sprintf("rate achieved at %s, inputs/s", name), true, at(func(l loadPoint) float64 { return l.AchievedPerSec }), "%.0f"},
			figure{fmt.Sprintf("latency p50 at %s, ms", name), false, at(func(l loadPoint) float64 { return l.P50ms }), "%.1f"},
			figure{fmt.Sprintf("latency p95 at %s, ms", name), false, at(func(l loadPoint) float64 { return l.P95ms }), "%.1f"},
			figure{fmt.Sprintf("latency p99 at %s, ms", name), false, at(func(l loadPoint) float64 { return l.P99ms }), "%.1f"},
			figure{fmt.Sprintf("latency p99.9 at %s, ms", name), false, at(func(l loadPoint) float64 { return l.P999ms }), "%.1f"},
			figure{fmt.Sprintf("latency max at %s, ms", name), false, at(func(l loadPoint) float64 { return l.MaxMs }), "%.1f"},
		)
		if r.Repeat > 1 {
			f = append(f,
				figure{fmt.Sprintf("lowest p99 of %d runs at %s, ms", r.Repeat, name), false, at(func(l loadPoint) float64 { return l.P99MinMs }), "%.1f"},
				figure{fmt.Sprintf("highest p99 of %d runs at %s, ms", r.Repeat, name), false, at(func(l loadPoint) float64 { return l.P99MaxMs }), "%.1f"},
			)
		}
	}
	opt := func(get func(result) *float64) func(result) (float64, bool) {
		return func(r result) (float64, bool) {
			if p := get(r); p != nil {
				return *p, true
			}
			return 0, false
		}
	}
	return append(f,
		figure{"rebalance pause (longest output gap), s", false, opt(func(r result) *float64 { return r.RebalancePauseSeconds }), "%.2f"},
		figure{"rebalance stall (longest gap of one partition), s", false, opt(func(r result) *float64 { return r.RebalanceStallSeconds }), "%.2f"},
		figure{"cold restore, changelog records/s", true, opt(func(r result) *float64 { return r.ColdRestorePerSec }), "%.0f"},
		figure{"warm restart to processing, s", false, opt(func(r result) *float64 { return r.WarmRestartSeconds }), "%.3f"},
		figure{"first start to processing, s", false, func(r result) (float64, bool) { return r.StartupSeconds, r.StartupSeconds > 0 }, "%.2f"},
		figure{"peak RSS, MiB", false, func(r result) (float64, bool) { return float64(r.PeakRSSBytes) / (1 << 20), r.PeakRSSBytes > 0 }, "%.0f"},
	)
}

// ratios are enricher's figure divided by each other system's.
func (r *report) ratios() map[string]map[string]float64 {
	var e *result
	for i := range r.Systems {
		if r.Systems[i].ID == "enricher" {
			e = &r.Systems[i]
		}
	}
	if e == nil {
		return nil
	}
	out := map[string]map[string]float64{}
	for _, s := range r.Systems {
		if s.ID == "enricher" {
			continue
		}
		m := map[string]float64{}
		for _, f := range r.figures() {
			ev, ok1 := f.get(*e)
			pv, ok2 := f.get(s)
			if ok1 && ok2 && pv != 0 {
				m[f.name] = ev / pv
			}
		}
		out[s.ID] = m
	}
	if e.ColdRestorePerSec != nil && e.RawChangelogReadPerSec != nil {
		out["raw-changelog-read"] = map[string]float64{"cold restore, changelog records/s": *e.ColdRestorePerSec / *e.RawChangelogReadPerSec}
	}
	return out
}

func (r *report) print(w io.Writer) {
	if len(r.Systems) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	head := []string{"figure", "better"}
	for _, s := range r.Systems {
		head = append(head, s.System)
	}
	for _, s := range r.Systems {
		if s.ID != "enricher" && r.Ratios != nil {
			head = append(head, "enricher/"+s.ID)
		}
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, f := range r.figures() {
		better := "lower"
		if f.higher {
			better = "higher"
		}
		row := []string{f.name, better}
		for _, s := range r.Systems {
			if v, ok := f.get(s); ok {
				row = append(row, fmt.Sprintf(f.format, v))
			} else {
				row = append(row, "n/a")
			}
		}
		for _, s := range r.Systems {
			if s.ID == "enricher" || r.Ratios == nil {
				continue
			}
			if v, ok := r.Ratios[s.ID][f.name]; ok {
				row = append(row, fmt.Sprintf("%.2fx", v))
			} else {
				row = append(row, "")
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\n%d partitions, %d keys, %d score records, %d inputs of %d-byte messages (%s keys), %s per load level; one broker at %s\n",
		r.Partitions, r.Keys, r.Scores, r.Inputs, r.MessageBytes, r.Distribution, r.LoadWindow, r.Brokers)
	for _, s := range r.Systems {
		if s.RawChangelogReadPerSec != nil && s.ColdRestorePerSec != nil {
			fmt.Fprintf(w, "%s cold restore against one franz-go client reading the same changelog (%.0f records/s): %.2fx\n",
				s.System, *s.RawChangelogReadPerSec, *s.ColdRestorePerSec / *s.RawChangelogReadPerSec)
		}
		if s.RebalanceInputOwners != nil {
			fmt.Fprintf(w, "%s: %d of 2 replicas owned input partitions when the rebalance phase ended\n", s.System, *s.RebalanceInputOwners)
		}
		if s.Duplicates > 0 {
			fmt.Fprintf(w, "%s: %d duplicate outputs (at-least-once redelivery; none lost, none wrong)\n", s.System, s.Duplicates)
		}
	}
	for _, s := range r.Systems {
		for _, lp := range s.Load {
			if lp.Stages != nil {
				fmt.Fprintf(w, "%s at %s, where the time went (input's timestamp to output acknowledged): %s\n", s.System, lp.label(), lp.Stages.describe())
			}
		}
	}
	if len(r.EnricherFlags) > 0 {
		fmt.Fprintf(w, "enricher ran with %s\n", strings.Join(r.EnricherFlags, " "))
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, n)
	}
	if r.Quick {
		fmt.Fprintln(w, "quick mode: the figures above are a smoke run's, not a measurement")
	}
}
