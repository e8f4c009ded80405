package session

import (
	"encoding/json"
	"time"
)

// OutboxEntry is a message callctx has promised to deliver for a call, such
// as an automation's HTTP request. It is kept durably from the moment it is
// queued until it is delivered or given up on, so that a restart loses none,
// and afterwards as the record of what happened.
type OutboxEntry struct {
	ID      string    `json:"id"` // unique and time-ordered (UUIDv7); receivers see it as the Idempotency-Key
	CallID  string    `json:"callId"`
	Created time.Time `json:"created"`
	// Due is when the next attempt is due; zero once the entry is finished
	// (delivered or given up on).
	Due time.Time `json:"due"`
	// Data is what to deliver and what every attempt did. Its format
	// belongs to the package that queues the entry (flow).
	Data json.RawMessage `json:"data"`
}

// Pending reports whether the entry still waits for delivery.
func (e *OutboxEntry) Pending() bool { return !e.Due.IsZero() }

// GroupByCall groups outbox entries by call, keeping their order: the
// calls in the order they first appear, and each call's entries.
func GroupByCall(entries []*OutboxEntry) (calls []string, byCall map[string][]*OutboxEntry) {
	byCall = map[string][]*OutboxEntry{}
	for _, e := range entries {
		if byCall[e.CallID] == nil {
			calls = append(calls, e.CallID)
		}
		byCall[e.CallID] = append(byCall[e.CallID], e)
	}
	return calls, byCall
}
