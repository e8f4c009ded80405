// Package session is the domain of callctx: calls, their sessions of typed
// variables, the rules for naming and writing those variables, and the
// Service that applies them on top of a Store.
//
// A session belongs to exactly one call. Its variables live in namespaces,
// the part of a name before the first dot:
//
//   - call. is set by callctx from the call itself and is read-only;
//   - sip. is set by the SIP bridge from inbound signalling and is read-only
//     for clients;
//   - ivr. is written by external systems such as a CRM;
//   - app. is written by flows and call-control clients.
//
// Writes merge like JSON Merge Patch (RFC 7396) over a flat map: a key with
// a value sets it, a key with null deletes it, absent keys are untouched.
// Every accepted write that changes something increments the session's
// version and appends a HistoryEntry naming the actor.
//
// This package imports nothing else from callctx and never logs: it returns
// *Error values whose message is safe to show a client.
package session
