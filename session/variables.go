package session

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Namespaces of variable names.
const (
	NamespaceCall = "call"
	NamespaceSIP  = "sip"
	NamespaceIVR  = "ivr"
	NamespaceApp  = "app"
)

// Origin says who is writing, which decides the namespaces it may write.
type Origin uint8

// Origins of writes.
const (
	// OriginClient is an API client or a flow: it may write ivr. and app.
	OriginClient Origin = iota
	// OriginSIP is the SIP bridge: it may also write sip.
	OriginSIP
	// OriginSystem is callctx itself: it may write every namespace.
	OriginSystem
)

// Limits bound what a session may hold. Zero fields take the defaults.
type Limits struct {
	MaxNameLength   int // characters in a variable name
	MaxValueBytes   int // bytes of one value, as compact JSON
	MaxVariables    int // variables in one session
	MaxSessionBytes int // bytes of all names and values of one session
}

// MaxValueDepth is how deeply a value's arrays and objects may nest.
const MaxValueDepth = 32

// DefaultLimits returns the limits of DESIGN.md: names ≤ 128 characters,
// values ≤ 8 KiB, ≤ 256 variables and ≤ 64 KiB per session.
func DefaultLimits() Limits {
	return Limits{MaxNameLength: 128, MaxValueBytes: 8 << 10, MaxVariables: 256, MaxSessionBytes: 64 << 10}
}

// WithDefaults fills zero fields from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.MaxNameLength <= 0 {
		l.MaxNameLength = d.MaxNameLength
	}
	if l.MaxValueBytes <= 0 {
		l.MaxValueBytes = d.MaxValueBytes
	}
	if l.MaxVariables <= 0 {
		l.MaxVariables = d.MaxVariables
	}
	if l.MaxSessionBytes <= 0 {
		l.MaxSessionBytes = d.MaxSessionBytes
	}
	return l
}

// Namespace returns the part of name before its first dot.
func Namespace(name string) string {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return name[:i]
	}
	return name
}

// CheckName reports why name cannot name a variable, or nil. It checks only
// the syntax and the namespace being known, not who may write it.
func CheckName(name string, maxLen int) error {
	if name == "" {
		return fmt.Errorf("the name is empty")
	}
	if n := utf8.RuneCountInString(name); n > maxLen {
		return fmt.Errorf("the name is %d characters long; the limit is %d", n, maxLen)
	}
	ns := Namespace(name)
	if ns == name {
		return fmt.Errorf("the name has no namespace; write ivr.<name> or app.<name>")
	}
	switch ns {
	case NamespaceCall, NamespaceSIP, NamespaceIVR, NamespaceApp:
	default:
		//lint:ignore ST1005 the message ends with a namespace name, not a full stop
		return fmt.Errorf("unknown namespace %q; variables live in call., sip., ivr. and app.", ns+".")
	}
	segStart := true
	for i, r := range name {
		switch {
		case r == '.':
			if segStart {
				return fmt.Errorf("the name has an empty segment at position %d", i+1)
			}
			segStart = true
			continue
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
		case r == ' ':
			return fmt.Errorf("the name contains a space at position %d; names use letters, digits, '_', '-' and '.'", i+1)
		case r < 0x20 || r == 0x7f:
			return fmt.Errorf("the name contains the control character U+%04X at position %d", r, i+1)
		default:
			return fmt.Errorf("the name contains %q at position %d; names use letters, digits, '_', '-' and '.'", r, i+1)
		}
		segStart = false
	}
	if segStart {
		return fmt.Errorf("the name ends with a dot")
	}
	return nil
}

// writable reports whether origin may write namespace ns.
func writable(origin Origin, ns string) bool {
	switch ns {
	case NamespaceIVR, NamespaceApp:
		return true
	case NamespaceSIP:
		return origin >= OriginSIP
	case NamespaceCall:
		return origin >= OriginSystem
	}
	return false
}

