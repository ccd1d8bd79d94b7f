package store

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Cleanup deletes, every interval until ctx ends, the stores of topic in the state directory
// that no longer serve this replica: a store that is neither open in goka, nor a standby or
// warm-up copy, nor kept open for a next session is deleted once it has been so for delay. Of
// the stores moved aside (quarantine) it keeps the newest of each partition, for a look at
// what went wrong, and deletes the older ones.
func (g *Guard) Cleanup(ctx context.Context, topic string, delay, interval time.Duration) {
	unwanted := map[string]time.Time{}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		g.cleanOnce(topic, delay, unwanted, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// cleanOnce is one round of Cleanup at now; unwanted holds when each store was first seen
// serving nothing.
func (g *Guard) cleanOnce(topic string, delay time.Duration, unwanted map[string]time.Time, now time.Time) {
	copies := g.replicas.Copies()
	g.diskMu.Lock()
	defer g.diskMu.Unlock()
	entries, err := os.ReadDir(g.dir)
	if err != nil {
		g.log.Warn("state cleanup cannot list the state directory", "dir", g.dir, "error", err.Error())
		return
	}
	prefix := topic + "."
	quarantined := map[string][]string{} // partition's store name -> its quarantined copies
	seen := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, prefix) {
			continue
		}
		num, suffix, _ := strings.Cut(strings.TrimPrefix(name, prefix), ".")
		p, err := strconv.ParseInt(num, 10, 32)
		if err != nil || p < 0 {
			continue
		}
		if suffix != "" {
			if strings.HasPrefix(suffix, "stale-") || strings.HasPrefix(suffix, "corrupt-") {
				quarantined[prefix+num] = append(quarantined[prefix+num], name)
			}
			continue
		}
		path := filepath.Join(g.dir, name)
		seen[path] = true
		if _, copy := copies[int32(p)]; copy || g.inUse[path] || g.kept.peek(path) != nil {
			delete(unwanted, path)
			continue
		}
		since, ok := unwanted[path]
		if !ok {
			unwanted[path] = now
			continue
		}
		if now.Sub(since) < delay {
			continue
		}
		if err := os.RemoveAll(path); err != nil {
			g.log.Warn("state cleanup cannot delete a store", "path", path, "error", err.Error())
			continue
		}
		delete(unwanted, path)
		delete(g.diskOffsets, path)
		g.log.Info("deleted a local store this replica no longer owns or copies", "path", path, "unused_for", now.Sub(since).Round(time.Second).String())
	}
	for path := range unwanted {
		if !seen[path] {
			delete(unwanted, path)
		}
	}
	for _, names := range quarantined {
		// The suffix is the time it was moved aside, in a sortable layout: the newest sorts last.
		slices.SortFunc(names, func(a, b string) int { return strings.Compare(quarantineTime(a), quarantineTime(b)) })
		for _, name := range names[:len(names)-1] {
			path := filepath.Join(g.dir, name)
			if err := os.RemoveAll(path); err != nil {
				g.log.Warn("state cleanup cannot delete a store moved aside", "path", path, "error", err.Error())
				continue
			}
			g.log.Info("deleted a store moved aside, keeping the newest of its partition", "path", path)
		}
	}
}

// quarantineTime is the time part of a quarantined store's name (after "stale-" or "corrupt-").
func quarantineTime(name string) string {
	if i := strings.LastIndex(name, "-"); i >= 0 {
		return name[i+1:]
	}
	return name
}
