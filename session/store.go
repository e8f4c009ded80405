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
	// history entry. CodeConflict when a call with that ID exists.
	CreateCall(ctx context.Context, c *Call, s *Session, h *HistoryEntry) error

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
	Apply(ctx context.Context, callID string, p *Patch) (*Session, *HistoryEntry, error)

	// EndCall marks an active call ended at at with reason and applies p to
	// its session, atomically. For a call that had already ended it
	// changes nothing and returns the stored call with ended false.
	// CodeNotFound.
	EndCall(ctx context.Context, callID string, at time.Time, reason string, p *Patch) (c *Call, s *Session, h *HistoryEntry, ended bool, err error)

	// History returns the history entries of a call with a version greater
	// than after, oldest first. CodeNotFound when there is no such call.
	History(ctx context.Context, callID string, after uint64) ([]HistoryEntry, error)

	// Purge deletes up to max calls that ended before before, with their
	// sessions and history, and returns how many it deleted.
	Purge(ctx context.Context, before time.Time, max int) (int, error)

	// Ping reports whether the store answers.
	Ping(ctx context.Context) error

	// Close releases the store; in-flight operations finish first.
	Close() error
}
