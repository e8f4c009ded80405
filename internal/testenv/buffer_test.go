package testenv_test

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callctx/callctx/internal/testenv"
)

func TestCaptureLog(t *testing.T) {
	log, buf := testenv.CaptureLog(t, slog.LevelInfo)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log.Info("request", "n", i)
			log.Debug("below the level")
		}()
	}
	wg.Wait()
	lines := buf.JSONLines()
	if got, want := len(lines), 8; got != want {
		t.Fatalf("%d lines, want %d:\n%s", got, want, buf.String())
	}
	for _, l := range lines {
		if l["msg"] != "request" || l["level"] != "INFO" {
			t.Fatalf("line %v, want an INFO request", l)
		}
	}
	if strings.Contains(buf.String(), "below the level") {
		t.Fatal("a debug line was captured at level info")
	}
}

func TestPoll(t *testing.T) {
	start := time.Now()
	n := 0
	if !testenv.Poll(time.Second, func() bool { n++; return n == 3 }) {
		t.Fatal("Poll gave up on a condition that came true")
	}
	if testenv.Poll(30*time.Millisecond, func() bool { return false }) {
		t.Fatal("Poll reported a condition that never held")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Poll took %s", d)
	}
}
