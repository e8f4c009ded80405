package session

import (
	"encoding/json"
	"time"
)

// State is the lifecycle state of a call and its session.
type State string

// Call states.
const (
	StateActive State = "active"
	StateEnded  State = "ended"
)

// Direction says who placed a call.
type Direction string

// Call directions.
const (
	DirectionInbound  Direction = "inbound"
	DirectionOutbound Direction = "outbound"
)

// MaxCallIDLength is the longest call ID a client may choose.
const MaxCallIDLength = 128

// Call is a phone call that callctx keeps a session for.
type Call struct {
	ID        string    `json:"id"`
	State     State     `json:"state"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Direction Direction `json:"direction"`
	Flow      string    `json:"flow,omitempty"`
	Route     string    `json:"route,omitempty"` // the routing table's entry that gave Flow
	StartedAt time.Time `json:"startedAt"`
	EndedAt   time.Time `json:"endedAt,omitzero"`
	EndReason string    `json:"endReason,omitempty"`
	SIPCallID string    `json:"sipCallId,omitempty"`
	ParentID  string    `json:"parentId,omitempty"`
}

// NewCall is what a client or the SIP bridge knows about a call when it
// starts. ID is optional: callctx generates a UUIDv7 when it is empty.
type NewCall struct {
	ID        string
	From      string
	To        string
	Direction Direction // DirectionInbound when empty
	Flow      string
	Route     string // the routing table's entry that picked Flow, if one did
	SIPCallID string
	ParentID  string
	Variables map[string]json.RawMessage // seeds the session, under the same rules as a write
	// EndReason, when set, records the call as ended the moment it starts, in one write:
	// a call the SIP bridge redirected is over for callctx as soon as the 302 is sent.
	EndReason string
}

// StateFilter selects calls by state when listing.
type StateFilter string

// State filters for ListCalls.
const (
	FilterActive StateFilter = "active"
	FilterEnded  StateFilter = "ended"
	FilterAll    StateFilter = "all"
)

// ListOptions page through calls, newest first.
type ListOptions struct {
	State  StateFilter // FilterActive when empty
	Limit  int         // 1..MaxListLimit; DefaultListLimit when 0
	Cursor string      // opaque, from a previous page's Next
}

// Paging limits for ListCalls.
const (
	DefaultListLimit = 50
	MaxListLimit     = 1000
)

// CallPage is one page of calls and the cursor of the next page ("" at the
// end).
type CallPage struct {
	Items []*Call
	Next  string
}

// ValidCallID reports whether id may name a call: 1 to 128 characters of
// letters, digits, '.', '_', ':' and '-'.
func ValidCallID(id string) bool {
	if len(id) == 0 || len(id) > MaxCallIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}
