package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// ParseVariables parses a JSON object of variables, such as the body of a
// session write, into a map whose values are sub-slices of data: data
// must not change while the map is in use. Values are not compacted or
// checked beyond being well-formed JSON; the write rules do that. It is
// the same as json.Unmarshal into map[string]json.RawMessage (a later
// duplicate name wins), without a copy per value.
func ParseVariables(data []byte) (map[string]json.RawMessage, error) {
	sc := scanner{data: data}
	vars := make(map[string]json.RawMessage, 8)
	err := sc.object(0, func(name, value []byte) error {
		n, err := names.string(name)
		vars[n] = value
		return err
	})
	if err != nil {
		return nil, err
	}
	if sc.skipSpace(); sc.pos != len(sc.data) {
		return nil, sc.errorf("unexpected data after the object")
	}
	return vars, nil
}

// UnmarshalJSON decodes a session's JSON (see AppendJSON) without
// reflection: it copies b once and the variables' values are sub-slices of
// that copy.
func (s *Session) UnmarshalJSON(b []byte) error {
	sc := scanner{data: bytes.Clone(b)}
	return sc.object(0, func(key, value []byte) error {
		var err error
		switch string(key) {
		case `"callId"`:
			s.CallID, err = unquote(value)
		case `"state"`:
			var st string
			st, err = unquote(value)
			s.State = State(st)
		case `"version"`:
			s.Version, err = strconv.ParseUint(string(value), 10, 64)
		case `"variables"`:
			vs := scanner{data: value}
			s.Variables = make(map[string]json.RawMessage, 16)
			s.names = make([]string, 0, 16)
			err = vs.object(1, func(name, v []byte) error {
				n, err := names.string(name)
				if _, dup := s.Variables[n]; dup || len(s.names) > 0 && s.names[len(s.names)-1] >= n {
					s.names = nil // not the canonical order: sorted when encoded
				} else if s.names != nil {
					s.names = append(s.names, n)
				}
				s.Variables[n] = v
				return err
			})
		case `"createdAt"`:
			s.CreatedAt, err = parseTime(value)
		case `"updatedAt"`:
			s.UpdatedAt, err = parseTime(value)
		}
		if err != nil {
			return fmt.Errorf("session %s: %w", key, err)
		}
		// Other keys are ignored, as encoding/json would.
		return nil
	})
}

func parseTime(quoted []byte) (time.Time, error) {
	s, err := unquote(quoted)
	if err != nil {
		return time.Time{}, err
	}
	return time.Parse(time.RFC3339Nano, s)
}

// unquote decodes a JSON string token.
func unquote(tok []byte) (string, error) {
	if len(tok) < 2 || tok[0] != '"' {
		return "", errors.New("not a string")
	}
	inner := tok[1 : len(tok)-1]
	simple := true
	for _, c := range inner {
		if c == '\\' || c < 0x20 || c >= 0x80 {
			simple = false
			break
		}
	}
	if simple {
		return string(inner), nil
	}
	var s string
	err := json.Unmarshal(tok, &s) // escapes and non-ASCII: the rare, careful path
	return s, err
}

// names interns variable names: sessions hold the same few dozen names
// (call.id, ivr.email, …) over and over, and a map key costs an allocation
// per name and decode otherwise.
var names = internTable{m: make(map[string]string)}

// maxInterned bounds the table, whatever names clients send.
const maxInterned = 4096

type internTable struct {
	mu sync.RWMutex
	m  map[string]string
}

// string returns the string of a JSON string token.
func (t *internTable) string(tok []byte) (string, error) {
	if len(tok) < 2 {
		return "", errors.New("not a string")
	}
	inner := tok[1 : len(tok)-1]
	t.mu.RLock()
	s, ok := t.m[string(inner)] // no allocation: the conversion is only for the lookup
	t.mu.RUnlock()
	if ok {
		return s, nil
	}
	s, err := unquote(tok)
	if err != nil {
		return "", err
	}
	t.mu.Lock()
	if len(t.m) < maxInterned && string(inner) == s { // only names that need no unescaping
		t.m[s] = s
	}
	t.mu.Unlock()
	return s, nil
}

// scanner walks a JSON text without building values.
type scanner struct {
	data []byte
	pos  int
}

func (sc *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at byte %d: %s", sc.pos, fmt.Sprintf(format, args...))
}

func (sc *scanner) skipSpace() {
	for sc.pos < len(sc.data) {
		switch sc.data[sc.pos] {
		case ' ', '\t', '\n', '\r':
			sc.pos++
		default:
			return
		}
	}
}

