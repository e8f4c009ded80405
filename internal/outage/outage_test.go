package outage_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/internal/outage"
	"github.com/callctx/callctx/internal/testenv"
)

// TestLog: a thousand failures log one line at once, a summary per period
// while they go on, and one line when a period passes without any.
func TestLog(t *testing.T) {
	logger, buf := testenv.CaptureLog(t, slog.LevelInfo)
	l := outage.New(logger, "the store", 50*time.Millisecond)
	defer l.Close()
	for i := 0; i < 1000; i++ {
		l.Failed(errors.New("connection refused"), "path", "/v1/sessions/x")
	}
	if got := strings.Count(buf.String(), "\n"); got != 1 || !strings.Contains(buf.String(), "the store is failing") || !l.Failing() {
		t.Fatalf("after 1000 failures %d lines:\n%s", got, buf.String())
	}
	testenv.WaitFor(t, "a summary", func() bool { return strings.Contains(buf.String(), "still failing") })
	if !strings.Contains(buf.String(), `"failures":999`) {
		t.Fatalf("summary:\n%s", buf.String())
	}
	testenv.WaitFor(t, "the end of the outage", func() bool { return strings.Contains(buf.String(), "works again") })
	if l.Failing() || strings.Count(buf.String(), "\n") != 3 || !strings.Contains(buf.String(), `"failures":1000`) {
		t.Fatalf("log:\n%s", buf.String())
	}
	l.Failed(errors.New("again"))
	if !strings.Contains(buf.String(), `"error":"again"`) {
		t.Fatalf("a new outage is not logged at once:\n%s", buf.String())
	}
}
