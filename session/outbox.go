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
	// Automation names the automation the entry delivers. Event is the
	// call event that fired it, "" for an entry a flow node queued: a store
	// queues at most MaxEventFirings entries fired by events per call and
	// automation, and leaves out the rest (see Store).
	Automation string    `json:"automation,omitempty"`
	Event      EventType `json:"event,omitempty"`
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

// MaxEventFirings is how often one automation fires on the events of one
// call at most, so that a receiver that writes back on every
// session.updated cannot make an endless loop. The stores count the
// entries they queue (the count is stored, so it holds across restarts and
// nodes).
const MaxEventFirings = 100

// Automations decides which outbox entries a change fires: the flow
// engine's automations that listen to call events. A Service given one
// (Service.SetAutomations) has the store queue those entries with the
// change itself, so that a committed change never loses the automations it
// fires to a crash.
type Automations interface {
	// Fire returns the entries an event fires. The store calls it (through
	// Firing) while it prepares a change, before and outside the write
	// itself, and again for a new version when the session moved on
	// meanwhile; so it must not touch the store, must not keep
	// ev.Variables, and must take nothing it returns as queued until
	// Queued says so.
	Fire(ev *Event) []*OutboxEntry
	// Queued hands over the entries queued with a committed change, for
	// delivery, and those the store left out because their automation had
	// fired MaxEventFirings times on the call's events.
	Queued(queued, dropped []*OutboxEntry)
}

// Firing carries a change's automations through a store write (see
// Patch.Firing and Store.CreateCall). The store calls Fire with the session
// after the change and the change's history entry, queues what it returns
// together with the change, and records the outcome with Done.
type Firing struct {
	Entries func(s *Session, h *HistoryEntry) []*OutboxEntry

	queued, dropped []*OutboxEntry
}

// Done records the entries queued with the committed change, and those
// left out (MaxEventFirings).
func (f *Firing) Done(queued, dropped []*OutboxEntry) {
	if f != nil {
		f.queued, f.dropped = queued, dropped
	}
}

// Fire returns the entries of the change that leaves s with history entry
// h; none when f is nil.
func (f *Firing) Fire(s *Session, h *HistoryEntry) []*OutboxEntry {
	if f == nil || f.Entries == nil || h == nil {
		return nil
	}
	return f.Entries(s, h)
}

// FiringCount names what a store counts for MaxEventFirings: the call and
// automation of an entry fired by an event; ok is false for other entries.
func FiringCount(e *OutboxEntry) (automation string, ok bool) {
	return e.Automation, e.Event != "" && e.Automation != ""
}
