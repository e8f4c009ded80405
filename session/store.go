package session

import (
	"context"
	"time"
)

// Store keeps calls, sessions and history durably. A method returns only
// after its change is durable; every change to one session happens in one
// atomic step, so concurrent writers never lose each other's writes.
//
// Errors are *Error values: CodeNotFound, CodeConflict, CodeInvalid and
// CodePreconditionFailed as documented per method, CodeInternal (or
// CodeUnavailable) for failures of the store itself.
type Store interface {
	// CreateCall stores a new call with its first session version and
	// history entry; the call may be ended already (NewCall.EndReason), and
	// is then indexed as ended. CodeConflict when a call with that ID exists.
	// The outbox entries f gives (f may be nil) are queued with the call,
	// as for Apply.
	CreateCall(ctx context.Context, c *Call, s *Session, h *HistoryEntry, f *Firing) error

	// Call returns a call. CodeNotFound when there is none.
	Call(ctx context.Context, id string) (*Call, error)

	// ListCalls returns calls newest first (by start time) and the cursor
	// of the next page, "" at the end. CodeInvalid for a malformed cursor.
	ListCalls(ctx context.Context, opts ListOptions) (*CallPage, error)

	// Session returns the session of a call. CodeNotFound when there is none.
	Session(ctx context.Context, callID string) (*Session, error)

	// SessionJSON returns the canonical JSON of a call's session (see
	// Session.AppendJSON) and its version, without decoding it: the read
	// path of the API. CodeNotFound when there is none.
	SessionJSON(ctx context.Context, callID string) ([]byte, uint64, error)

	// Apply applies p to the session of callID atomically (Patch.Apply
	// inside one transaction) and returns the session after it and the
	// history entry, nil when nothing changed. CodeNotFound, and the errors
	// of Patch.Apply.
	//
	// When p.Firing is set and the write changes something, the store fires
	// it for the session after the write, before and outside the write
	// itself (again for the newer version when the session moved on
	// meanwhile), queues the entries it gives in the same atomic step as
	// the write, leaving out those past MaxEventFirings, and reports both
	// with p.Firing.Done. A write whose entries cannot be queued is not
	// acknowledged: Apply returns an error.
	Apply(ctx context.Context, callID string, p *Patch) (*Session, *HistoryEntry, error)

	// EndCall marks an active call ended at at with reason and applies p to
	// its session, atomically. For a call that had already ended it
	// changes nothing and returns the stored call with ended false.
	// p.Firing as for Apply. CodeNotFound.
	EndCall(ctx context.Context, callID string, at time.Time, reason string, p *Patch) (c *Call, s *Session, h *HistoryEntry, ended bool, err error)

	// History returns the history entries of a call with a version greater
	// than after, oldest first, at most limit of them (limit ≤ 0: all).
	// CodeNotFound when there is no such call.
	History(ctx context.Context, callID string, after uint64, limit int) ([]HistoryEntry, error)

	// Purge deletes up to max calls that ended before before, with their
	// sessions, history, flow state and outbox entries, and returns how many
	// it deleted.
	Purge(ctx context.Context, before time.Time, max int) (int, error)

	// SaveFlowRun stores the flow state of a call (opaque to the store) and
	// queues the outbox entries, in one atomic step: a flow that has moved
	// past an automation node has always queued its requests. CodeNotFound
	// when there is no such call; CodeConflict when an entry ID exists.
	SaveFlowRun(ctx context.Context, callID string, state []byte, queue []*OutboxEntry) error

	// FlowRun returns the flow state last saved for a call. CodeNotFound
	// when there is none.
	FlowRun(ctx context.Context, callID string) ([]byte, error)

	// EnqueueOutbox queues outbox entries of existing calls, leaving out
	// those fired by events past MaxEventFirings, and returns the entries it
	// queued. CodeNotFound when a call does not exist; CodeConflict when an
	// entry ID exists.
	EnqueueOutbox(ctx context.Context, entries []*OutboxEntry) ([]*OutboxEntry, error)

	// UpdateOutbox replaces a queued entry after an attempt: still pending
	// with a new Due, or finished with a zero Due. CodeNotFound when the
	// entry is gone (its call was purged).
	UpdateOutbox(ctx context.Context, e *OutboxEntry) error

	// PendingOutbox returns every pending entry, soonest due first.
	PendingOutbox(ctx context.Context) ([]*OutboxEntry, error)

	// CallOutbox returns every outbox entry of a call, pending or finished,
	// oldest first. CodeNotFound when there is no such call.
	CallOutbox(ctx context.Context, callID string) ([]*OutboxEntry, error)

	// ActiveCalls returns how many calls are active (for metrics; it may
	// read a whole index).
	ActiveCalls(ctx context.Context) (int, error)

	// Ping reports whether the store answers.
	Ping(ctx context.Context) error

	// Close releases the store; in-flight operations finish first.
	Close() error
}
