package sipbridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/textproto"
	"sort"
	"strings"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge/sipcodec"
)

// Ways a session's variables travel in signalling.
const (
	CarryHeaders = "headers" // one X- header per variable
	CarryUUI     = "uui"     // one User-to-User header with k=v pairs
	CarryBoth    = "both"
	// CarryReference sends one X-Callctx-Context header whose link reads the whole session
	// (see Config.ContextLink), however large it is.
	CarryReference = "reference"
)

// CallIDHeader carries callctx's call ID on every request and redirect the bridge sends, so
// the next hop can read (or, while the call lives, write) the whole session over REST.
const CallIDHeader = "X-Callctx-Call-Id"

// checkContext checks a TransferContext's shape (not the variables it selects).
func checkContext(c session.TransferContext) error {
	switch c.As {
	case "", CarryHeaders, CarryUUI, CarryBoth, CarryReference:
	default:
		return fmt.Errorf("as must be %s, %s, %s or %s", CarryHeaders, CarryUUI, CarryBoth, CarryReference)
	}
	switch c.UUIEncoding {
	case "", sipcodec.UUIPlain, sipcodec.UUIHex:
	default:
		return fmt.Errorf("uuiEncoding must be %s or %s", sipcodec.UUIPlain, sipcodec.UUIHex)
	}
	for _, p := range c.Variables {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.Contains(prefix, "*") {
				return fmt.Errorf("variable pattern %q: only a trailing * is allowed", p)
			}
			continue
		}
		if err := session.CheckName(p, session.DefaultLimits().MaxNameLength); err != nil {
			return fmt.Errorf("variable %q: %v", p, err)
		}
	}
	for v, n := range c.Names {
		if !sipcodec.IsToken(n) {
			return fmt.Errorf("names[%s]: %q is not a header name or UUI key (an RFC 3261 token)", v, n)
		}
	}
	return nil
}

