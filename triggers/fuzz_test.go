package triggers_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/callctx/callctx/internal/yamldoc"
	"github.com/callctx/callctx/triggers"
)

// FuzzCompile feeds arbitrary bytes as a flows directory file's triggers
// section, unchecked by the file format's schema: Compile must stand any
// JSON value. Whatever the input, compiling must not panic; a failure must
// be positioned problems in that file; a success must give triggers that
// evaluate, and explain, without panicking and with the same result.
func FuzzCompile(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/errors/*/*.y*ml")
	more, _ := filepath.Glob("../flow/testdata/dir/*/*.y*ml")
	errs, _ := filepath.Glob("../flow/testdata/dir/errors/*/*.y*ml")
	for _, p := range append(append(seeds, more...), errs...) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(scenario))
	f.Add([]byte(calendars))
	f.Add([]byte("calendars:\n  c: {tz: UTC, weekly: {fri-mon: [\"22:00-02:00\"]}, exceptions: [{name: x, rrule: \"FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29\"}]}\ntriggers:\n  t: {when: {calendar: c, is: x}}\n"))
	f.Add([]byte(`"`)) // a YAML error without a line: the first line
	f.Add([]byte("triggers:\n  a:\n    when: {var: ivr.v, op: in, value: [a, 1, true, null, [x], {k: v}]}\n"))
	vars := []triggers.Map{
		{},
		{"ivr.v": "a", "ivr.email": "x@y.z", "ivr.premium": true},
		{"ivr.v": json.Number("1e400"), "ivr.x": nil, "ivr.a": []any{"a", 1.0}, "ivr.b": map[string]any{"k": "v"}},
		{"ivr.v": "2025-03-10T09:00:00+01:00", "call.from": "+49301", "ivr.n": 3.5, "ivr.i": 7},
	}
	now := time.Date(2025, 3, 10, 8, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		defs, err := parseDefs("f.yaml", data)
		var set *triggers.Set
		if err == nil {
			set, err = triggers.Compile(defs)
		}
		if err != nil {
			list := yamldoc.AsErrors(err)
			if len(list) == 0 {
				t.Fatalf("error without position: %v", err)
			}
			for _, e := range list {
				if e.File != "f.yaml" || e.Line < 1 {
					t.Fatalf("error without file or line: %#v", e)
				}
			}
			return
		}
		for _, c := range set.Calendars() {
			checkCalendar(t, c, now)
		}
		for _, tr := range set.All() {
			for _, v := range vars {
				got := tr.Eval(v, now)
				e := tr.Explain(v, now)
				if e.Result != got {
					t.Fatalf("%s: Eval=%v, Explain().Result=%v", tr.Name, got, e.Result)
				}
				if _, err := json.Marshal(e); err != nil {
					t.Fatalf("%s: marshal explanation: %v", tr.Name, err)
				}
			}
		}
	})
}

// FuzzICS feeds arbitrary bytes as a calendar's imported .ics file. Reading
// must not panic; a failure must be a positioned problem; a calendar that
// compiles must answer every question about its days consistently.
func FuzzICS(f *testing.F) {
	for _, p := range []string{"testdata/calendars/holidays.ics", "testdata/calendars/broken.ics"} {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20260301T230000\r\nDURATION:PT3H\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\nEXDATE:20260308T230000\r\nRDATE:20260401T230000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"))
	f.Add([]byte("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;TZID=America/New_York:20261101T013000\r\nDTEND;TZID=America/New_York:20261101T013000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"))
	const yaml = "calendars:\n  c:\n    tz: Europe/Berlin\n    weekly: {mon-fri: \"08:00-18:00\"}\n    exceptions: [{name: h, ics: x.ics}]\n"
	now := time.Date(2026, 3, 10, 8, 30, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		defs, err := parseDefs("f.yaml", []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		defs.ReadFile = func(string) ([]byte, error) { return data, nil }
		set, err := triggers.Compile(defs)
		if err != nil {
			for _, e := range yamldoc.AsErrors(err) {
				if e.File != "f.yaml" || e.Line != 5 || e.Pointer != "/calendars/c/exceptions/0/ics" {
					t.Fatalf("problem not at the import: %#v", e)
				}
			}
			return
		}
		c, _ := set.Calendar("c")
		checkCalendar(t, c, now)
	})
}

// checkCalendar asks a calendar what clients ask, and checks the answers
// agree: Open and Decide, the next change and the state after it.
func checkCalendar(t *testing.T, c *triggers.Calendar, now time.Time) {
	t.Helper()
	for _, at := range []time.Time{now, now.AddDate(0, 9, 0).Add(13 * time.Hour)} {
		d := c.Decide(at)
		if d.Open != c.Open(at) || d.Reason == "" {
			t.Fatalf("%s at %s: Decide %+v, Open %v", c.Name, at, d, c.Open(at))
		}
		if ch, ok := c.NextChange(at); ok {
			if !ch.At.After(at) || c.Open(ch.At) != ch.Open || ch.Open == d.Open {
				t.Fatalf("%s at %s: next change %+v (open now %v)", c.Name, at, ch, d.Open)
			}
		}
		for _, o := range c.Upcoming(at, 31) {
			if _, err := time.Parse(time.DateOnly, o.Date); err != nil || o.Exception == nil {
				t.Fatalf("%s: upcoming %+v", c.Name, o)
			}
		}
	}
}
