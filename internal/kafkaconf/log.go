package kafkaconf

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kgoLogger passes a franz-go client's messages to slog. franz-go logs a retried request, a
// dropped connection or a produce error only through its logger: without one, a write that
// waited out a retry backoff shows only as latency.
type kgoLogger struct{ log *slog.Logger }

// Level asks for franz-go's warnings and errors, and its info messages (connections opened,
// metadata changes) when the logger enables debug; franz-go's own debug level logs every
// request and is never asked for.
func (l kgoLogger) Level() kgo.LogLevel {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}

// Log writes one franz-go message at the matching slog level.
func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lvl = slog.LevelError
	case kgo.LogLevelWarn:
		lvl = slog.LevelWarn
	case kgo.LogLevelInfo:
		lvl = slog.LevelDebug // franz-go's info is connection chatter: enricher's debug
	}
	l.log.Log(context.Background(), lvl, msg, keyvals...)
}
