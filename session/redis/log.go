package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	redis "github.com/redis/go-redis/v9"
)

// LogTo sends the Redis client library's own messages (failed dials,
// reconnects) to logger at debug level instead of standard error. The
// library's logger is process-wide, so cmd calls this once at start-up;
// the store reports every failure that matters through its errors and the
// edges log those.
func LogTo(logger *slog.Logger) {
	redis.SetLogger(libLogger{logger})
}

type libLogger struct{ l *slog.Logger }

func (g libLogger) Printf(ctx context.Context, format string, v ...any) {
	g.l.DebugContext(ctx, "redis client", "msg", strings.TrimSpace(fmt.Sprintf(format, v...)))
}
