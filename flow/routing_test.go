package flow_test

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/internal/yamldoc"
	"github.com/callctx/callctx/triggers"
)

// routingYAML routes a bank's numbers: the sales line, the free-phone
// hotline while support is open, Hamburg's numbers by pattern, the rest to
// the main menu.
const routingYAML = `
calendars:
  support:
    tz: Europe/Berlin
    weekly: {mon-fri: "08:00-18:00"}
triggers:
  support-open: {when: {calendar: support, is: open}}
  premium: {when: {var: sip.x-tier, op: eq, value: gold}}
flows:
  sales: {start: bye, nodes: {bye: {type: hangup}}}
  hotline: {start: bye, nodes: {bye: {type: hangup}}}
  hamburg: {start: bye, nodes: {bye: {type: hangup}}}
  gold: {start: bye, nodes: {bye: {type: hangup}}}
  main-menu: {start: bye, nodes: {bye: {type: hangup}}}
routing:
  country: DE
  routes:
    - {number: "+49 30 1234567", flow: sales}
    - {prefix: "0800", flow: hotline, when: support-open, name: free-phone}
    - {pattern: "^\\+4940", flow: gold, when: premium}
    - {pattern: "^\\+4940", flow: hamburg}
  default: main-menu
`

func TestRouting_Route(t *testing.T) {
	snap := mustCompile(t, routingYAML, nil)
	r := snap.Routing()
	if r == nil || r.Country != "DE" || len(r.Routes) != 4 || r.Default != "main-menu" {
		t.Fatalf("routing %+v", r)
	}
	open := time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC)   // Monday
	closed := time.Date(2026, 3, 8, 10, 0, 0, 0, time.UTC) // Sunday
	cases := []struct {
		to    string
		vars  triggers.Map
		at    time.Time
		flow  string
		route string
		num   string
	}{
		{"+49301234567", nil, open, "sales", "+49301234567", "+49301234567"},
		{"030 1234567", nil, open, "sales", "+49301234567", "+49301234567"}, // national, country DE
		{"sip:+49301234567@pbx.example.com;user=phone", nil, open, "sales", "+49301234567", "+49301234567"},
		{"tel:+49-30-123-4567", nil, open, "sales", "+49301234567", "+49301234567"}, // visual separators
		{"004930 1234567", nil, open, "sales", "+49301234567", "+49301234567"},      // international call prefix
		{"0800 1234567", nil, open, "hotline", "free-phone", "+498001234567"},
		{"0800 1234567", nil, closed, "main-menu", flow.DefaultRoute, "+498001234567"}, // the trigger does not fire
		{"+4940555000", triggers.Map{"sip.x-tier": "gold"}, open, "gold", `^\+4940`, "+4940555000"},
		{"+4940555000", nil, open, "hamburg", `^\+4940`, "+4940555000"},
		{"+441234567890", nil, open, "main-menu", flow.DefaultRoute, "+441234567890"},
		{"sales", nil, open, "main-menu", flow.DefaultRoute, "sales"},
	}
	for _, tc := range cases {
		got, ok := r.Route(tc.to, tc.vars, tc.at)
		if !ok || got.Flow != tc.flow || got.Route != tc.route || got.Number != tc.num {
			t.Errorf("Route(%q) = %+v %v, want flow %s route %s number %s", tc.to, got, ok, tc.flow, tc.route, tc.num)
		}
	}
	t.Run("NoDefault", func(t *testing.T) {
		snap := mustCompile(t, strings.Replace(routingYAML, "  default: main-menu\n", "", 1), nil)
		if got, ok := snap.Routing().Route("+441234567890", nil, open); ok || got.Flow != "" || got.Number != "+441234567890" {
			t.Errorf("Route = %+v %v, want no route", got, ok)
		}
	})
	t.Run("NoTable", func(t *testing.T) {
		snap := mustCompile(t, "flows:\n  f: {start: b, nodes: {b: {type: hangup}}}\n", nil)
		if snap.Routing() != nil {
			t.Fatal("a directory without routing has a table")
		}
		if _, ok := snap.Routing().Route("+49301234567", nil, open); ok {
			t.Error("no table routes a call")
		}
	})
}

