package sipcodec

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/callctx/callctx/session"
)

// Variable names the bridge writes from an inbound INVITE.
const (
	// SIPNamespace is the read-only namespace the bridge fills from inbound headers.
	SIPNamespace = "sip"
	// UUIPrefix is the prefix of the variables filled from User-to-User pairs.
	UUIPrefix = "sip.uui."
	// UUIRawVar keeps a User-to-User value that could not be decoded, as it arrived.
	UUIRawVar = "sip.uui.raw"
	// RawPrefix starts the variable that keeps, as text, a mapped value that did not convert
	// to the type its rule declares: sip.raw.<variable> (sip.raw.ivr.score).
	RawPrefix = "sip.raw."
	// MaxVarName is the longest variable name (DESIGN.md: names ≤ 128 characters).
	MaxVarName = 128
)

// CheckVarName returns an error unless name has the shape of a session variable name:
// `<namespace>.<seg>(.<seg>)*`, every segment non-empty and made of [A-Za-z0-9_-], at most
// MaxVarName characters. Whether the namespace exists and may be written is the session's
// business, not this function's.
func CheckVarName(name string) error {
	if len(name) > MaxVarName {
		return fmt.Errorf("variable name is %d characters long, at most %d allowed", len(name), MaxVarName)
	}
	segs := strings.Split(name, ".")
	if len(segs) < 2 {
		return fmt.Errorf("variable name %q has no namespace (want namespace.name)", name)
	}
	for _, seg := range segs {
		if seg == "" {
			return fmt.Errorf("variable name %q has an empty segment", name)
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
				return fmt.Errorf("variable name %q holds %q; segments allow only A-Z a-z 0-9 _ -", name, c)
			}
		}
	}
	return nil
}

// HeaderVar is the variable an inbound header fills by default: `sip.` + the lower-case
// header name (`X-Customer-ID` → `sip.x-customer-id`).
func HeaderVar(name string) string { return SIPNamespace + "." + strings.ToLower(name) }

// UUIVar is the variable a User-to-User key fills by default: `sip.uui.<key>`, the key's case
// kept (Dynamics 365 matches context variables to UUI keys exactly).
func UUIVar(key string) string { return UUIPrefix + key }

// Type is the JSON type a mapped value is stored as.
type Type string

// Types of mapped values.
const (
	TypeString  Type = "string"  // the text as it arrived (the default)
	TypeNumber  Type = "number"  // a JSON number literal: 42, -1.5, 1e3 (not 007, +49, 0x1F)
	TypeBoolean Type = "boolean" // true, false, 1, 0 (any letter case)
	TypeJSON    Type = "json"    // any JSON value: an object, an array, a string in quotes …
)

// Valid reports whether t is a known type ("" is the default, string).
func (t Type) Valid() bool {
	switch t {
	case "", TypeString, TypeNumber, TypeBoolean, TypeJSON:
		return true
	}
	return false
}

// Rule is one entry of the inbound map: the variable a header or UUI key fills ("" for its
// default name) and the type its value is stored as ("" for string).
type Rule struct {
	Var  string
	Type Type
}

// Renames turns plain renames (source → variable) into rules of type string.
func Renames(renames map[string]string) map[string]Rule {
	out := make(map[string]Rule, len(renames))
	for k, v := range renames {
		out[k] = Rule{Var: v}
	}
	return out
}

// Mapper turns the headers of an inbound INVITE into session variables. The zero value maps
// with no rules. A Mapper is safe for concurrent use once built.
type Mapper struct {
	rules map[string]rule // default variable name → its rule
	extra map[string]bool // lower-case non-X- header names captured because a rule names them
}

// rule is a checked Rule: the variable it renames to ("" keeps the default name, which for a
// REFER is under sip.refer.) and the type.
type rule struct {
	to  string
	typ Type
}

