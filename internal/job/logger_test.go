package job

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string
	}{
		{"short", "a processor failed", "a processor failed"},
		{"at the bound", strings.Repeat("x", maxLogText), strings.Repeat("x", maxLogText)},
		{"over the bound", strings.Repeat("x", maxLogText+10), strings.Repeat("x", maxLogText) + " … (10 more bytes)"},
		// 'é' is two bytes: the cut never splits it.
		{"at a character", strings.Repeat("x", maxLogText-1) + "é" + "yz", strings.Repeat("x", maxLogText-1) + " … (4 more bytes)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := clip(tc.in)
			assert.Equal(t, tc.want, got)
			assert.True(t, utf8.ValidString(got))
		})
	}
}