// object reads an object at nesting depth and calls fn with each member's
// name, as its raw string token with the quotes, and the raw bytes of its
// value.
func (sc *scanner) object(depth int, fn func(name, value []byte) error) error {
	sc.skipSpace()
	if sc.pos >= len(sc.data) || sc.data[sc.pos] != '{' {
		return sc.errorf("want an object")
	}
	sc.pos++
	sc.skipSpace()
	if sc.pos < len(sc.data) && sc.data[sc.pos] == '}' {
		sc.pos++
		return nil
	}
	for {
		sc.skipSpace()
		start := sc.pos
		if err := sc.string(); err != nil {
			return err
		}
		name := sc.data[start:sc.pos]
		sc.skipSpace()
		if sc.pos >= len(sc.data) || sc.data[sc.pos] != ':' {
			return sc.errorf("want ':'")
		}
		sc.pos++
		sc.skipSpace()
		vstart := sc.pos
		if err := sc.value(depth + 1); err != nil {
			return err
		}
		if err := fn(name, sc.data[vstart:sc.pos]); err != nil {
			return err
		}
		if done, err := sc.next('}'); done || err != nil {
			return err
		}
	}
}

// next reads what follows a member or element: a comma (more follow) or
// the container's closing byte (done).
func (sc *scanner) next(closing byte) (done bool, err error) {
	sc.skipSpace()
	if sc.pos >= len(sc.data) {
		return false, sc.errorf("unexpected end")
	}
	switch sc.data[sc.pos] {
	case ',':
		sc.pos++
		return false, nil
	case closing:
		sc.pos++
		return true, nil
	}
	return false, sc.errorf("want ',' or '%c'", closing)
}

// maxScanDepth bounds nesting, as encoding/json does.
const maxScanDepth = 10000

// value skips one value.
func (sc *scanner) value(depth int) error {
	if depth > maxScanDepth {
		return sc.errorf("nested too deeply")
	}
	if sc.pos >= len(sc.data) {
		return sc.errorf("unexpected end")
	}
	switch c := sc.data[sc.pos]; {
	case c == '"':
		return sc.string()
	case c == '{':
		return sc.object(depth, func(_, _ []byte) error { return nil })
	case c == '[':
		sc.pos++
		sc.skipSpace()
		if sc.pos < len(sc.data) && sc.data[sc.pos] == ']' {
			sc.pos++
			return nil
		}
		for {
			sc.skipSpace()
			if err := sc.value(depth + 1); err != nil {
				return err
			}
			if done, err := sc.next(']'); done || err != nil {
				return err
			}
		}
	case c == 't':
		return sc.literal("true")
	case c == 'f':
		return sc.literal("false")
	case c == 'n':
		return sc.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return sc.number()
	}
	return sc.errorf("unexpected %q", sc.data[sc.pos])
}

func (sc *scanner) literal(lit string) error {
	if len(sc.data)-sc.pos < len(lit) || string(sc.data[sc.pos:sc.pos+len(lit)]) != lit {
		return sc.errorf("want %s", lit)
	}
	sc.pos += len(lit)
	return nil
}

// string skips a string token, checking its escapes and that it holds no
// control characters.
func (sc *scanner) string() error {
	if sc.pos >= len(sc.data) || sc.data[sc.pos] != '"' {
		return sc.errorf("want a string")
	}
	sc.pos++
	for sc.pos < len(sc.data) {
		c := sc.data[sc.pos]
		switch {
		case c == '"':
			sc.pos++
			return nil
		case c == '\\':
			if sc.pos+1 >= len(sc.data) {
				return sc.errorf("unexpected end")
			}
			switch sc.data[sc.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				sc.pos += 2
			case 'u':
				if sc.pos+6 > len(sc.data) {
					return sc.errorf("short \\u escape")
				}
				for _, h := range sc.data[sc.pos+2 : sc.pos+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return sc.errorf("bad \\u escape")
					}
				}
				sc.pos += 6
			default:
				return sc.errorf("bad escape")
			}
		case c < 0x20:
			return sc.errorf("control character in a string")
		default:
			sc.pos++
		}
	}
	return sc.errorf("unterminated string")
}

// number skips a number token, following JSON's grammar exactly.
func (sc *scanner) number() error {
	d, p := sc.data, sc.pos
	if p < len(d) && d[p] == '-' {
		p++
	}
	switch {
	case p < len(d) && d[p] == '0':
		p++
	case p < len(d) && d[p] >= '1' && d[p] <= '9':
		for p < len(d) && d[p] >= '0' && d[p] <= '9' {
			p++
		}
	default:
		return sc.errorf("bad number")
	}
	if p < len(d) && d[p] == '.' {
		p++
		if p >= len(d) || d[p] < '0' || d[p] > '9' {
			return sc.errorf("bad number")
		}
		for p < len(d) && d[p] >= '0' && d[p] <= '9' {
			p++
		}
	}
	if p < len(d) && (d[p] == 'e' || d[p] == 'E') {
		p++
		if p < len(d) && (d[p] == '+' || d[p] == '-') {
			p++
		}
		if p >= len(d) || d[p] < '0' || d[p] > '9' {
			return sc.errorf("bad number")
		}
		for p < len(d) && d[p] >= '0' && d[p] <= '9' {
			p++
		}
	}
	sc.pos = p
	return nil
}
