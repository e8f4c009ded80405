package session

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the canonical JSON of s to b: the object the API
// serves, {"callId","state","version","variables","createdAt","updatedAt"},
// with variables sorted by name. It is written by hand because sessions
// are read far more often than anything else, and reflection would
// dominate the cost of a read.
func (s *Session) AppendJSON(b []byte) []byte {
	b = append(b, `{"callId":`...)
	b = AppendJSONString(b, s.CallID)
	b = append(b, `,"state":`...)
	b = AppendJSONString(b, string(s.State))
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, s.Version, 10)
	b = append(b, `,"variables":{`...)
	names := s.names
	if len(names) != len(s.Variables) {
		names = sortedNames(s.Variables)
	}
	for i, name := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, name)
		b = append(b, ':')
		b = append(b, s.Variables[name]...) // compact JSON, checked when written
	}
	b = append(b, `},"createdAt":"`...)
	b = s.CreatedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","updatedAt":"`...)
	b = s.UpdatedAt.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// sortedNames returns the names of vars in order.
func sortedNames(vars map[string]json.RawMessage) []string {
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// MarshalJSON implements json.Marshaler with AppendJSON.
func (s *Session) MarshalJSON() ([]byte, error) {
	return s.AppendJSON(make([]byte, 0, 256+s.Size())), nil
}

// AppendJSON appends the JSON of c to b: what encoding/json writes for a
// Call, written by hand because every call is encoded when it starts and
// when it ends. A field added to Call must be added here:
// TestCall_AppendJSON fails until it is.
func (c *Call) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = AppendJSONString(b, c.ID)
	b = append(b, `,"state":`...)
	b = AppendJSONString(b, string(c.State))
	b = append(b, `,"from":`...)
	b = AppendJSONString(b, c.From)
	b = append(b, `,"to":`...)
	b = AppendJSONString(b, c.To)
	b = append(b, `,"direction":`...)
	b = AppendJSONString(b, string(c.Direction))
	if c.Flow != "" {
		b = append(b, `,"flow":`...)
		b = AppendJSONString(b, c.Flow)
	}
	if c.Route != "" {
		b = append(b, `,"route":`...)
		b = AppendJSONString(b, c.Route)
	}
	b = append(b, `,"startedAt":"`...)
	b = c.StartedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if !c.EndedAt.IsZero() {
		b = append(b, `,"endedAt":"`...)
		b = c.EndedAt.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if c.EndReason != "" {
		b = append(b, `,"endReason":`...)
		b = AppendJSONString(b, c.EndReason)
	}
	if c.SIPCallID != "" {
		b = append(b, `,"sipCallId":`...)
		b = AppendJSONString(b, c.SIPCallID)
	}
	if c.ParentID != "" {
		b = append(b, `,"parentId":`...)
		b = AppendJSONString(b, c.ParentID)
	}
	return append(b, '}')
}

// EncodeJSON is json.Marshal without its HTML escaping, for the stores:
// '<', '>' and '&' inside stored values (json.RawMessage) must come back
// byte for byte as they were written, or rewriting one unchanged would
// count as a change.
func EncodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// AppendJSON appends the JSON of h to b: {"version","at","actor","event",
// "changes"} with changes sorted by name and absent values as null; event
// is left out when h has none (an entry stored before it was recorded).
func (h *HistoryEntry) AppendJSON(b []byte) []byte {
	b = append(b, `{"version":`...)
	b = strconv.AppendUint(b, h.Version, 10)
	b = append(b, `,"at":"`...)
	b = h.At.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","actor":`...)
	b = AppendJSONString(b, h.Actor)
	if h.Event != "" {
		b = append(b, `,"event":`...)
		b = AppendJSONString(b, string(h.Event))
	}
	b = append(b, `,"changes":{`...)
	names := make([]string, 0, len(h.Changes))
	for name := range h.Changes {
		names = append(names, name)
	}
	slices.Sort(names)
	for i, name := range names {
		if i > 0 {
			b = append(b, ',')
		}
		c := h.Changes[name]
		b = AppendJSONString(b, name)
		b = append(b, `:{"old":`...)
		b = appendRawOrNull(b, c.Old)
		b = append(b, `,"new":`...)
		b = appendRawOrNull(b, c.New)
		b = append(b, '}')
	}
	return append(b, `}}`...)
}

// MarshalJSON implements json.Marshaler with AppendJSON.
func (h *HistoryEntry) MarshalJSON() ([]byte, error) { return h.AppendJSON(nil), nil }

func appendRawOrNull(b []byte, v []byte) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	return append(b, v...)
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string, escaping what RFC 8259
// requires and what browsers need escaped (<, >, &, U+2028, U+2029), and
// replacing invalid UTF-8 with U+FFFD as encoding/json does.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
