package job

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/enricher/enricher/internal/producer"
	"github.com/enricher/enricher/internal/store"
)

func TestParseGuarantee(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Guarantee
		ok   bool
	}{
		{"at-least-once", AtLeastOnce, true},
		{"exactly-once", ExactlyOnce, true},
		{"exactly_once_v2", "", false},
		{"", "", false},
	} {
		g, err := ParseGuarantee(tc.in)
		assert.Equal(t, tc.ok, err == nil, tc.in)
		assert.Equal(t, tc.want, g, tc.in)
	}
}

// A replica's transactional id is its static member id, or one kept in its state directory:
// the same on every start there, different on another directory.
func TestTransactionalID(t *testing.T) {
	id, err := TransactionalID(t.TempDir(), "g", "pod-1")
	require.NoError(t, err)
	assert.Equal(t, "g-pod-1", id)

	dir := t.TempDir()
	first, err := TransactionalID(dir, "g", "")
	require.NoError(t, err)
	again, err := TransactionalID(dir, "g", "")
	require.NoError(t, err)
	assert.Equal(t, first, again)
	other, err := TransactionalID(t.TempDir(), "g", "")
	require.NoError(t, err)
	assert.NotEqual(t, first, other)
	assert.Regexp(t, `^g-[0-9a-f]{16}$`, first)
}

// One fencing restarts the processor; three within the window are a clash that stops it.
func TestCommitterFencing(t *testing.T) {
	c := &committer{stores: store.NewHeld()}
	fenced := fmt.Errorf("commit: %w", producer.ErrFenced)
	other := errors.New("broker gone")
	assert.Equal(t, other, c.check(other))
	for i := 1; i <= fencedClash; i++ {
		assert.Equal(t, fenced, c.check(fenced))
		if i < fencedClash {
			assert.NoError(t, c.fatalErr(), "fenced %d times", i)
		}
	}
	assert.ErrorIs(t, c.fatalErr(), producer.ErrFenced)
}
