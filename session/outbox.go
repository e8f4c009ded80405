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

// Automations decides which outbox entries a change fires: the flow
// engine's automations that listen to call events. A Service given one
// (Service.SetAutomations) has the store queue those entries with the
// change itself, so that a committed change never loses the automations it
// fires to a crash.
type Automations interface {
	// Fire returns the entries an event fires. It is called while the
	// change is being written, possibly more than once for one change (a
	// store may retry its transaction, or refuse the change), so it must be
	// quick, must not touch the store, must not keep ev.Variables, and must
	// take nothing it returns as queued until Queued says so.
	Fire(ev *Event) []*OutboxEntry
	// Queued hands over the entries queued with a committed change, for
	// delivery.
	Queued(entries []*OutboxEntry)
}

// Firing carries a change's automations through a store write (see
// Patch.Firing and Store.CreateCall). The store calls Entries with the
// session after the change and the change's history entry, queues what it
// returns together with the change, and records the outcome with Done.
type Firing struct {
	Entries func(s *Session, h *HistoryEntry) []*OutboxEntry

	queued []*OutboxEntry
	done   bool
}

// Done records that entries were queued with the committed change.
func (f *Firing) Done(entries []*OutboxEntry) {
	if f != nil {
		f.queued, f.done = entries, true
	}
}

// Fired reports whether the change's entries were queued with it, and
// returns them. False when no Firing was given, the change changed nothing,
// or the store could not queue them (the Service then leaves them to the
// automations' event subscriber, as for a change made without a Firing).
func (f *Firing) Fired() ([]*OutboxEntry, bool) {
	if f == nil {
		return nil, false
	}
	return f.queued, f.done
}

// Run returns the entries of the change that leaves s with history entry
// h; none when f is nil.
func (f *Firing) Run(s *Session, h *HistoryEntry) []*OutboxEntry {
	if f == nil || f.Entries == nil || h == nil {
		return nil
	}
	return f.Entries(s, h)
}
