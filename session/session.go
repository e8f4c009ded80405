package session

import (
	"encoding/json"
	"maps"
	"sort"
	"strconv"
	"time"
)

// Session is the versioned bag of variables of one call.
type Session struct {
	CallID    string                     `json:"callId"`
	State     State                      `json:"state"`
	Version   uint64                     `json:"version"`
	Variables map[string]json.RawMessage `json:"variables"`
	CreatedAt time.Time                  `json:"createdAt"`
	UpdatedAt time.Time                  `json:"updatedAt"`

	// encoded is the canonical JSON of this very version, when a store
	// made it already (SetEncoded); JSON serves it.
	encoded []byte
	// names are the names of Variables in order, when known (decoded from
	// the canonical JSON, or kept by Patch.Applied), so that encoding does
	// not sort them again; nil when unknown.
	names []string
}

// SetEncoded records js as the canonical JSON of s (Session.AppendJSON), as
// a store that encoded the session for storage has it, so that JSON need
// not encode it again. s must not change afterwards.
func (s *Session) SetEncoded(js []byte) { s.encoded = js }

// JSON returns the canonical JSON of s: the store's encoding of this
// version (SetEncoded) when there is one, else a new one.
func (s *Session) JSON() []byte {
	if s.encoded != nil {
		return s.encoded
	}
	return s.AppendJSON(make([]byte, 0, 256+s.Size()))
}

// Clone returns a copy of s that shares the values (which are never
// changed in place) but not the map.
func (s *Session) Clone() *Session {
	c := *s
	c.Variables = maps.Clone(s.Variables)
	c.encoded = nil
	return &c
}

// Size returns the bytes the session's names and values take, which
// Limits.MaxSessionBytes bounds.
func (s *Session) Size() int {
	n := 0
	for name, v := range s.Variables {
		n += len(name) + len(v)
	}
	return n
}

// Change is the old and new value of one variable in a write; nil means
// absent (values are never JSON null: null deletes).
type Change struct {
	Old json.RawMessage `json:"old"`
	New json.RawMessage `json:"new"`
}

// UnmarshalJSON decodes a change, keeping absent values nil.
func (c *Change) UnmarshalJSON(b []byte) error {
	var raw struct{ Old, New json.RawMessage }
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	c.Old, c.New = nullToNil(raw.Old), nullToNil(raw.New)
	return nil
}

func nullToNil(v json.RawMessage) json.RawMessage {
	if string(v) == "null" {
		return nil
	}
	return v
}

// HistoryEntry records one accepted write that changed a session.
type HistoryEntry struct {
	Version uint64    `json:"version"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	// Event is the type of the event the write published. Entries stored
	// before it was recorded have none; Type infers it for them.
	Event   EventType         `json:"event,omitempty"`
	Changes map[string]Change `json:"changes"`
}

// WriteOptions say who writes and under which precondition.
type WriteOptions struct {
	IfMatch uint64 // 0: no precondition; else the version the writer read
	Actor   string // recorded in history: a token name, "sip", "flow:<name>"
	Origin  Origin // decides the writable namespaces
	// Event is the type of the event published for the write; EventSessionUpdated when
	// empty. The SIP bridge records transfer outcomes as EventTransferStatus.
	Event EventType
	// Fires names further events whose automations the write fires, queued with it,
	// without publishing them: a flow's transfer outcome reported by the media platform
	// is published as session.updated and fires the transfer.status automations.
	Fires []EventType
}

// checkWrite validates the names and values of a write and returns them as
// the Set of a Patch. Every offending variable is named in the error.
func checkWrite(vars map[string]json.RawMessage, origin Origin, lim Limits) (map[string]json.RawMessage, error) {
	set := make(map[string]json.RawMessage, len(vars))
	var fields []FieldError
	for name, raw := range vars {
		v, refused := checkVariable(name, raw, origin, lim)
		if refused != nil {
			fields = append(fields, *refused)
			continue
		}
		set[name] = v
	}
	if len(fields) > 0 {
		sortFields(fields)
		msg := "1 variable was refused"
		if len(fields) > 1 {
			msg = strconv.Itoa(len(fields)) + " variables were refused"
		}
		return nil, &Error{Code: CodeInvalid, Message: msg + "; nothing was written", Fields: fields}
	}
	return set, nil
}

// checkVariable checks one variable of a write by origin: its name, its
// namespace and its value. It returns the value as compact JSON (nil for
// null: delete), or why the variable is refused.
func checkVariable(name string, raw json.RawMessage, origin Origin, lim Limits) (json.RawMessage, *FieldError) {
	if err := CheckName(name, lim.MaxNameLength); err != nil {
		return nil, &FieldError{Name: name, Message: err.Error(), Variable: true}
	}
	if ns := Namespace(name); !writable(origin, ns) {
		return nil, &FieldError{Name: name, Message: "the " + ns + ". namespace is read-only; clients write ivr. and app.", Variable: true}
	}
	v, err := CompactValue(raw, lim.MaxValueBytes)
	if err != nil {
		return nil, &FieldError{Name: name, Message: err.Error(), Variable: true}
	}
	return v, nil
}

func sortFields(f []FieldError) {
	sort.Slice(f, func(i, j int) bool { return f[i].Name < f[j].Name })
}
