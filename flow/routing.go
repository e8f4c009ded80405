package flow

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/callctx/callctx/internal/yamldoc"
	"github.com/callctx/callctx/triggers"
)

// Routing is the routing table of a flows directory: which flow a call
// gets from the number it dialled (call.to), when it names none. Routes are
// tried in the order written; the first that matches, and whose trigger
// (if any) fires, decides. Default takes what no route takes.
type Routing struct {
	// Country is the ISO 3166 region whose national format numbers are
	// read in (030 1234567 is +49301234567 in DE); "" reads international
	// numbers only.
	Country string
	Routes  []*Route
	Default string // the flow of calls no route takes; "" for none
	File    string
	Line    int
}

// Route is one entry of the routing table: one of Number, Prefix and
// Pattern, all on the E.164 form of the number (see NormalizeNumber).
type Route struct {
	Name    string // what call.route records; what it matches by default
	Number  string
	Prefix  string
	Pattern *regexp.Regexp
	Flow    string
	When    *triggers.Trigger // nil: always
	Line    int
	Index   int // its place in the table as written, from 0
}

// DefaultRoute is what call.route records for a call the table's default
// took.
const DefaultRoute = "default"

// Routing returns the routing table, nil when the directory has none.
func (s *Snapshot) Routing() *Routing { return s.routing }

// Routed is where the routing table sends a call.
type Routed struct {
	Flow   string `json:"flow"`
	Route  string `json:"route"`  // the route's name, DefaultRoute for the default
	Number string `json:"number"` // the dialled number, normalised
	Index  int    `json:"index"`  // the route's index; -1 for the default
}

// NormalizeNumber returns the E.164 form (+4930123456) of a dialled number:
// the user of a SIP URI (sip:+4930123456@host), a tel: URI (visual
// separators allowed), an international number with + or the international
// call prefix (0049…), or a number in the national format of country. Text
// that is no phone number (sip:sales@host) comes back as it is, without
// the URI around it.
func NormalizeNumber(raw, country string) string {
	s := strings.TrimSpace(raw)
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "tel:"):
		s, _, _ = strings.Cut(s[4:], ";")
	case strings.HasPrefix(lower, "sip:"), strings.HasPrefix(lower, "sips:"):
		_, s, _ = strings.Cut(s, ":")
		s, _, _ = strings.Cut(s, "@")
		s, _, _ = strings.Cut(s, ";")
	}
	if s == "" || !looksLikeNumber(s) {
		return s
	}
	n, err := phonenumbers.Parse(s, strings.ToUpper(country))
	if err != nil {
		return s
	}
	return phonenumbers.Format(n, phonenumbers.E164)
}

// prefixPad completes a prefix into a number long enough to be read as one;
// the same digits are taken off again after normalising.
const prefixPad = "0000000"

// NormalizePrefix returns the E.164 form of the start of a number, read as
// NormalizeNumber reads numbers: 030 is +4930 in DE, as 030 1234567 is
// +49301234567.
func NormalizePrefix(raw, country string) string {
	s := strings.TrimSpace(raw)
	if !looksLikeNumber(s) {
		return s
	}
	n := NormalizeNumber(s+prefixPad, country)
	if !strings.HasPrefix(n, "+") || !strings.HasSuffix(n, prefixPad) || len(n)-len(prefixPad) < 2 {
		return digitsOf(s)
	}
	return n[:len(n)-len(prefixPad)]
}

// digitsOf drops the visual separators of a number.
func digitsOf(s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(" -.()/", r) {
			return -1
		}
		return r
	}, s)
}

// looksLikeNumber reports whether s is made of what a dialled number is
// written with: digits, a leading +, and visual separators.
func looksLikeNumber(s string) bool {
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0:
		case strings.ContainsRune(" -.()/", r):
		default:
			return false
		}
	}
	return digits > 0
}

// Route picks the flow of a call to the number to. vars are the call's
// variables as a route's trigger sees them (call.*, and what the request
// carries); now is the time they see.
func (r *Routing) Route(to string, vars triggers.Vars, now time.Time) (Routed, bool) {
	if r == nil {
		return Routed{}, false
	}
	number := NormalizeNumber(to, r.Country)
	for i, rt := range r.Routes {
		if rt.matches(number) && (rt.When == nil || rt.When.Eval(vars, now)) {
			return Routed{Flow: rt.Flow, Route: rt.Name, Number: number, Index: i}, true
		}
	}
	if r.Default != "" {
		return Routed{Flow: r.Default, Route: DefaultRoute, Number: number, Index: -1}, true
	}
	return Routed{Number: number, Index: -1}, false
}

func (rt *Route) matches(number string) bool {
	switch {
	case rt.Number != "":
		return number == rt.Number
	case rt.Prefix != "":
		return strings.HasPrefix(number, rt.Prefix)
	case rt.Pattern != nil:
		return rt.Pattern.MatchString(number)
	}
	return false
}

