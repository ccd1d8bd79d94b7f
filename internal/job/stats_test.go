package job

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/enricher/enricher/codecs"
)

// A Stats not made by NewStats still counts dead letters.
func TestZeroStatsCountsDeadLetters(t *testing.T) {
	var s Stats
	s.deadLettered(codecs.ReasonInvalidJSON)
	s.deadLettered(codecs.ReasonInvalidJSON)
	assert.Equal(t, int64(2), s.DeadLettered()[codecs.ReasonInvalidJSON])
}
