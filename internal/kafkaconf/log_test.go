package kafkaconf

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestKgoLogger(t *testing.T) {
	tests := []struct {
		name      string
		enabled   slog.Level
		wantLevel kgo.LogLevel
		logAt     kgo.LogLevel
		want      string // the slog level written, "" for nothing
	}{
		{"info logger asks for warnings", slog.LevelInfo, kgo.LogLevelWarn, kgo.LogLevelWarn, "level=WARN"},
		{"errors stay errors", slog.LevelInfo, kgo.LogLevelWarn, kgo.LogLevelError, "level=ERROR"},
		{"franz-go info is debug", slog.LevelInfo, kgo.LogLevelWarn, kgo.LogLevelInfo, ""},
		{"debug logger asks for info", slog.LevelDebug, kgo.LogLevelInfo, kgo.LogLevelInfo, "level=DEBUG"},
		{"franz-go debug is debug", slog.LevelDebug, kgo.LogLevelInfo, kgo.LogLevelDebug, "level=DEBUG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := kgoLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tt.enabled}))}
			if got := l.Level(); got != tt.wantLevel {
				t.Errorf("Level() = %v, want %v", got, tt.wantLevel)
			}
			l.Log(tt.logAt, "retrying", "broker", "1")
			out := buf.String()
			if tt.want == "" {
				if out != "" {
					t.Errorf("logged %q, want nothing", out)
				}
				return
			}
			if !strings.Contains(out, tt.want) || !strings.Contains(out, "broker=1") {
				t.Errorf("logged %q, want %s with the key-values", out, tt.want)
			}
		})
	}
}
