package sipbridge

import (
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit bounds how fast one source address may start calls: every INVITE outside a
// dialog takes one token (a challenged one too, so a peer that authenticates spends two
// per call), and an INVITE that finds none is answered 503 Service Unavailable with a
// Retry-After of when the next token comes. It is off when PerSecond is 0.
type RateLimit struct {
	PerSecond float64        // tokens a source earns per second
	Burst     int            // tokens a source may save up; max(1, PerSecond) when 0
	Exempt    []netip.Prefix // sources that are not limited
}

// maxSources bounds the sources a limiter remembers. Beyond it (a flood from many
// addresses) the sources whose bucket is full are forgotten, at most once a second, and
// new sources are refused while it stays full.
const maxSources = 100_000

// limiter is a token bucket per source address.
type limiter struct {
	every  rate.Limit
	burst  int
	exempt []netip.Prefix

	mu        sync.Mutex
	sources   map[netip.Addr]*source
	lastSweep time.Time
}

type source struct {
	lim     *rate.Limiter
	limited bool // its last INVITE was refused: the next refusal is not logged again
}

// newLimiter returns nil when cfg turns the limit off.
func newLimiter(cfg RateLimit) *limiter {
	if cfg.PerSecond <= 0 {
		return nil
	}
	burst := cfg.Burst
	if burst <= 0 {
		burst = max(1, int(math.Ceil(cfg.PerSecond)))
	}
	return &limiter{every: rate.Limit(cfg.PerSecond), burst: burst, exempt: cfg.Exempt, sources: map[netip.Addr]*source{}}
}

// take takes a token for src. When there is none it returns how long until there is, and
// whether this is the first refusal since src last got through (worth a log line).
func (l *limiter) take(src netip.Addr, now time.Time) (ok bool, retry time.Duration, first bool) {
	if l == nil {
		return true, 0, false
	}
	for _, p := range l.exempt {
		if p.Contains(src) {
			return true, 0, false
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute {
		l.sweep(now)
	}
	s := l.sources[src]
	if s == nil {
		if len(l.sources) >= maxSources {
			l.sweep(now)
			if len(l.sources) >= maxSources {
				return false, time.Second, false
			}
		}
		s = &source{lim: rate.NewLimiter(l.every, l.burst)}
		l.sources[src] = s
	}
	r := s.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		first = !s.limited
		s.limited = true
		return false, d, first
	}
	s.limited = false
	return true, 0, false
}

// sweep forgets the sources whose bucket is full again: they are as good as new.
func (l *limiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < time.Second {
		return
	}
	l.lastSweep = now
	for ip, s := range l.sources {
		if s.lim.TokensAt(now) >= float64(l.burst) {
			delete(l.sources, ip)
		}
	}
}

// retryAfter is a Retry-After value in whole seconds, at least 1.
func retryAfter(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