// selectVars returns the names of vars matched by patterns (exact names, or prefixes ending
// in "*"), sorted.
func selectVars(vars map[string]json.RawMessage, patterns []string) []string {
	var out []string
	for name := range vars {
		for _, p := range patterns {
			if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(name, prefix) || name == p {
				out = append(out, name)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// headerNameFor is the header a variable travels in: sip.x-customer-id goes back out as
// X-Customer-Id, any other name as X- plus its dotted parts joined by '-' (ivr.email →
// X-Ivr-Email), unless names maps it.
func headerNameFor(name string, names map[string]string) string {
	if n, ok := names[name]; ok {
		return n
	}
	if rest, ok := strings.CutPrefix(name, "sip.x-"); ok {
		return textproto.CanonicalMIMEHeaderKey("x-" + rest)
	}
	return textproto.CanonicalMIMEHeaderKey("x-" + strings.ReplaceAll(name, ".", "-"))
}

// uuiKeyFor is the User-to-User key a variable travels as: sip.uui.<k> as <k>, any other as
// its full name, unless names maps it.
func uuiKeyFor(name string, names map[string]string) string {
	if n, ok := names[name]; ok {
		return n
	}
	if k, ok := strings.CutPrefix(name, sipcodec.UUIPrefix); ok {
		return k
	}
	return name
}

// valueText is a variable's value as header text: a JSON string as its text, anything else
// as compact JSON.
func valueText(raw json.RawMessage) string {
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return s
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

// headerErrors lists why the custom headers of an outgoing request cannot go out as asked,
// each problem as a field of a transfer request: "headers/<i>/name" and "headers/<i>/value"
// for an explicit header, "headers" for explicit headers over the limits, "context" for a
// session variable that cannot travel (the message names it) or for the limits once the
// context is added.
type headerErrors []session.FieldError

func (es headerErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Name + ": " + e.Message
	}
	return "outgoing headers: " + strings.Join(parts, "; ")
}

// limitErrors turns what sipcodec.CheckHeaderLimits found into field errors named field.
func limitErrors(field string, err error) headerErrors {
	var herrs sipcodec.HeaderErrors
	if !errors.As(err, &herrs) {
		return headerErrors{{Name: field, Message: err.Error()}}
	}
	out := make(headerErrors, len(herrs))
	for i, e := range herrs {
		out[i] = session.FieldError{Name: field, Message: e.Reason}
	}
	return out
}

// idHeader is the X-Callctx-Call-Id header that travels with everything the bridge sends.
func idHeader(callID string) []sipcodec.Header {
	return []sipcodec.Header{{Name: CallIDHeader, Value: callID}}
}

// checkExplicit checks the headers a transfer request or a flow's transfer action asks for:
// each name and value once, then, when they all pass, their number and size together with
// the call ID header that always goes with them. Headers that pass can go out on any
// request of call callID, whatever its context.
func checkExplicit(callID string, hs []sipcodec.Header) headerErrors {
	var errs headerErrors
	for i, h := range hs {
		if err := sipcodec.CheckHeaderName(h.Name); err != nil {
			errs = append(errs, session.FieldError{Name: fmt.Sprintf("headers/%d/name", i), Message: err.Error()})
		}
		if err := sipcodec.CheckHeaderValue(h.Value); err != nil {
			errs = append(errs, session.FieldError{Name: fmt.Sprintf("headers/%d/value", i), Message: err.Error()})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	if err := sipcodec.CheckHeaderLimits(mergeHeaders(idHeader(callID), hs)); err != nil {
		return limitErrors("headers", err)
	}
	return nil
}

// outgoing assembles the custom headers of a request or redirect the bridge sends, checking
// each of them once: X-Callctx-Call-Id, the variables spec selects from vars, and explicit
// (passed by checkExplicit already), which replace carried headers of the same name (any
// case); then the limits over the whole. When the context cannot travel, it returns the
// call ID header and explicit alone, which checkExplicit made sure can, with every reason:
// a redirect or a bridged call goes on with those (the next hop reads the session over
// REST), a transfer refuses.
func (b *Bridge) outgoing(callID string, vars map[string]json.RawMessage, spec session.TransferContext, explicit []sipcodec.Header) ([]sipcodec.Header, headerErrors) {
	var hs []sipcodec.Header
	var errs headerErrors
	if spec.As == CarryReference {
		hs, errs = b.linkHeader(callID)
	} else {
		hs, errs = contextHeaders(vars, spec)
	}
	if len(errs) == 0 {
		all := mergeHeaders(append(idHeader(callID), hs...), explicit)
		err := sipcodec.CheckHeaderLimits(all)
		if err == nil {
			return all, nil
		}
		errs = limitErrors("context", err)
	}
	return mergeHeaders(idHeader(callID), explicit), errs
}

// linkHeader is the one header of context by reference: a fresh link to the call's session.
func (b *Bridge) linkHeader(callID string) ([]sipcodec.Header, headerErrors) {
	if b.cfg.ContextLink == nil {
		return nil, headerErrors{{Name: "context", Message: "as: reference needs context links, which this bridge was given none of"}}
	}
	link, err := b.cfg.ContextLink(callID)
	if err == nil {
		err = sipcodec.CheckHeaderValue(link)
	}
	if err != nil {
		b.log.Error("sip context link", "call_id", callID, "error", err)
		return nil, headerErrors{{Name: "context", Message: "a context link could not be made"}}
	}
	return []sipcodec.Header{{Name: session.ContextLinkHeader, Value: link}}, nil
}

// contextHeaders builds the headers that carry the selected variables of a session, each
// checked as the header or UUI pair it becomes. Every variable whose value cannot travel
// (a control character, a ';' in a UUI value, …) is named in a "context" error.
func contextHeaders(vars map[string]json.RawMessage, c session.TransferContext) ([]sipcodec.Header, headerErrors) {
	names := selectVars(vars, c.Variables)
	as := c.As
	if as == "" {
		as = CarryHeaders
	}
	enc := c.UUIEncoding
	if enc == "" {
		enc = sipcodec.UUIHex
	}
	var hs []sipcodec.Header
	var pairs []sipcodec.KV
	var errs headerErrors
	refuse := func(name string, err error) {
		errs = append(errs, session.FieldError{Name: "context", Message: name + ": " + err.Error()})
	}
	for _, name := range names {
		v := valueText(vars[name])
		if as == CarryHeaders || as == CarryBoth {
			h := sipcodec.Header{Name: headerNameFor(name, c.Names), Value: v}
			if err := sipcodec.CheckHeaderName(h.Name); err != nil {
				refuse(name, err)
			} else if err := sipcodec.CheckHeaderValue(h.Value); err != nil {
				refuse(name, err)
			} else {
				hs = append(hs, h)
			}
		}
		if as == CarryUUI || as == CarryBoth {
			p := sipcodec.KV{Key: uuiKeyFor(name, c.Names), Value: v}
			if err := sipcodec.CheckUUIPair(p, enc); err != nil {
				refuse(name, err)
			} else {
				pairs = append(pairs, p)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if len(pairs) > 0 {
		// The pairs passed CheckUUIPair, so what EncodeUUI writes is a safe header value;
		// it can still refuse their combination (a parameter name as a later plain key).
		u, err := sipcodec.EncodeUUI(pairs, sipcodec.UUIOptions{Encoding: enc})
		if err != nil {
			return nil, headerErrors{{Name: "context", Message: err.Error()}}
		}
		hs = append(hs, sipcodec.Header{Name: sipcodec.UUIHeader, Value: u})
	}
	return hs, nil
}

// mergeHeaders puts explicit headers after the carried ones; an explicit header replaces a
// carried header of the same name (any case).
func mergeHeaders(carried, explicit []sipcodec.Header) []sipcodec.Header {
	if len(explicit) == 0 {
		return carried
	}
	taken := make(map[string]bool, len(explicit))
	for _, h := range explicit {
		taken[strings.ToLower(h.Name)] = true
	}
	out := make([]sipcodec.Header, 0, len(carried)+len(explicit))
	for _, h := range carried {
		if !taken[strings.ToLower(h.Name)] {
			out = append(out, h)
		}
	}
	return append(out, explicit...)
}
