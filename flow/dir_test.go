package flow_test

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/internal/yamldoc/yamldoctest"
)

// TestLoad_errors loads the broken directories in testdata/errors and checks
// that every problem is reported, once, with its file, line, column, field
// and a message a designer can act on.
func TestLoad_errors(t *testing.T) {
	cases := map[string][]string{
		"schema": {
			`triggers.yaml:4:24: /triggers/unknown-op/when/op: op must be one of eq, ne, gt, ge, lt, le, regex, like, contains, not_contains, starts_with, not_starts_with, ends_with, not_ends_with, in, not_in, set, not_set, empty, not_empty, null, not_null, evaluable, not_evaluable, before, after, weekday`,
			`triggers.yaml:6:33: /triggers/value-with-set/when/value: set, not_set, empty, not_empty, null, not_null, evaluable and not_evaluable take no value`,
			`triggers.yaml:8:5: /triggers/no-value/when: this op needs a value to compare with`,
			`triggers.yaml:10:12: /triggers/bad-var/when/var: a variable name starts with call., sip., ivr. or app. and continues with dot-separated segments of letters, digits, '_' or '-', e.g. ivr.email`,
			`triggers.yaml:12:5: /triggers/typo/when: this op needs a value to compare with`,
			`triggers.yaml:12:32: /triggers/typo/when/valeu: unknown field "valeu"; allowed here: ignore_case, op, trim, tz, value, var`,
			`triggers.yaml:14:24: /triggers/bad-clock/when/value: before/after take a time of day "HH:MM" (24-hour) or a date "YYYY-MM-DD", in quotes`,
			`triggers.yaml:16:32: /triggers/in-not-list/when/value: in and not_in take a list: value: [a, b, c]`,
			`triggers.yaml:18:42: /triggers/tz-on-eq/when/tz: tz is only used by before, after and weekday`,
			`triggers.yaml:20:21: /triggers/two-kinds/when/any: unknown field "any"; allowed here: all`,
			`triggers.yaml:22:5: /triggers/text/when: a condition is a mapping: {var, op, value}, {all: [...]}, {any: [...]}, {not: ...}, {trigger: name} or {calendar: name, is: open}`,
			`triggers.yaml:23:3: /triggers/bad name!: invalid name: a name is 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit`,
			`triggers.yaml:25:3: /triggers/no-when: missing field "when"`,
			`triggers.yaml:34:17: /triggers/nested/when/all/0/any/0/not/ignore_case: expected boolean, but got string`,
			`triggers.yaml:36:5: /triggers/empty-cond/when: a comparison needs an op (and usually var and value); to combine conditions use all, any, not or trigger`,
			`triggers.yaml:37:1: /extra: unknown field "extra"; allowed here: automations, calendars, flows, routing, triggers`,
		},
		"duplicate": {
			`b.yml:2:3: /automations/premium: name "premium" is already defined at testdata/dir/errors/duplicate/a.yaml:2:3 (triggers)`,
			`b.yml:5:3: /flows/order-status: name "order-status" is already defined at testdata/dir/errors/duplicate/a.yaml:4:3 (triggers)`,
		},
		"yaml": {
			`control.yaml:3:41: control character U+0001 is not allowed`,
			`dupkey.yaml:4:3: /triggers/a: key "a" is already defined at line 2`,
			`merge.yaml:5:7: /triggers/a/when: merge keys (<<) are not supported`,
			`tab.yaml:2: found character that cannot start any token`,
			`twodocs.yaml:2:1: a file holds one YAML document; found a second one (---)`,
			`unclosed.yaml:3: did not find expected ',' or '}'`,
		},
		"values": {
			`values.yaml:3:41: /triggers/octal/when/value: 0123 is not written as a JSON number (YAML reads it as 83); quote it if it is text`,
			`values.yaml:5:41: /triggers/hex/when/value: 0x1F is not written as a JSON number (YAML reads it as 31); quote it if it is text`,
			`values.yaml:7:39: /triggers/inf/when/value: .inf is not written as a JSON number (YAML reads it as +Inf); quote it if it is text`,
			`values.yaml:9:39: /triggers/tagged/when/value: unsupported tag !custom`,
		},
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			dir := "testdata/dir/errors/" + name
			_, _, err := flow.Load(dir, flow.CompileOptions{})
			if err == nil {
				t.Fatalf("Load(%s) succeeded, want errors", dir)
			}
			got := yamldoctest.MustErrors(t, err, dir)
			if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
				t.Fatalf("errors:\n%s\nwant:\n%s", g, w)
			}
		})
	}
}

