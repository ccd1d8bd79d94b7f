package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/enricher/enricher/internal/changelog"
)

// progressReporter shows the progress of a changelog read, in offsets (a compacted changelog
// holds fewer records than its offsets span): a bar with offsets/s and the offsets remaining
// on a terminal, a plain line every few seconds otherwise.
type progressReporter struct {
	mu       sync.Mutex
	w        io.Writer
	label    string
	terminal bool
	start    time.Time
	last     time.Time
	done     bool
}

func newProgress(w io.Writer, label string) *progressReporter {
	terminal := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil {
			terminal = fi.Mode()&os.ModeCharDevice != 0
		}
	}
	return &progressReporter{w: w, label: label, terminal: terminal, start: time.Now()}
}

// observe is a changelog.Progress.
func (p *progressReporter) observe(read, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	finished := read >= total
	interval := 2 * time.Second
	if p.terminal {
		interval = 100 * time.Millisecond
	}
	if p.done || (!finished && now.Sub(p.last) < interval) {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(read) / elapsed
	}
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(read) / float64(total)
	}
	remaining := total - read
	if remaining < 0 {
		remaining = 0
	}
	if p.terminal {
		const width = 30
		filled := int(pct / 100 * width)
		fmt.Fprintf(p.w, "\r%s [%s%s] %5.1f%% %d/%d offsets, %.0f offsets/s, %d remaining ",
			p.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), pct, read, total, rate, remaining)
		if finished {
			fmt.Fprintln(p.w)
		}
	} else {
		fmt.Fprintf(p.w, "%s: %d/%d offsets (%.1f%%), %.0f offsets/s, %d remaining\n", p.label, read, total, pct, rate, remaining)
	}
	p.done = finished
}

var _ changelog.Progress = (&progressReporter{}).observe
