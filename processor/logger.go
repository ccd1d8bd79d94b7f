package processor

import (
	"fmt"
	"log/slog"
	"strings"
)

// gokaLogger adapts slog to goka's Printf-shaped Logger.
type gokaLogger struct{ log *slog.Logger }

func (l gokaLogger) Print(v ...any)   { l.log.Info(strings.TrimSpace(fmt.Sprint(v...))) }
func (l gokaLogger) Println(v ...any) { l.log.Info(strings.TrimSpace(fmt.Sprintln(v...))) }
func (l gokaLogger) Printf(format string, v ...any) {
	l.log.Info(strings.TrimSpace(fmt.Sprintf(format, v...)))
}
