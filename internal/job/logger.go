package job

import (
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/lovoo/goka"
)

// gokaLogger adapts slog to goka's Printf-shaped Logger.
type gokaLogger struct{ log *slog.Logger }

// GokaLogger returns log as a goka.Logger, for goka's components (views, web pages).
func GokaLogger(log *slog.Logger) goka.Logger { return gokaLogger{log} }

func (l gokaLogger) Print(v ...any)   { l.log.Info(clip(strings.TrimSpace(fmt.Sprint(v...)))) }
func (l gokaLogger) Println(v ...any) { l.log.Info(clip(strings.TrimSpace(fmt.Sprintln(v...)))) }
func (l gokaLogger) Printf(format string, v ...any) {
	l.log.Info(clip(strings.TrimSpace(fmt.Sprintf(format, v...))))
}

// maxLogText bounds the text of one log line. goka gathers every failed record of a stopping
// processor into one error: a full disk under load made it 6.5 MB, logged three times over.
const maxLogText = 4 << 10

// clip cuts s to maxLogText bytes, at a character boundary, and says how much it left out.
func clip(s string) string {
	if len(s) <= maxLogText {
		return s
	}
	cut := maxLogText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s … (%d more bytes)", s[:cut], len(s)-cut)
}
