package testenv

import (
	"testing"
	"time"
)

// WaitTimeout is how long WaitFor waits: long enough for a busy two-core machine running
// several test binaries at once.
const WaitTimeout = 20 * time.Second

// pollEvery is how often Poll and WaitFor look.
const pollEvery = 10 * time.Millisecond

// Poll calls cond until it holds or timeout has passed, and reports whether it held. Only
// tests poll; the code under test is woken by events.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
	return true
}

// WaitFor fails the test unless cond holds within WaitTimeout; what says what was awaited.
func WaitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	if !Poll(WaitTimeout, cond) {
		tb.Fatalf("timed out after %s waiting for %s", WaitTimeout, what)
	}
}