// CompactValue checks one value of a write (valid JSON that every client
// can read back, see CheckJSON; at most maxBytes as compact JSON) and
// returns it as compact JSON, in a new slice. A nil result means the value
// is JSON null: delete. The SIP bridge checks converted header values with
// it, so that a value that would fail a write is known before the write.
func CompactValue(raw json.RawMessage, maxBytes int) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, fmt.Errorf("the value is missing")
	}
	if string(raw) == "null" {
		return nil, nil
	}
	// Compact JSON is never longer than its source: a buffer of exactly
	// that size never grows, and an active call holds each of its values
	// for its whole life (bytes.Buffer's Grow rounds up to 64 bytes).
	buf := bytes.NewBuffer(make([]byte, 0, len(raw)))
	if err := json.Compact(buf, raw); err != nil {
		return nil, fmt.Errorf("the value is not valid JSON")
	}
	if buf.Len() > maxBytes {
		return nil, fmt.Errorf("the value is %d bytes as JSON; the limit is %d", buf.Len(), maxBytes)
	}
	if err := CheckJSON(buf.Bytes()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// CheckJSON reports why a well-formed JSON text cannot be stored: what
// every client must be able to read back. encoding/json accepts each of
// these, and strict readers (Python's json with UTF-8, browsers' TextDecoder
// in fatal mode, most JSON schema validators) do not: a string that is not
// valid UTF-8 or holds a lone UTF-16 surrogate escape (\ud800 without its
// pair), and a number beyond the range of a 64-bit float (1e400, which
// would read back as infinity). Arrays and objects may nest at most
// MaxValueDepth levels. It is the one check of text for every write path:
// the HTTP API's, flows', and the SIP bridge's conversions.
func CheckJSON(text []byte) error {
	depth := 0
	for i := 0; i < len(text); {
		switch c := text[i]; {
		case c == '"':
			n, err := checkString(text[i:])
			if err != nil {
				return err
			}
			i += n
		case c == '[' || c == '{':
			if depth++; depth > MaxValueDepth {
				return fmt.Errorf("the value nests more than %d levels deep", MaxValueDepth)
			}
			i++
		case c == ']' || c == '}':
			depth--
			i++
		case c == '-' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(text) && isNumberByte(text[j]) {
				j++
			}
			if err := checkNumber(text[i:j]); err != nil {
				return err
			}
			i = j
		default: // , : true false null and white space
			i++
		}
	}
	return nil
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

// checkNumber refuses a JSON number a 64-bit float cannot hold. Without an
// exponent, a number of fewer than 309 digits always fits.
func checkNumber(num []byte) error {
	if len(num) < 309 && !bytes.ContainsAny(num, "eE") {
		return nil
	}
	if f, err := strconv.ParseFloat(string(num), 64); err != nil && math.IsInf(f, 0) {
		return fmt.Errorf("the value holds the number %s, beyond the range of a 64-bit float (about ±1.8e308)", clipText(num))
	}
	return nil
}

// checkString checks the JSON string that starts text and returns its
// length with the quotes.
func checkString(text []byte) (int, error) {
	for i := 1; i < len(text); {
		c := text[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 < len(text) && text[i+1] == 'u' {
				n, err := checkEscape(text, i)
				if err != nil {
					return 0, err
				}
				i += n
				continue
			}
			i += 2
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(text[i:])
			if r == utf8.RuneError && size <= 1 {
				return 0, fmt.Errorf("the value is not valid UTF-8: byte 0x%02X at position %d; send text as UTF-8", c, i)
			}
			i += size
		}
	}
	return len(text), nil // unterminated: json.Compact refuses it first
}

// checkEscape checks the \uXXXX escape at text[i:] (its well-formedness is
// known) and returns the length of it and, for a surrogate pair, of its
// second half.
func checkEscape(text []byte, i int) (int, error) {
	r := hexRune(text[i+2 : i+6])
	switch {
	case r >= 0xDC00 && r <= 0xDFFF:
		return 0, fmt.Errorf("the value holds a lone UTF-16 surrogate \\u%04x at position %d; escape a character outside the BMP as a pair (\\ud83d\\ude00)", r, i)
	case r >= 0xD800 && r <= 0xDBFF:
		if i+12 <= len(text) && text[i+6] == '\\' && text[i+7] == 'u' {
			if low := hexRune(text[i+8 : i+12]); low >= 0xDC00 && low <= 0xDFFF {
				return 12, nil
			}
		}
		return 0, fmt.Errorf("the value holds a lone UTF-16 surrogate \\u%04x at position %d; escape a character outside the BMP as a pair (\\ud83d\\ude00)", r, i)
	}
	return 6, nil
}

func hexRune(h []byte) rune {
	var r rune
	for _, c := range h {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// clipText shortens a value quoted in an error message.
func clipText(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// Patch is a checked write, ready for a Store to apply to a session inside
// one transaction with Apply.
type Patch struct {
	Set     map[string]json.RawMessage // compact JSON values; nil deletes
	IfMatch uint64                     // 0: no precondition
	Actor   string
	At      time.Time
	Limits  Limits
	// AllowEnded lets the patch write an ended session, and exempts it from
	// the count and size limits: a call whose session is full must still
	// be able to end, and a transfer's outcome must still be recorded. Only
	// the Service sets it: for its own end-of-call patch and for the SIP
	// bridge's record of a transfer's outcome (transferRecord).
	AllowEnded bool
	// Event is the type of the event the write publishes (the Service
	// sets it; EventSessionUpdated when empty), which its history entry
	// records. A store that tells other nodes about writes passes it on.
	Event EventType
	// Firing, when set, has the store queue the automations the write fires
	// together with it (see Firing). Patch.Apply ignores it.
	Firing *Firing
}

// Apply applies p to s in place and returns the history entry it makes, or
// nil when nothing changed. It fails with CodePreconditionFailed when
// IfMatch is set and is not s's version, CodeConflict when the session is
// ended, and CodeInvalid when a limit would be exceeded. On error s is
// unchanged. Apply is pure: stores call it inside their transaction, and it
// is safe to run again on a fresh copy of the same session.
func (p *Patch) Apply(s *Session) (*HistoryEntry, error) {
	changes, err := p.changes(s)
	if err != nil || changes == nil {
		return nil, err
	}
	if s.Variables == nil {
		s.Variables = make(map[string]json.RawMessage, len(changes))
	}
	return p.commit(s, changes), nil
}

// Applied is Apply that leaves base as it is, so that base may be shared
// (a store's cached session): it returns a new session with the patch
// applied, or base itself and a nil entry when nothing changed.
func (p *Patch) Applied(base *Session) (*Session, *HistoryEntry, error) {
	changes, err := p.changes(base)
	if err != nil || changes == nil {
		return base, nil, err
	}
	s := *base
	s.encoded = nil
	s.Variables = make(map[string]json.RawMessage, len(base.Variables)+len(changes))
	maps.Copy(s.Variables, base.Variables)
	h := p.commit(&s, changes)
	if s.names == nil {
		s.names = sortedNames(s.Variables) // for this version's encoding and the next write's
	}
	return &s, h, nil
}

// changes returns what p changes in s: nil when nothing.
func (p *Patch) changes(s *Session) (map[string]Change, error) {
	if p.IfMatch != 0 && p.IfMatch != s.Version {
		return nil, Errorf(CodePreconditionFailed, "the session is at version %d, not %d; read it again and retry", s.Version, p.IfMatch)
	}
	if s.State == StateEnded && !p.AllowEnded {
		return nil, Errorf(CodeConflict, "the call %s has ended; its session is read-only", s.CallID)
	}
	var changes map[string]Change
	count, size := len(s.Variables), s.Size()
	for name, v := range p.Set {
		old, had := s.Variables[name]
		switch {
		case v == nil && !had:
			continue
		case v == nil:
			count--
			size -= len(name) + len(old)
		case had && bytes.Equal(old, v):
			continue
		case had:
			size += len(v) - len(old)
		default:
			count++
			size += len(name) + len(v)
		}
		if changes == nil {
			changes = make(map[string]Change, len(p.Set))
		}
		changes[name] = Change{Old: old, New: v}
	}
	if changes == nil {
		return nil, nil
	}
	lim := p.Limits.WithDefaults()
	if !p.AllowEnded && (count > lim.MaxVariables || size > lim.MaxSessionBytes) {
		return nil, limitError(changes, count, size, lim)
	}
	return changes, nil
}

// commit writes changes into s, which must own its Variables, and makes
// the new version.
func (p *Patch) commit(s *Session, changes map[string]Change) *HistoryEntry {
	for name, c := range changes {
		if c.New == nil {
			delete(s.Variables, name)
		} else {
			s.Variables[name] = c.New
		}
	}
	s.Version++
	s.UpdatedAt = p.At
	s.encoded = nil
	for _, c := range changes {
		if c.Old == nil || c.New == nil { // a name added or deleted
			s.names = nil
			break
		}
	}
	return &HistoryEntry{Version: s.Version, At: p.At, Actor: p.Actor, Event: cmp.Or(p.Event, EventSessionUpdated), Changes: changes}
}

// limitError names the variables of a write that push a session over its
// limits: the ones it adds, for the count, and the ones it grows, for size.
func limitError(changes map[string]Change, count, size int, lim Limits) error {
	e := &Error{Code: CodeInvalid, Message: "the write would exceed the session's limits"}
	for name, c := range changes {
		switch {
		case count > lim.MaxVariables && c.Old == nil && c.New != nil:
			e.Fields = append(e.Fields, FieldError{Name: name, Message: fmt.Sprintf("the session would hold %d variables; the limit is %d", count, lim.MaxVariables), Variable: true})
		case size > lim.MaxSessionBytes && len(c.New) > len(c.Old):
			e.Fields = append(e.Fields, FieldError{Name: name, Message: fmt.Sprintf("the session would hold %d bytes; the limit is %d", size, lim.MaxSessionBytes), Variable: true})
		}
	}
	sortFields(e.Fields)
	return e
}