// NewMapper builds a Mapper from configured rules. A key is either a header name
// (`X-Customer-ID`, any case, also a non-X- header such as `Diversion`, which is then
// captured too) or a default variable name (`sip.x-customer-id`, `sip.uui.acct`); the rule
// names the variable to fill instead (`ivr.customer_id`; empty keeps the default name) and
// the type to store the value as. Targets must be valid variable names outside `call.` and
// the names the bridge writes itself; two sources may not share a target.
func NewMapper(rules map[string]Rule) (*Mapper, error) {
	m := &Mapper{rules: make(map[string]rule, len(rules)), extra: map[string]bool{}}
	targets := make(map[string]string, len(rules))
	keys := make([]string, 0, len(rules))
	for k := range rules {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, src := range keys {
		cfg := rules[src]
		from, header, err := renameSource(src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !cfg.Type.Valid() {
			errs = append(errs, fmt.Errorf("sip mapping %q: type %q: use string, number, boolean or json", src, cfg.Type))
			continue
		}
		if cfg.Type == "" {
			cfg.Type = TypeString
		}
		dst := cfg.Var
		if dst == "" {
			dst = from
		}
		// The session's own rule: a target in a namespace that does not exist would pass a
		// shape check here and then fail every call that carries the header.
		if err := session.CheckName(dst, MaxVarName); err != nil {
			errs = append(errs, fmt.Errorf("sip mapping %q: target %q: %w", src, dst, err))
			continue
		}
		if strings.HasPrefix(dst, "call.") {
			errs = append(errs, fmt.Errorf("sip mapping %q: target %q is in the read-only call namespace", src, dst))
			continue
		}
		if reservedVar(dst) {
			errs = append(errs, fmt.Errorf("sip mapping %q: target %q is where the bridge records transfers and legs", src, dst))
			continue
		}
		if prev, dup := m.rules[from]; dup {
			errs = append(errs, fmt.Errorf("sip mapping %q: %s is already mapped to %q", src, from, cmp.Or(prev.to, from)))
			continue
		}
		if other, dup := targets[dst]; dup {
			errs = append(errs, fmt.Errorf("sip mapping %q: target %q is already the target of %q", src, dst, other))
			continue
		}
		targets[dst] = src
		r := rule{typ: cfg.Type}
		if dst != from {
			r.to = dst
		}
		m.rules[from] = r
		if header != "" && !strings.HasPrefix(header, "x-") {
			m.extra[header] = true
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

// rule returns the rule for a default variable name.
func (m *Mapper) rule(def string) (rule, bool) {
	if m == nil {
		return rule{}, false
	}
	r, ok := m.rules[def]
	return r, ok
}

// reservedVar reports whether name is one the bridge writes itself (sip.transfer.*,
// sip.transfers, sip.legs, sip.uui.raw, sip.raw.*), which no mapping may fill.
func reservedVar(name string) bool {
	return name == session.VarTransfers || name == session.VarLegs || name == UUIRawVar ||
		name == "sip.transfer" || strings.HasPrefix(name, "sip.transfer.") ||
		name == strings.TrimSuffix(RawPrefix, ".") || strings.HasPrefix(name, RawPrefix) ||
		name == session.VarReferTarget || name == session.VarReferReferredBy || name == session.VarReferLeg
}

// renameSource normalises a rename key to the default variable name it replaces and, when the
// key is a header name, that name in lower case.
func renameSource(src string) (varName, header string, err error) {
	lower := strings.ToLower(src)
	switch {
	case strings.HasPrefix(lower, UUIPrefix):
		varName = UUIPrefix + src[len(UUIPrefix):] // UUI keys keep their case
	case strings.HasPrefix(lower, SIPNamespace+"."):
		varName = lower // header names are case-insensitive
	default:
		if err := checkMappableHeader(src); err != nil {
			return "", "", fmt.Errorf("sip mapping %q: %w", src, err)
		}
		varName, header = HeaderVar(src), lower
	}
	if err := CheckVarName(varName); err != nil {
		return "", "", fmt.Errorf("sip mapping %q: %w", src, err)
	}
	return varName, header, nil
}

func checkMappableHeader(name string) error {
	if !IsToken(name) {
		return fmt.Errorf("%q is not a header name (RFC 3261 token)", name)
	}
	if strings.EqualFold(name, UUIHeader) {
		return fmt.Errorf("map the User-to-User keys (sip.uui.<key>), not the header")
	}
	return nil
}

// Skip says why one inbound header or UUI key did not become a variable.
type Skip struct {
	Source string // the header name, or "User-to-User key <k>"
	Reason string
}

// Mapped is what Map made of an inbound request's headers.
type Mapped struct {
	Vars    map[string]string // variable name → value, as text
	Types   map[string]Type   // the variables whose rule declares a type other than string
	Skipped []Skip            // headers and keys that could not be names or values, for the log
	Escaped []string          // headers (and User-to-User) whose value was not UTF-8, kept as EscapeText gives it, for the log
	UUIErr  error             // non-nil when User-to-User was undecodable (it is in sip.uui.raw)
}

// Map turns inbound headers into variables:
//   - every header whose name starts with X- (any case) → sip.<lower-case name>; repeated
//     headers are joined with ", " (RFC 3261 §7.3.1);
//   - User-to-User → sip.uui.<key> per pair (ParseUUI); when it cannot be decoded the value
//     is kept as it arrived in sip.uui.raw and UUIErr says why;
//   - any header named in the renames → its target, and every default name with a rename
//     goes to the target instead.
//
// A value that is not valid UTF-8 is kept escaped (EscapeText) and named in Escaped. Names
// that cannot be variable names (characters outside [A-Za-z0-9_-] in a segment, empty
// segments from "..", more than 128 characters) and values with control characters are
// skipped, never repaired: repairing could merge two different headers into one variable.
// A decoded UUI key "raw" is skipped too, since sip.uui.raw is reserved. When a renamed
// variable and a default one land on the same name, the renamed one wins.
func (m *Mapper) Map(headers []Header) Mapped { return m.mapAs(headers, SIPNamespace+".") }

// MapRefer maps the headers of a REFER (its own, and those of its Refer-To URI) through the
// same rules as an INVITE's: a header or key a rule names goes where the rule says, with its
// type; any other lands under sip.refer. instead of sip. (X-AI-Summary →
// sip.refer.x-ai-summary, a User-to-User key k → sip.refer.uui.k, an undecodable
// User-to-User → sip.refer.uui.raw).
func (m *Mapper) MapRefer(headers []Header) Mapped { return m.mapAs(headers, ReferPrefix) }

// ReferPrefix starts the default names of the variables a REFER fills.
const ReferPrefix = "sip.refer."

// mapAs is Map with the default names under prefix instead of sip.
func (m *Mapper) mapAs(headers []Header, prefix string) Mapped {
	out := Mapped{Vars: make(map[string]string), Types: map[string]Type{}}
	var order []string
	values := map[string][]string{}
	var uuiValues []string
	for _, h := range headers {
		lname := strings.ToLower(h.Name)
		switch {
		case lname == strings.ToLower(UUIHeader):
			uuiValues = append(uuiValues, h.Value)
			continue
		case strings.HasPrefix(lname, "x-"):
		case m != nil && m.extra[lname]:
		default:
			continue
		}
		if _, seen := values[lname]; !seen {
			order = append(order, h.Name)
		}
		values[lname] = append(values[lname], h.Value)
	}
	renamed := map[string]bool{}
	owner := map[string]string{} // variable → the header or key that filled it
	set := func(def, value, source string) {
		r, _ := m.rule(def)
		if prefix != SIPNamespace+"." {
			def = prefix + strings.TrimPrefix(def, SIPNamespace+".") // a REFER's default names are its own
		}
		name, typ := cmp.Or(r.to, def), cmp.Or(r.typ, TypeString)
		if name == def && renamed[name] {
			out.Skipped = append(out.Skipped, Skip{Source: source, Reason: fmt.Sprintf("%s is the target of a mapping", name)})
			return
		}
		if name != def {
			renamed[name] = true
			if prev, taken := owner[name]; taken && !strings.EqualFold(prev, source) {
				out.Skipped = append(out.Skipped, Skip{Source: prev, Reason: fmt.Sprintf("%s is the target of a mapping", name)})
			}
		}
		out.Vars[name] = value
		owner[name] = source
		if typ != TypeString {
			out.Types[name] = typ
		} else {
			delete(out.Types, name)
		}
	}
	for _, name := range order {
		value := strings.Join(values[strings.ToLower(name)], ", ")
		if escaped := EscapeText(value); escaped != value {
			value = escaped
			out.Escaped = append(out.Escaped, name)
		}
		def := HeaderVar(name)
		if err := CheckVarName(def); err != nil {
			out.Skipped = append(out.Skipped, Skip{Source: name, Reason: err.Error()})
			continue
		}
		if err := CheckText(value); err != nil {
			out.Skipped = append(out.Skipped, Skip{Source: name, Reason: err.Error()})
			continue
		}
		set(def, value, name)
	}
	if len(uuiValues) > 0 {
		// RFC 7433 allows several UUI values; each is decoded on its own and later keys win.
		raw := strings.Join(uuiValues, ", ")
		var pairs []KV
		for _, v := range uuiValues {
			u, err := ParseUUI(v)
			if err != nil {
				out.UUIErr = err
				pairs = nil
				break
			}
			pairs = append(pairs, u.Pairs...)
		}
		if out.UUIErr != nil {
			if escaped := EscapeText(raw); escaped != raw {
				raw = escaped
				out.Escaped = append(out.Escaped, UUIHeader)
			}
			if err := CheckText(raw); err != nil {
				out.Skipped = append(out.Skipped, Skip{Source: UUIHeader, Reason: err.Error()})
			} else {
				set(UUIRawVar, raw, UUIHeader)
			}
		}
		for _, p := range pairs {
			src := "User-to-User key " + p.Key
			if p.Key == "raw" {
				out.Skipped = append(out.Skipped, Skip{Source: src, Reason: "sip.uui.raw is reserved for undecodable values"})
				continue
			}
			def := UUIVar(p.Key)
			if err := CheckVarName(def); err != nil {
				out.Skipped = append(out.Skipped, Skip{Source: src, Reason: err.Error()})
				continue
			}
			set(def, p.Value, src)
		}
	}
	return out
}

// Unconverted is a mapped value that did not convert to its rule's type.
type Unconverted struct {
	Var    string // the variable the rule names; it is left unset
	Type   Type
	RawVar string // where the text was kept ("" when even that name is too long)
	Reason string
}

// RawVar is the variable that keeps the text of name's value when it does not convert.
func RawVar(name string) string { return RawPrefix + name }

// Values converts the mapped text values to JSON by their types. A value that does not
// convert (or, for json, is not a JSON value the session would store: too deeply nested, say)
// never fails the call: the variable is left unset, the text goes to sip.raw.<variable>, and
// the returned list says so, for the log. maxValueBytes bounds a converted value, as the
// session does.
func (m Mapped) Values(maxValueBytes int) (map[string]json.RawMessage, []Unconverted) {
	out := make(map[string]json.RawMessage, len(m.Vars))
	var bad []Unconverted
	for name, text := range m.Vars {
		typ := m.Types[name]
		v, err := convert(text, typ, maxValueBytes)
		if err == nil {
			out[name] = v
			continue
		}
		u := Unconverted{Var: name, Type: typ, Reason: err.Error()}
		if raw := RawVar(name); CheckVarName(raw) == nil {
			u.RawVar = raw
			out[raw], _ = json.Marshal(text)
		}
		bad = append(bad, u)
	}
	sort.Slice(bad, func(i, j int) bool { return bad[i].Var < bad[j].Var })
	return out, bad
}

// convert turns the text of a header or UUI value into JSON of type t.
func convert(text string, t Type, maxValueBytes int) (json.RawMessage, error) {
	s := strings.TrimSpace(text)
	switch t {
	case "", TypeString:
		return json.Marshal(text)
	case TypeNumber:
		if s == "" || !(s[0] == '-' || s[0] >= '0' && s[0] <= '9') || !json.Valid([]byte(s)) {
			return nil, fmt.Errorf("%q is not a number (a JSON number literal such as 42 or -1.5)", clip(text))
		}
		if err := session.CheckJSON([]byte(s)); err != nil { // 1e400: beyond a float
			return nil, err
		}
		return json.RawMessage(s), nil
	case TypeBoolean:
		switch strings.ToLower(s) {
		case "true", "1":
			return json.RawMessage("true"), nil
		case "false", "0":
			return json.RawMessage("false"), nil
		}
		return nil, fmt.Errorf("%q is not a boolean (true, false, 1 or 0)", clip(text))
	case TypeJSON:
		if !json.Valid([]byte(s)) {
			return nil, fmt.Errorf("%q is not valid JSON", clip(text))
		}
		v, err := session.CompactValue(json.RawMessage(s), maxValueBytes)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, errors.New("the value is JSON null, which a session does not store")
		}
		return v, nil
	}
	return nil, fmt.Errorf("unknown type %q", t)
}

// clip shortens a value quoted in a log line.
func clip(s string) string {
	if r := []rune(s); len(r) > 64 {
		return string(r[:64]) + "…"
	}
	return s
}
