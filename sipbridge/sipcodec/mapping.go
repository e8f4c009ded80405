package sipcodec

import (
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

// Mapper turns the headers of an inbound INVITE into session variables. The zero value maps
// with no renames. A Mapper is safe for concurrent use once built.
type Mapper struct {
	renames map[string]string // default variable name → configured name
	extra   map[string]bool   // lower-case non-X- header names captured because a rename names them
}

// NewMapper builds a Mapper from configured renames. A key is either a header name
// (`X-Customer-ID`, any case, also a non-X- header such as `Diversion`, which is then
// captured too) or a default variable name (`sip.x-customer-id`, `sip.uui.acct`); the value
// is the variable to fill instead (`ivr.customer_id`). Targets must be valid variable names
// outside `call.`; two sources may not share a target.
func NewMapper(renames map[string]string) (*Mapper, error) {
	m := &Mapper{renames: make(map[string]string, len(renames)), extra: map[string]bool{}}
	targets := make(map[string]string, len(renames))
	keys := make([]string, 0, len(renames))
	for k := range renames {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, src := range keys {
		dst := renames[src]
		from, header, err := renameSource(src)
		if err != nil {
			errs = append(errs, err)
			continue
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
		if prev, dup := m.renames[from]; dup {
			errs = append(errs, fmt.Errorf("sip mapping %q: %s is already mapped to %q", src, from, prev))
			continue
		}
		if other, dup := targets[dst]; dup {
			errs = append(errs, fmt.Errorf("sip mapping %q: target %q is already the target of %q", src, dst, other))
			continue
		}
		targets[dst] = src
		m.renames[from] = dst
		if header != "" && !strings.HasPrefix(header, "x-") {
			m.extra[header] = true
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

// reservedVar reports whether name is one the bridge writes itself (sip.transfer.*,
// sip.transfers, sip.legs, sip.uui.raw), which no mapping may fill.
func reservedVar(name string) bool {
	return name == session.VarTransfers || name == session.VarLegs || name == UUIRawVar ||
		name == "sip.transfer" || strings.HasPrefix(name, "sip.transfer.")
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
	Vars    map[string]string // variable name → value
	Skipped []Skip            // headers and keys that could not be names or values, for the log
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
// Names that cannot be variable names (characters outside [A-Za-z0-9_-] in a segment, empty
// segments from "..", more than 128 characters) and values with control characters are
// skipped, never repaired: repairing could merge two different headers into one variable.
// A decoded UUI key "raw" is skipped too, since sip.uui.raw is reserved. When a renamed
// variable and a default one land on the same name, the renamed one wins.
func (m *Mapper) Map(headers []Header) Mapped {
	out := Mapped{Vars: make(map[string]string)}
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
		name := def
		if m != nil {
			if to, ok := m.renames[def]; ok {
				name = to
			}
		}
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
	}
	for _, name := range order {
		value := strings.Join(values[strings.ToLower(name)], ", ")
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
