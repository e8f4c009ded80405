package session

import (
	"errors"
	"fmt"
	"syscall"
)

// Code classifies an Error. The edges (HTTP, SIP) map each code to a status
// in one table.
type Code string

// Error codes.
const (
	CodeInvalid            Code = "invalid"             // the request breaks a rule; Fields may say which variable
	CodeNotFound           Code = "not_found"           // no such call, session or variable
	CodeConflict           Code = "conflict"            // the call exists already, or is ended
	CodePreconditionFailed Code = "precondition_failed" // If-Match no longer matches
	CodeForbidden          Code = "forbidden"           // the actor may not do this
	CodeTooLarge           Code = "too_large"           // a request too big to consider at all
	CodeUnavailable        Code = "unavailable"         // the store cannot be reached right now, or fails to read or write
	CodeStorageFull        Code = "storage_full"        // the store has no room left (a full disk, Redis at maxmemory); nothing was written
	CodeInternal           Code = "internal"            // a bug or an I/O failure; details are logged, not shown
)

// FieldError names one offending variable (or field) of a rejected request.
type FieldError struct {
	Name     string // the variable name or field, e.g. "ivr.email" or "direction"
	Message  string // why it was refused, safe to show a client
	Variable bool   // Name is a variable of the write, not a field of the request
}

// Error is the one error type of the domain. Message is safe to show a
// client; internal failures carry CodeInternal and a generic message, with
// the cause kept in Err for logging.
type Error struct {
	Code    Code
	Message string
	Fields  []FieldError
	Err     error // the underlying cause, never shown to clients
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a client-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps err as an internal error whose client-facing message says
// nothing about it.
func Internal(err error) *Error {
	return &Error{Code: CodeInternal, Message: "internal error", Err: err}
}

// ErrorCode returns the code of err: the Code of an *Error in its chain,
// CodeInternal for any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the client-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != CodeInternal {
		return e.Message
	}
	return "internal error"
}

// ErrorFields returns the per-field details of err, if any.
func ErrorFields(err error) []FieldError {
	var e *Error
	if errors.As(err, &e) {
		return e.Fields
	}
	return nil
}

// StorageError classifies a failure of a store's own storage for the edges:
// no room left (ENOSPC, EDQUOT) is CodeStorageFull, an I/O error or a file
// system gone read-only (EIO, EROFS) is CodeUnavailable, both worth a retry
// later; anything else is CodeInternal. op names what failed; the cause
// stays in Err, for the log.
func StorageError(op string, err error) *Error {
	err = fmt.Errorf("%s: %w", op, err)
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return &Error{Code: CodeStorageFull, Message: "the session store is out of space; nothing was written; try again later", Err: err}
	case errors.Is(err, syscall.EIO), errors.Is(err, syscall.EROFS):
		return &Error{Code: CodeUnavailable, Message: "the session store cannot write to its disk; nothing was written; try again later", Err: err}
	}
	return Internal(err)
}
