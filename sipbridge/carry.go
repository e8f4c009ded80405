package sipbridge

import (
	"bytes"
	"encoding/json"
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
)

// CallIDHeader carries callctx's call ID on every request and redirect the bridge sends, so
// the next hop can read (or, while the call lives, write) the whole session over REST.
const CallIDHeader = "X-Callctx-Call-Id"

// checkContext checks a TransferContext's shape (not the variables it selects).
func checkContext(c session.TransferContext) error {
	switch c.As {
	case "", CarryHeaders, CarryUUI, CarryBoth:
	default:
		return fmt.Errorf("as must be %s, %s or %s", CarryHeaders, CarryUUI, CarryBoth)
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

// contextHeaders builds the headers that carry the selected variables of a session. Every
// variable whose value cannot travel (a control character, a ';' in a UUI value, …) is
// named in the returned error, which lists the problems as "<variable>: <reason>".
func contextHeaders(vars map[string]json.RawMessage, c session.TransferContext) ([]sipcodec.Header, error) {
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
	var problems []string
	for _, name := range names {
		v := valueText(vars[name])
		if as == CarryHeaders || as == CarryBoth {
			h := sipcodec.Header{Name: headerNameFor(name, c.Names), Value: v}
			if err := sipcodec.CheckHeaderName(h.Name); err != nil {
				problems = append(problems, name+": "+err.Error())
			} else if err := sipcodec.CheckHeaderValue(h.Value); err != nil {
				problems = append(problems, name+": "+err.Error())
			} else {
				hs = append(hs, h)
			}
		}
		if as == CarryUUI || as == CarryBoth {
			p := sipcodec.KV{Key: uuiKeyFor(name, c.Names), Value: v}
			if err := sipcodec.CheckUUIPair(p, enc); err != nil {
				problems = append(problems, name+": "+err.Error())
			} else {
				pairs = append(pairs, p)
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	if len(pairs) > 0 {
		u, err := sipcodec.EncodeUUI(pairs, sipcodec.UUIOptions{Encoding: enc})
		if err != nil {
			return nil, err
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