func TestNormalizeNumber(t *testing.T) {
	cases := []struct{ raw, country, want string }{
		{"+49 30 1234567", "", "+49301234567"},
		{"030 1234567", "DE", "+49301234567"},
		{"030 1234567", "", "030 1234567"}, // national without a country: as written
		{"(212) 555-0100", "US", "+12125550100"},
		{"011 49 30 1234567", "US", "+49301234567"}, // the US international call prefix
		{"tel:+1-212-555-0100;ext=1", "", "+12125550100"},
		{"sip:+44 20 7946 0000@sbc.example.net", "", "+442079460000"},
		{"sips:alice@example.com", "DE", "alice"},
		{"", "DE", ""},
	}
	for _, tc := range cases {
		if got := flow.NormalizeNumber(tc.raw, tc.country); got != tc.want {
			t.Errorf("NormalizeNumber(%q, %q) = %q, want %q", tc.raw, tc.country, got, tc.want)
		}
	}
	prefixes := []struct{ raw, country, want string }{
		{"0800", "DE", "+49800"}, {"030", "DE", "+4930"}, {"+49 800", "", "+49800"}, {"0049800", "DE", "+49800"},
		{"+1", "", "+1"}, {"212", "US", "+1212"},
	}
	for _, tc := range prefixes {
		if got := flow.NormalizePrefix(tc.raw, tc.country); got != tc.want {
			t.Errorf("NormalizePrefix(%q, %q) = %q, want %q", tc.raw, tc.country, got, tc.want)
		}
	}
}

// TestRouting_check: duplicates and unreachable routes, unknown flows and
// triggers, a second table.
func TestRouting_check(t *testing.T) {
	const a = `
triggers:
  t: {when: {var: ivr.x, op: set}}
flows:
  f: {start: b, nodes: {b: {type: hangup}}}
routing:
  country: XX
  routes:
    - {number: "+49 30 1234567", flow: f}
    - {number: "+49301234567", flow: f, name: again}
    - {prefix: "+4930", flow: f}
    - {number: "+49 30 7654321", flow: f}
    - {prefix: "+493012", flow: f}
    - {pattern: "^\\+49", flow: f, when: t}
    - {pattern: "(", flow: f}
    - {number: "+4940", flow: nope, when: unknown}
    - {prefix: "+4940", pattern: "x", flow: f}
    - {pattern: ".*", flow: f}
    - {number: "+4989", flow: f}
  default: missing
`
	const b = "routing:\n  routes: []\n"
	_, warns, err := flow.LoadFS(fstest.MapFS{"a.yaml": {Data: []byte(a)}, "b.yaml": {Data: []byte(b)}}, flow.CompileOptions{})
	var got []string
	for _, e := range yamldoc.AsErrors(err) {
		got = append(got, e.Error())
	}
	for _, w := range warns {
		got = append(got, "warning: "+w.Error())
	}
	want := []string{
		`a.yaml:7:3: /routing/country: unknown country "XX": use an ISO 3166 code such as DE, GB or US`,
		`a.yaml:10:7: /routing/routes/1: duplicate route: routes/0 (line 9) takes number +49301234567 first`,
		`a.yaml:15:8: /routing/routes/6/pattern: invalid regular expression: error parsing regexp: missing closing ): ` + "`(`",
		`a.yaml:16:25: /routing/routes/7/flow: unknown flow "nope"`,
		`a.yaml:16:37: /routing/routes/7/when: unknown trigger "unknown"`,
		`a.yaml:17:7: /routing/routes/8: a route matches by one of number, prefix or pattern`,
		`a.yaml:20:3: /routing/default: unknown flow "missing"`,
		`b.yaml:1:1: /routing: the routing table is already defined at a.yaml:6; a directory has one`,
		`warning: a.yaml:12:7: /routing/routes/3: route number +49307654321 is never used: routes/2 (line 11) (prefix +4930) takes its calls first`,
		`warning: a.yaml:13:7: /routing/routes/4: route prefix +493012 is never used: routes/2 (line 11) (prefix +4930) takes its calls first`,
		`warning: a.yaml:19:7: /routing/routes/10: route number +4989 is never used: routes/9 (line 18) (pattern .*) takes its calls first`,
	}
	if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
		t.Errorf("problems:\n%s\nwant:\n%s", g, w)
	}
}