// Match says what the route matches, as it is written: "number +4930…",
// "prefix +49800", "pattern ^\+4940".
func (rt *Route) Match() string {
	switch {
	case rt.Number != "":
		return "number " + rt.Number
	case rt.Prefix != "":
		return "prefix " + rt.Prefix
	case rt.Pattern != nil:
		return "pattern " + rt.Pattern.String()
	}
	return ""
}

// routing compiles the routing section:
//
//	{country?, routes: [{number | prefix | pattern, flow, when?, name?}], default?}
func (c *compiler) routing(def yamldoc.Def, flows map[string]*Flow) *Routing {
	m, _ := def.Value.(map[string]any)
	r := &Routing{Country: strings.ToUpper(str(m, "country")), Default: str(m, "default"), File: def.Doc.File, Line: def.Pos().Line}
	if r.Country != "" && phonenumbers.GetCountryCodeForRegion(r.Country) == 0 {
		c.fail(def, "/country", "unknown country %q: use an ISO 3166 code such as DE, GB or US", str(m, "country"))
		r.Country = ""
	}
	if r.Default != "" && flows[r.Default] == nil {
		c.fail(def, "/default", "unknown flow %q", r.Default)
	}
	list, _ := m["routes"].([]any)
	names := map[string]int{DefaultRoute: -1} // names given, and where
	for i, v := range list {
		ptr := "/routes/" + strconv.Itoa(i)
		rm, _ := v.(map[string]any)
		rt := c.route(def, ptr, r.Country, rm, flows)
		if rt == nil {
			continue
		}
		rt.Index = i
		if n := str(rm, "name"); n != "" {
			if j, dup := names[n]; dup {
				what := "the default route"
				if j >= 0 {
					what = "routes/" + strconv.Itoa(j)
				}
				c.fail(def, ptr+"/name", "route name %q is already taken by %s", n, what)
			}
			names[n] = i
		}
		c.reachable(def, ptr, r.Routes, rt)
		r.Routes = append(r.Routes, rt)
	}
	return r
}

// route compiles one entry; nil when it has no match to test.
func (c *compiler) route(def yamldoc.Def, ptr, country string, m map[string]any, flows map[string]*Flow) *Route {
	rt := &Route{Flow: str(m, "flow"), Line: def.Doc.Pos(def.Pointer + ptr).Line}
	var kinds []string
	for _, k := range []string{"number", "prefix", "pattern"} {
		if _, ok := m[k]; ok {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) != 1 {
		c.fail(def, ptr, "a route matches by one of number, prefix or pattern; found %s", orNone(kinds))
		return nil
	}
	text := str(m, kinds[0])
	switch kinds[0] {
	case "number":
		rt.Number = NormalizeNumber(text, country)
		rt.Name = rt.Number
	case "prefix":
		rt.Prefix = NormalizePrefix(text, country)
		rt.Name = rt.Prefix + "*"
	case "pattern":
		re, err := regexp.Compile(text)
		if err != nil {
			c.fail(def, ptr+"/pattern", "invalid regular expression: %v", err)
			return nil
		}
		rt.Pattern, rt.Name = re, text
	}
	if text == "" {
		c.fail(def, ptr+"/"+kinds[0], "%s is empty", kinds[0])
		return nil
	}
	if n := str(m, "name"); n != "" {
		rt.Name = n
	}
	if flows[rt.Flow] == nil {
		c.fail(def, ptr+"/flow", "unknown flow %q", rt.Flow)
	}
	if w, ok := m["when"].(string); ok {
		rt.When = c.trigger(def, ptr+"/when", w)
	}
	return rt
}

func orNone(kinds []string) string {
	if len(kinds) == 0 {
		return "none"
	}
	return strings.Join(kinds, " and ")
}

// reachable reports a route that an earlier route without a trigger
// always takes first: the same match again is an error (a duplicate), a
// narrower one a warning (it is never used).
func (c *compiler) reachable(def yamldoc.Def, ptr string, earlier []*Route, rt *Route) {
	for _, e := range earlier {
		if e.When != nil {
			continue
		}
		where := fmt.Sprintf("routes/%d (line %d)", e.Index, e.Line)
		if e.Match() == rt.Match() {
			c.fail(def, ptr, "duplicate route: %s takes %s first", where, rt.Match())
			return
		}
		if covers(e, rt) {
			c.warn(def, ptr, "route %s is never used: %s (%s) takes its calls first", rt.Match(), where, e.Match())
			return
		}
	}
}

// covers reports whether every number route b matches is matched by a.
func covers(a, b *Route) bool {
	switch {
	case b.Number != "":
		return a.matches(b.Number)
	case b.Prefix != "" && a.Prefix != "":
		return strings.HasPrefix(b.Prefix, a.Prefix)
	case a.Pattern != nil:
		switch a.Pattern.String() {
		case "", ".*", "^.*", "^.*$", ".", "^":
			return true // a pattern that takes everything
		}
	}
	return false
}
