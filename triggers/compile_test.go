package triggers_test

import (
	"strings"
	"testing"

	"github.com/callctx/callctx/internal/yamldoc/yamldoctest"
	"github.com/callctx/callctx/triggers"
)

// TestCompile_errors compiles the broken triggers in testdata/errors and
// checks that every problem is reported, once, with its file, line, column,
// field and a message a designer can act on. (Problems of the file format
// itself are package flow's tests.)
func TestCompile_errors(t *testing.T) {
	cases := map[string][]string{
		"references": {
			`a.yaml:10:18: /triggers/c/when/not/trigger: trigger cycle: a → b → c → a`,
			`a.yaml:12:12: /triggers/self/when/trigger: trigger cycle: self → self`,
			`a.yaml:14:12: /triggers/missing/when/trigger: unknown trigger "nope"`,
		},
		"compile": {
			"compile.yaml:3:37: /triggers/regex/when/value: invalid regular expression: missing closing ]: `[A-Z`",
			`compile.yaml:5:39: /triggers/zone/when/tz: unknown time zone "Europe/Atlantis" (use an IANA name such as Europe/Berlin)`,
			`compile.yaml:7:39: /triggers/local/when/tz: unknown time zone "Local" (use an IANA name such as Europe/Berlin)`,
			`compile.yaml:9:24: /triggers/bad-date/when/value: op before takes a time of day "HH:MM" or a date "YYYY-MM-DD"; "2025-02-31" is neither`,
			"compile.yaml:16:39: /triggers/inside/when/any/1/all/1/value: invalid regular expression: invalid repeat count: `{2,1}`",
		},
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			dir := "testdata/errors/" + name
			defs, err := parseDirDefs(dir)
			if err != nil {
				t.Fatal(err)
			}
			set, err := triggers.Compile(defs)
			if err == nil {
				t.Fatalf("Compile(%s) = %d triggers, want errors", dir, set.Len())
			}
			got := yamldoctest.MustErrors(t, err, dir)
			if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
				t.Fatalf("errors:\n%s\nwant:\n%s", g, w)
			}
		})
	}
}

func TestCompile_empty(t *testing.T) {
	set, err := triggers.Compile(triggers.Defs{})
	if err != nil || set.Len() != 0 {
		t.Fatalf("Compile(empty) = %v, %v; want an empty set", set.Len(), err)
	}
}