func TestLoad_ok(t *testing.T) {
	snap, _, err := flow.Load("testdata/dir/ok", flow.CompileOptions{Getenv: env("https://crm.example.com")})
	if err != nil {
		t.Fatal(err)
	}
	set := snap.Triggers
	var names []string
	for _, tr := range set.All() {
		names = append(names, tr.Name)
	}
	if got, want := strings.Join(names, " "), "caller-known office-hours premium reference-entered"; got != want {
		t.Fatalf("triggers %q, want %q", got, want)
	}
	tr, _ := set.Trigger("premium")
	if got, want := tr.File, "testdata/dir/ok/order-status.yaml"; got != want {
		t.Errorf("File=%q, want %q", got, want)
	}
	if got, want := tr.Line, 6; got != want {
		t.Errorf("Line=%d, want %d", got, want)
	}
	if got, want := tr.Description, "A premium customer, to be routed to an agent."; got != want {
		t.Errorf("Description=%q, want %q", got, want)
	}
	if _, ok := tr.When.(map[string]any)["all"]; !ok {
		t.Errorf("When=%v, want the condition as written", tr.When)
	}
}

func TestParseDir(t *testing.T) {
	t.Run("Sections", func(t *testing.T) {
		d, err := flow.ParseDir("testdata/dir/ok")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(d.Files(), " "), "testdata/dir/ok/office.yml testdata/dir/ok/order-status.yaml"; got != want {
			t.Errorf("Files()=%q, want %q", got, want)
		}
		flows := d.Defs(flow.SectionFlows)
		if len(flows) != 1 || flows[0].Name != "order-status" {
			t.Fatalf("flows %+v, want order-status", flows)
		}
		if got, want := flows[0].Location(), "testdata/dir/ok/order-status.yaml:18"; got != want {
			t.Errorf("Location()=%q, want %q", got, want)
		}
		def, ok := d.Lookup("crm-lookup")
		if !ok || def.Section != flow.SectionAutomations || def.Pointer != "/automations/crm-lookup" {
			t.Errorf("Lookup(crm-lookup)=%+v, %v", def, ok)
		}
		if got, want := def.Errorf("/retry", "missing").Error(), "testdata/dir/ok/order-status.yaml:15:3: /automations/crm-lookup/retry: missing"; got != want {
			t.Errorf("Errorf=%q, want %q", got, want)
		}
	})
	t.Run("ErrNotExist", func(t *testing.T) {
		_, err := flow.ParseDir("testdata/no-such-dir")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err=%v, want fs.ErrNotExist", err)
		}
	})
	t.Run("EmptyAndIgnored", func(t *testing.T) {
		d, err := flow.ParseFS(fstest.MapFS{
			"empty.yaml":    {Data: nil},
			"comments.yml":  {Data: []byte("# nothing yet\n")},
			".hidden.yaml":  {Data: []byte("not: [valid")},
			"notes.txt":     {Data: []byte("not: [valid")},
			"sub/deep.yaml": {Data: []byte("not: [valid")},
			"nulls.yaml":    {Data: []byte("triggers:\nflows:\nautomations:\n")},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(d.Files(), " "), "comments.yml empty.yaml nulls.yaml"; got != want {
			t.Errorf("Files()=%q, want %q", got, want)
		}
		snap, _, err := flow.Compile(d, flow.CompileOptions{})
		if err != nil || snap.Triggers.Len() != 0 || len(snap.Flows()) != 0 {
			t.Fatalf("Compile = %v; want an empty snapshot", err)
		}
	})
	t.Run("TooLarge", func(t *testing.T) {
		big := make([]byte, flow.MaxFileSize+1)
		_, err := flow.ParseFS(fstest.MapFS{"big.yaml": {Data: big}})
		if got, want := err.Error(), "big.yaml: file is larger than 4194304 bytes"; got != want {
			t.Fatalf("err=%q, want %q", got, want)
		}
	})
}
