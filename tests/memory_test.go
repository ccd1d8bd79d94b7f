package tests

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --memory-limit sizes the score caches and the stores' LevelDB buffers from the budget, sets
// the Go runtime's limit, and /metrics reports each store's bytes on disk and the process's
// memory. A budget too small for the table's stores, or not a size, is refused with the reason.
func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	j := newJob(t)
	j.createTopics(partitions)
	p := j.start(t.TempDir(), "--memory-limit", "256MiB")
	p.waitRunning(partitions)
	// 256 MiB over 4 partitions: 15% for the caches at 151 bytes an entry, 10% for the
	// memtables (two a store), 5% for the block caches.
	line := p.waitLog(10*time.Second, `msg="memory budget"`)
	assert.Contains(t, line, "limit=256MiB")
	assert.Contains(t, line, "cache_entries_per_partition=66664")
	assert.Contains(t, line, "leveldb_write_buffer=3355443B")
	assert.Contains(t, line, "leveldb_block_cache=3355443B")

	j.scoreRound(200, 0)
	j.waitChangelog(200)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		m := scrape(t, p.webAddr())
		for part := 0; part < partitions; part++ {
			assert.Greater(c, m[fmt.Sprintf(`enricher_store_disk_bytes{partition="%d"}`, part)], 0.0, "partition %d's store on disk", part)
		}
		assert.Greater(c, m["process_resident_memory_bytes"], 0.0)
		assert.Equal(c, float64(241591910), m["go_gc_gomemlimit_bytes"], "GOMEMLIMIT is 90% of the budget")
	}, 30*time.Second, 500*time.Millisecond)
	require.Equal(t, 0, p.stop(syscall.SIGTERM))

	code, _, stderr := j.enricher("", append([]string{"run", "--state-dir", t.TempDir(), "--memory-limit", "1.5GB"}, j.topicArgs()...)...)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "--memory-limit")
	small := j.start(t.TempDir(), "--memory-limit", "1MiB")
	assert.Equal(t, 1, small.exited(60*time.Second))
	assert.Contains(t, small.logs(), "is too little for 4 partitions' stores: give at least")
}
