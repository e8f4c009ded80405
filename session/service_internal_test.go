package session

import (
	"testing"
	"time"
)

// MaxCallVariables is what callVariables writes for a call with every field set, ended.
func TestMaxCallVariables(t *testing.T) {
	at := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	c := &Call{ID: "c", State: StateEnded, From: "a", To: "b", Direction: DirectionInbound, Flow: "f", Route: "r",
		StartedAt: at, EndedAt: at, EndReason: "redirected", SIPCallID: "x@y", ParentID: "p"}
	if got := len(callVariables(c)); got != MaxCallVariables {
		t.Fatalf("callVariables writes %d variables, MaxCallVariables says %d", got, MaxCallVariables)
	}
}
