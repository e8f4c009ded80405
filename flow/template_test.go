package flow_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/triggers"
)

var tmplVars = triggers.Map{
	"ivr.name":         "Jane",
	"ivr.premium":      true,
	"ivr.amount":       42.5,
	"ivr.count":        json.Number("1e3"),
	"ivr.tags":         []any{"gold", 1.0},
	"ivr.profile":      map[string]any{"tier": "gold"},
	"ivr.nothing":      nil,
	"app.in-put.ref_1": "AB12345",
	"ivr.ref":          "a/b c?d#e",
	"ivr.q":            "x&y=1 +ü",
}

func TestTemplate_Render(t *testing.T) {
	cases := []struct{ tmpl, want string }{
		{"", ""},
		{"plain text", "plain text"},
		{"Hello {ivr.name}!", "Hello Jane!"},
		{"{ivr.name}{ivr.name}", "JaneJane"},
		{"missing: [{ivr.none}]", "missing: []"},
		{"null: [{ivr.nothing}]", "null: []"},
		{"{ivr.premium} {ivr.amount} {ivr.count}", "true 42.5 1e3"},
		{"{ivr.tags} {ivr.profile}", `["gold",1] {"tier":"gold"}`},
		{"{app.in-put.ref_1}", "AB12345"},
		{"{{ivr.name}}", "{ivr.name}"},
		{"{{{ivr.name}}}", "{Jane}"},
		{"{ not a var }", "{ not a var }"},
		{"{ivr.}", "{ivr.}"},
		{"{ivr..name}", "{ivr..name}"},
		{"{foo.bar}", "{foo.bar}"},
		{"{ivr}", "{ivr}"},
		{"{ivr.name", "{ivr.name"},
		{"}{", "}{"},
		{`{"json": {ivr.name}}`, `{"json": Jane}`},
	}
	for _, tc := range cases {
		if got := flow.ParseTemplate(tc.tmpl).Render(tmplVars); got != tc.want {
			t.Errorf("Render(%q)=%q, want %q", tc.tmpl, got, tc.want)
		}
	}
	if got, want := strings.Join(flow.ParseTemplate("{ivr.a} {x.y} {{ivr.b}} {call.id}").Vars(), ","), "ivr.a,call.id"; got != want {
		t.Errorf("Vars()=%q, want %q", got, want)
	}
	if got, want := strings.Join(flow.ParseTemplate("{iv.email} {name} {{skip}} {ivr.ok} {has space}").Suspicious(), ","), "{iv.email},{name}"; got != want {
		t.Errorf("Suspicious()=%q, want %q", got, want)
	}
}

func TestRenderURL(t *testing.T) {
	cases := []struct{ tmpl, want, err string }{
		{tmpl: "https://crm.example.com/c/{ivr.ref}?q={ivr.q}&n={ivr.name}#{ivr.ref}",
			want: "https://crm.example.com/c/a%2Fb%20c%3Fd%23e?q=x%26y%3D1+%2B%C3%BC&n=Jane#a%2Fb%20c%3Fd%23e"},
		{tmpl: "http://127.0.0.1:8080/x", want: "http://127.0.0.1:8080/x"},
		{tmpl: "https://crm.example.com/{ivr.none}/x", want: "https://crm.example.com//x"},
		{tmpl: "ftp://crm.example.com/x", err: "must start with http:// or https://"},
		{tmpl: "https://{ivr.name}.example.com/x", err: "host must be written out"},
		{tmpl: "https:///x", err: "host must be written out"},
		{tmpl: "https://crm.example.com:port/x", err: "not valid"},
	}
	for _, tc := range cases {
		got, err := flow.RenderURL(tc.tmpl, tmplVars)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("RenderURL(%q) err=%v, want %q", tc.tmpl, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("RenderURL(%q): %v", tc.tmpl, err)
		case tc.err == "" && got != tc.want:
			t.Errorf("RenderURL(%q)=%q, want %q", tc.tmpl, got, tc.want)
		}
	}
}

func TestRenderBody(t *testing.T) {
	body := map[string]any{
		"name":    "{ivr.name}",
		"premium": "{ivr.premium}",
		"count":   "{ivr.count}",
		"tags":    "{ivr.tags}",
		"missing": "{ivr.none}",
		"text":    "Dear {ivr.name}, premium={ivr.premium}",
		"list":    []any{"{ivr.amount}", json.Number("1"), true, nil},
		"nested":  map[string]any{"{ivr.name}": "{{literal}}"},
	}
	got, err := flow.RenderBody(body, tmplVars)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"count":1e3,"list":[42.5,1,true,null],"missing":null,"name":"Jane","nested":{"{ivr.name}":"{literal}"},` +
		`"premium":true,"tags":["gold",1],"text":"Dear Jane, premium=true"}`
	if string(got) != want {
		t.Fatalf("body\n%s\nwant\n%s", got, want)
	}
}

// FuzzTemplate: rendering any template with any values never panics, keeps
// literal text, and in URLs never lets a value add a path segment, a query
// parameter or a fragment.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"Hello {ivr.name}", "{{ivr.x}}", "{ivr.a}{ivr.b}", "{", "}}{{", "{ivr.a.b-c_d}", "x?y={ivr.v}#{ivr.v}"} {
		f.Add(s, "a/b?c=d&e#f")
	}
	f.Fuzz(func(t *testing.T, tmpl, value string) {
		vars := triggers.Map{"ivr.v": value, "ivr.a": value, "ivr.name": value}
		tp := flow.ParseTemplate(tmpl)
		out := tp.Render(vars)
		if len(tp.Vars()) == 0 && !strings.Contains(tmpl, "{{") && !strings.Contains(tmpl, "}}") && out != tmpl {
			t.Fatalf("a template without placeholders changed: %q → %q", tmpl, out)
		}
		if !utf8.ValidString(value) {
			return
		}
		u, err := flow.RenderURL("https://crm.example.com/p/{ivr.v}?q={ivr.v}#{ivr.v}", vars)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatalf("rendered URL %q does not parse: %v", u, err)
		}
		if parsed.Host != "crm.example.com" || parsed.Path != "/p/"+value || parsed.Fragment != value {
			t.Fatalf("value %q escaped its part: %q (path %q, fragment %q)", value, u, parsed.Path, parsed.Fragment)
		}
		if q := parsed.Query(); len(q) != 1 || q.Get("q") != value {
			t.Fatalf("value %q changed the query: %q", value, parsed.RawQuery)
		}
		if _, err := flow.RenderBody(map[string]any{"a": "{ivr.v}", "b": "x {ivr.v}", "c": tmpl}, vars); err != nil {
			t.Fatalf("body: %v", err)
		}
	})
}
