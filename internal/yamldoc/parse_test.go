package yamldoc_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/callctx/callctx/internal/yamldoc"
)

func mustParse(tb testing.TB, src string) *yamldoc.Doc {
	tb.Helper()
	d, err := yamldoc.Parse("f.yaml", []byte(src))
	if err != nil {
		tb.Fatalf("Parse(%q): %v", src, err)
	}
	return d
}

func TestParse_values(t *testing.T) {
	cases := []struct {
		src  string
		want string // the value as JSON
	}{
		{"", "null"},
		{"# only a comment\n", "null"},
		{"a: 1", `{"a":1}`},
		{"a: -1.5e3", `{"a":-1.5e3}`},
		{"a: 12345678901234567890123", `{"a":12345678901234567890123}`},
		{`a: "0123"`, `{"a":"0123"}`},
		{"a: '42'", `{"a":"42"}`},
		{"a: true\nb: False\nc: yes\nd: on", `{"a":true,"b":false,"c":"yes","d":"on"}`},
		{"a: null\nb: ~\nc:", `{"a":null,"b":null,"c":null}`},
		{"a: 2025-12-24\nb: 09:00\nc: 2001-12-14t21:59:43.10-05:00", `{"a":"2025-12-24","b":"09:00","c":"2001-12-14t21:59:43.10-05:00"}`},
		{"a: [1, two, {three: 3}]", `{"a":[1,"two",{"three":3}]}`},
		{"a: &x {k: v}\nb: *x", `{"a":{"k":"v"},"b":{"k":"v"}}`},
		{"1: one\ntrue: yes\nnull: n", `{"1":"one","null":"n","true":"yes"}`},
		{"a: !!str 12", `{"a":"12"}`},
		{"a: |\n  line1\n  line2\n", `{"a":"line1\nline2\n"}`},
		{"[1, 2]", `[1,2]`},
		{"plain", `"plain"`},
		{"\ufeffa: 1", `{"a":1}`},
	}
	for _, tc := range cases {
		t.Run(tc.src, func(t *testing.T) {
			d := mustParse(t, tc.src)
			got, err := json.Marshal(d.Value)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("Value=%s, want %s", got, tc.want)
			}
		})
	}
}

func TestParse_errors(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"Octal", "a: 0123", "f.yaml:1:4: /a: 0123 is not written as a JSON number (YAML reads it as 83); quote it if it is text"},
		{"Hex", "a:\n  b: 0x1F", "f.yaml:2:6: /a/b: 0x1F is not written as a JSON number (YAML reads it as 31); quote it if it is text"},
		{"Underscore", "a: 1_000", "f.yaml:1:4: /a: 1_000 is not written as a JSON number (YAML reads it as 1000); quote it if it is text"},
		{"Plus", "a: +1", "f.yaml:1:4: /a: +1 is not written as a JSON number (YAML reads it as 1); quote it if it is text"},
		{"NaN", "a: .nan", "f.yaml:1:4: /a: .nan is not written as a JSON number (YAML reads it as NaN); quote it if it is text"},
		{"BadInt", "a: !!int x", "f.yaml:1:4: /a: x is not written as a JSON number; quote it if it is text"},
		{"BadBool", "a: !!bool maybe", "f.yaml:1:4: /a: \"maybe\" is not a boolean"},
		{"Tag", "a: !foo 1", "f.yaml:1:4: /a: unsupported tag !foo"},
		{"TagMap", "a: !foo {b: 1}", "f.yaml:1:4: /a: unsupported tag !foo"},
		{"TagSeq", "a: !foo [1]", "f.yaml:1:4: /a: unsupported tag !foo"},
		{"Binary", "a: !!binary aGk=", "f.yaml:1:4: /a: unsupported tag !!binary"},
		{"DuplicateKey", "a: 1\nb: 2\na: 3", `f.yaml:3:1: /a: key "a" is already defined at line 1`},
		{"MergeKey", "x: &x {k: v}\ny:\n  <<: *x", "f.yaml:3:3: /y: merge keys (<<) are not supported"},
		{"ComplexKey", "? [a]\n: 1", "f.yaml:1:3: a mapping key must be a plain value, not a mapping or list"},
		{"TwoDocuments", "a: 1\n---\nb: 2", "f.yaml:2:1: a file holds one YAML document; found a second one (---)"},
		{"SecondDocumentBroken", "a: 1\n---\nb: [", "f.yaml:3: did not find expected node content"},
		{"ControlChar", "a: 1\nb: x\x07y", "f.yaml:2:5: control character U+0007 is not allowed"},
		{"InvalidUTF8", "a: 1\n  \xff", "f.yaml:2:3: invalid UTF-8 (files must be UTF-8 text)"},
		{"Syntax", "a: 1\nb: 2\nc 2\nd: 3", "f.yaml:3: could not find expected ':'"},
		{"SyntaxFirstLine", `"`, "f.yaml:1: found unexpected end of stream"},
		{"ParserLine", "x: 1\na: {b: 1\n", "f.yaml:2: did not find expected ',' or '}'"},
		{"UnknownAlias", "a: *nope", "f.yaml:1: unknown anchor 'nope' referenced"},
		{"Several", "a: 0x1\nb: 0x2", "f.yaml:1:4: /a: 0x1 is not written as a JSON number (YAML reads it as 1); quote it if it is text\n" +
			"f.yaml:2:4: /b: 0x2 is not written as a JSON number (YAML reads it as 2); quote it if it is text"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := yamldoc.Parse("f.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want %q", tc.src, tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Fatalf("err=%q\nwant %q", got, tc.want)
			}
			for _, e := range yamldoc.AsErrors(err) {
				if e.Line < 1 {
					t.Errorf("no line in %#v", e)
				}
			}
		})
	}
}

