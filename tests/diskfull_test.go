package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/codecs"
)

const (
	diskFullScores    = 60000
	diskFullReserve   = 4 << 20
	diskFullLeftAbove = 2 << 20 // free space above the reserve when the scores start
)

// The state directory lives on a 32 MiB tmpfs, filled until 2 MiB above the 4 MiB reserve
// (--state-min-free), and 60,000 new keys are scored: their LevelDB writes take the
// filesystem below the reserve. Written at a steady pace, the once-a-second check sees the
// reserve crossed, and the replica stops as on a signal, flushing and committing what it did.
// Written in one burst, the stores fill the disk to its last byte first, their writes fail and
// the processor with them, and the check stops the replica within a second. Either way it exits
// 1 with a line that says why. With space freed it starts again on the same stores, none moved
// aside as corrupt, catches up from the changelog, and loses nothing: every key's score is in
// its store and in its outputs.
func TestStateDiskFull(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		guarantee string
		burst     bool
	}{
		{"at-least-once", false}, {"exactly-once", false}, {"at-least-once", true}, {"exactly-once", true},
	} {
		name := tc.guarantee + "/steady"
		if tc.burst {
			name = tc.guarantee + "/burst"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const partitions = 4
			state := tmpfsDir(t, 32<<20)
			j := newJob(t)
			if tc.guarantee == "exactly-once" {
				readCommitted(j)
			}
			flags := []string{"--guarantee", tc.guarantee, "--state-min-free", fmt.Sprint(diskFullReserve)}
			j.createTopics(partitions)
			p := j.start(state, flags...)
			p.waitRunning(partitions)

			filler := fill(t, state, diskFullReserve+diskFullLeftAbove)
			recs := make([]*kgo.Record, diskFullScores)
			for i := range recs {
				key := diskFullKey(i)
				v, _ := json.Marshal(codecs.Score{Key: key, Score: int64(i)})
				recs[i] = &kgo.Record{Topic: j.topics.Scores, Key: []byte(key), Value: v}
			}
			began := time.Now()
			if tc.burst {
				j.produceRaw(j.topics.Scores, recs...)
			} else {
				// About 0.5 MB of store writes a second: the once-a-second check sees the
				// reserve crossed long before the disk is full.
				for b := 0; b < len(recs) && p.running(); b += 1000 {
					j.produceRaw(j.topics.Scores, recs[b:min(b+1000, len(recs))]...)
					time.Sleep(200 * time.Millisecond)
				}
			}

			require.Equal(t, 1, p.exited(2*time.Minute), "a replica whose disk runs short exits 1")
			line := grepLines(p.logs(), "is nearly full")
			require.NotEmpty(t, line, "a line says why")
			assert.Contains(t, line, state)
			t.Logf("exited %s after the scores began, with: %s", time.Since(began).Round(time.Millisecond), line)
			t.Logf("changelog records at the exit: %d of %d", j.endOffsets(j.topics.Table()), diskFullScores)
			if !tc.burst {
				assert.NotContains(t, p.logs(), "did not stop within", "a stop that flushed and committed")
			}
			// The scores the steady writer did not send once the replica had stopped.
			if n := j.endOffsets(j.topics.Scores); n < diskFullScores {
				j.produceRaw(j.topics.Scores, recs[n:]...)
			}

			require.NoError(t, os.Remove(filler))
			p = j.start(state, flags...)
			p.waitRunning(partitions)
			j.waitChangelogFor(diskFullScores, 2*time.Minute)
			assert.NotContains(t, p.logs(), "local store is corrupt", "no store was damaged")
			assert.NotContains(t, p.logs(), "local store not trusted", "every store was kept")

			// Every key's score reaches its outputs: one input for every 100th key.
			lines := make([]string, 0, diskFullScores/100)
			for i := 0; i < diskFullScores; i += 100 {
				lines = append(lines, inputLine(diskFullKey(i), "after"))
			}
			j.produce("input", lines...)
			outs := j.outputs(len(lines))
			for i := 0; i < diskFullScores; i += 100 {
				o := outs[diskFullKey(i)]
				if assert.Len(t, o, 1, diskFullKey(i)) {
					assert.Equal(t, int64(i), o[0].Score, diskFullKey(i))
				}
			}
			require.Equal(t, 0, p.stop(syscall.SIGTERM))
			local := localTable(t, state, j.topics.Table(), partitions)
			assert.Len(t, local, diskFullScores, "every score is in the local stores")
			assert.Equal(t, j.changelogTable(), local, "the stores hold what the changelog holds")
		})
	}
}

func diskFullKey(i int) string { return fmt.Sprintf("disk-full-key-%040d", i) }

// tmpfsDir mounts a tmpfs of size bytes for the test and returns its path. Mounting needs
// root: elsewhere the test is skipped, and under CI it fails.
func tmpfsDir(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	require.NoError(t, os.Mkdir(dir, 0o755))
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount a tmpfs: %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (root needed): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes a file into dir that leaves free bytes of its filesystem, and returns its path.
func fill(t *testing.T, dir string, free int64) string {
	t.Helper()
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(dir, &st))
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, 1<<20)
	for left := int64(st.Bavail)*st.Bsize - free; left > 0; left -= int64(len(buf)) {
		_, err := f.Write(buf[:min(left, int64(len(buf)))])
		require.NoError(t, err)
	}
	return path
}
