package job

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/lovoo/goka"
)

// gokaLogger adapts slog to goka's Printf-shaped Logger.
type gokaLogger struct{ log *slog.Logger }

// GokaLogger returns log as a goka.Logger, for goka's components (views, web pages).
func GokaLogger(log *slog.Logger) goka.Logger { return gokaLogger{log} }

func (l gokaLogger) Print(v ...any)   { l.log.Info(strings.TrimSpace(fmt.Sprint(v...))) }
func (l gokaLogger) Println(v ...any) { l.log.Info(strings.TrimSpace(fmt.Sprintln(v...))) }
func (l gokaLogger) Printf(format string, v ...any) {
	l.log.Info(strings.TrimSpace(fmt.Sprintf(format, v...)))
}