func TestParse_limits(t *testing.T) {
	t.Run("Depth", func(t *testing.T) {
		src := strings.Repeat("[", yamldoc.MaxDepth+2) + strings.Repeat("]", yamldoc.MaxDepth+2)
		_, err := yamldoc.Parse("f.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), "nested deeper than 100 levels") {
			t.Fatalf("err=%v, want nesting error", err)
		}
	})
	t.Run("AliasExpansion", func(t *testing.T) {
		// A "billion laughs" document: 10 anchors each ten times the last.
		var b strings.Builder
		b.WriteString("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n")
		for i := 1; i < 10; i++ {
			fmt.Fprintf(&b, "l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n", i, i,
				i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
		}
		_, err := yamldoc.Parse("f.yaml", []byte(b.String()))
		if err == nil || !strings.Contains(err.Error(), "document too large: more than 200000 values") {
			t.Fatalf("err=%v, want the expansion budget error", err)
		}
	})
	t.Run("AliasOK", func(t *testing.T) {
		d := mustParse(t, "base: &b {op: set}\nx: [*b, *b]")
		got, _ := json.Marshal(d.Value)
		if want := `{"base":{"op":"set"},"x":[{"op":"set"},{"op":"set"}]}`; string(got) != want {
			t.Fatalf("Value=%s, want %s", got, want)
		}
	})
}

func TestDoc_Pos(t *testing.T) {
	d := mustParse(t, `triggers:
  premium:
    when:
      all:
        - {var: ivr.premium, op: eq}
        - var: ivr.email
  "a/b~c": 1
`)
	cases := []struct {
		ptr       string
		pos, vpos yamldoc.Pos
	}{
		{"", yamldoc.Pos{Line: 1, Column: 1}, yamldoc.Pos{Line: 1, Column: 1}},
		{"/triggers", yamldoc.Pos{Line: 1, Column: 1}, yamldoc.Pos{Line: 2, Column: 3}},
		{"/triggers/premium/when", yamldoc.Pos{Line: 3, Column: 5}, yamldoc.Pos{Line: 4, Column: 7}},
		{"/triggers/premium/when/all/0", yamldoc.Pos{Line: 5, Column: 11}, yamldoc.Pos{Line: 5, Column: 11}},
		{"/triggers/premium/when/all/0/op", yamldoc.Pos{Line: 5, Column: 30}, yamldoc.Pos{Line: 5, Column: 34}},
		{"/triggers/premium/when/all/1/var", yamldoc.Pos{Line: 6, Column: 11}, yamldoc.Pos{Line: 6, Column: 16}},
		{"/triggers/a~1b~0c", yamldoc.Pos{Line: 7, Column: 3}, yamldoc.Pos{Line: 7, Column: 12}},
		// absent fields: the nearest ancestor
		{"/triggers/premium/when/all/0/value", yamldoc.Pos{Line: 5, Column: 11}, yamldoc.Pos{Line: 5, Column: 11}},
		{"/nope/deeper", yamldoc.Pos{Line: 1, Column: 1}, yamldoc.Pos{Line: 1, Column: 1}},
	}
	for _, tc := range cases {
		if got := d.Pos(tc.ptr); got != tc.pos {
			t.Errorf("Pos(%q)=%v, want %v", tc.ptr, got, tc.pos)
		}
		if got := d.ValuePos(tc.ptr); got != tc.vpos {
			t.Errorf("ValuePos(%q)=%v, want %v", tc.ptr, got, tc.vpos)
		}
	}
	if got, want := d.Errorf("/triggers/premium/when/all/0/op", "bad %s", "op").Error(),
		"f.yaml:5:30: /triggers/premium/when/all/0/op: bad op"; got != want {
		t.Errorf("Errorf=%q, want %q", got, want)
	}
}

func TestLookup(t *testing.T) {
	d := mustParse(t, "a: [x, {b/c: 1, d~e: 2}]\n")
	cases := []struct {
		ptr  string
		want string
		ok   bool
	}{
		{"", `{"a":["x",{"b/c":1,"d~e":2}]}`, true},
		{"/a/0", `"x"`, true},
		{"/a/1/b~1c", `1`, true},
		{"/a/1/d~0e", `2`, true},
		{"/a/2", ``, false},
		{"/a/01", ``, false},
		{"/a/-1", ``, false},
		{"/a/0/x", ``, false},
		{"a", ``, false},
	}
	for _, tc := range cases {
		v, ok := d.Get(tc.ptr)
		if ok != tc.ok {
			t.Errorf("Get(%q) ok=%v, want %v", tc.ptr, ok, tc.ok)
			continue
		}
		if ok {
			got, _ := json.Marshal(v)
			if string(got) != tc.want {
				t.Errorf("Get(%q)=%s, want %s", tc.ptr, got, tc.want)
			}
		}
	}
}

func TestIsJSONNumber(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "-0": true, "42": true, "-1.5": true, "1e3": true, "1E+3": true, "2.5e-3": true,
		"": false, "-": false, "01": false, "+1": false, "1.": false, ".5": false, "1e": false, "0x1F": false,
		"1_000": false, " 1": false, "NaN": false, "Infinity": false, "1.e3": false, "--1": false,
	} {
		if got := yamldoc.IsJSONNumber(s); got != want {
			t.Errorf("IsJSONNumber(%q)=%v, want %v", s, got, want)
		}
	}
}

func TestErrors(t *testing.T) {
	es := yamldoc.Errors{
		{File: "b.yaml", Line: 1, Message: "m"},
		{File: "a.yaml", Line: 9, Column: 2, Pointer: "/x", Message: "m"},
		{File: "a.yaml", Line: 3, Message: "m"},
		{File: "a.yaml", Line: 3, Message: "m"},
		{File: "c.yaml", Message: "cannot read"},
	}
	got := es.Err().Error()
	want := "a.yaml:3: m\na.yaml:9:2: /x: m\nb.yaml:1: m\nc.yaml: cannot read"
	if got != want {
		t.Fatalf("Err()=%q, want %q", got, want)
	}
	if yamldoc.Errors(nil).Err() != nil {
		t.Fatal("empty list is an error")
	}
	if yamldoc.AsErrors(fmt.Errorf("load: %w", es[0])) == nil {
		t.Fatal("AsErrors lost a wrapped *Error")
	}
	if yamldoc.AsErrors(fmt.Errorf("plain")) != nil {
		t.Fatal("AsErrors invented errors")
	}
}
