// Package outage logs the failures of something every request depends on
// (the session store) as changes of state and periodic summaries, not as a
// line per failed request: during a Redis outage of one second, thousands
// of requests fail, and one log line each buries what happened.
package outage

import (
	"log/slog"
	"sync"
	"time"
)

// DefaultEvery is how often a Log sums up a failure that goes on.
const DefaultEvery = 10 * time.Second

// Log records the failures of one dependency. The first failure after a
// quiet time is logged at once, at error level, with its error; while
// failures go on, one line per period says how many there were and the
// latest error; a whole period without a failure is logged as the end of
// the outage, with its length and count. A Log is safe for concurrent use.
type Log struct {
	log   *slog.Logger
	what  string
	every time.Duration

	mu      sync.Mutex
	failing bool
	since   time.Time // the first failure of the outage
	count   int       // failures in the current period
	total   int       // failures in the outage
	last    error
	timer   *time.Timer
	closed  bool
}

// New returns a Log of what ("the session store") that sums up every
// period (DefaultEvery when 0).
func New(log *slog.Logger, what string, every time.Duration) *Log {
	if every <= 0 {
		every = DefaultEvery
	}
	return &Log{log: log, what: what, every: every}
}

// Failed records one failure; attrs describe the request that met it and
// are logged with the first failure of an outage only.
func (l *Log) Failed(err error, attrs ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last = err
	l.total++
	if l.failing {
		l.count++
		return
	}
	l.failing, l.since, l.count = true, time.Now(), 0
	l.log.Error(l.what+" is failing; further failures are summed up every "+l.every.String(), append(attrs, "error", err)...)
	if !l.closed {
		l.timer = time.AfterFunc(l.every, l.tick)
	}
}

// Failing reports whether an outage is in progress: a failure within the
// last period or two.
func (l *Log) Failing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failing
}

func (l *Log) tick() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || !l.failing {
		return
	}
	if l.count > 0 {
		l.log.Error(l.what+" is still failing", "failures", l.count, "period", l.every.String(), "since", l.since, "error", l.last)
		l.count = 0
		l.timer = time.AfterFunc(l.every, l.tick)
		return
	}
	l.log.Info(l.what+" works again: no failure for "+l.every.String(), "failures", l.total, "outage", time.Since(l.since).Round(time.Millisecond).String())
	l.failing, l.total, l.last = false, 0, nil
}

// Close stops the summaries.
func (l *Log) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
	}
}
