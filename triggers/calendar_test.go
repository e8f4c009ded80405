package triggers_test

import (
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/internal/yamldoc"
	"github.com/callctx/callctx/triggers"
)

// calendars is a bank's support line: two ranges a day from Monday to
// Thursday, a night line from Friday into Saturday, Saturday mornings;
// Christmas Eve until noon, Berlin's public holidays from an .ics file, a
// team meeting every last Friday of the month, a summer closure.
const calendars = `
calendars:
  support:
    description: Customer support.
    tz: Europe/Berlin
    weekly:
      mon-thu: ["08:00-12:00", "13:00-18:00"]
      fri: ["08:00-16:00", "22:00-02:00"]
      sat: "09:00-13:00"
    exceptions:
      - {name: christmas-eve, date: "2026-12-24", hours: "08:00-12:00"}
      - {name: public-holiday, ics: calendars/holidays.ics}
      - {name: team-meeting, rrule: "FREQ=MONTHLY;BYDAY=-1FR", hours: "08:00-15:00"}
      - {name: summer-closure, from: "2026-08-03", to: "2026-08-07"}
  berlin-night:
    tz: Europe/Berlin
    weekly:
      sun: "02:15-02:45"
  new-york:
    tz: America/New_York
    weekly:
      sat: "22:00-02:30"
triggers:
  open: {when: {calendar: support, is: open}}
  closed: {when: {calendar: support, is: closed}}
  holiday: {when: {calendar: support, is: public-holiday}}
  meeting: {when: {calendar: support, is: team-meeting}}
  started-open: {when: {calendar: support, is: open, var: call.startedAt}}
  weekend-or-closed:
    when:
      any:
        - {op: weekday, value: [sat, sun], tz: Europe/Berlin}
        - {not: {calendar: support, is: open}}
`

func mustCalendar(tb testing.TB, set *triggers.Set, name string) *triggers.Calendar {
	tb.Helper()
	c, ok := set.Calendar(name)
	if !ok {
		tb.Fatalf("calendar %s missing", name)
	}
	return c
}

// TestCalendar_weekdays walks the week of 2026-03-09 (Monday; Berlin is on
// CET, UTC+1): a table per weekday.
func TestCalendar_weekdays(t *testing.T) {
	set := mustCompile(t, calendars)
	cal := mustCalendar(t, set, "support")
	week := map[string][]struct {
		local  string // Berlin wall-clock time
		open   bool
		reason string
	}{
		"mon": {
			{"2026-03-09T07:59:00", false, "closed: outside weekly hours mon 08:00-12:00, 13:00-18:00"},
			{"2026-03-09T08:00:00", true, "open: weekly hours mon 08:00-12:00"},
			{"2026-03-09T12:30:00", false, "closed: outside weekly hours mon 08:00-12:00, 13:00-18:00"},
			{"2026-03-09T17:59:00", true, "open: weekly hours mon 13:00-18:00"},
			{"2026-03-09T18:00:00", false, "closed: outside weekly hours mon 08:00-12:00, 13:00-18:00"},
		},
		"tue": {{"2026-03-10T11:59:00", true, "open: weekly hours tue 08:00-12:00"}, {"2026-03-10T12:00:00", false, "closed: outside weekly hours tue 08:00-12:00, 13:00-18:00"}},
		"wed": {{"2026-03-11T13:00:00", true, "open: weekly hours wed 13:00-18:00"}, {"2026-03-11T00:30:00", false, "closed: outside weekly hours wed 08:00-12:00, 13:00-18:00"}},
		"thu": {{"2026-03-12T09:00:00", true, "open: weekly hours thu 08:00-12:00"}, {"2026-03-12T23:00:00", false, "closed: outside weekly hours thu 08:00-12:00, 13:00-18:00"}},
		"fri": {
			{"2026-03-13T00:30:00", false, "closed: outside weekly hours fri 08:00-16:00, 22:00-02:00"}, // Thursday has no night line
			{"2026-03-13T15:59:00", true, "open: weekly hours fri 08:00-16:00"},
			{"2026-03-13T16:00:00", false, "closed: outside weekly hours fri 08:00-16:00, 22:00-02:00"},
			{"2026-03-13T22:00:00", true, "open: weekly hours fri 22:00-02:00"},
		},
		"sat": {
			{"2026-03-14T01:59:00", true, "open: weekly hours fri 22:00-02:00, from the day before"},
			{"2026-03-14T02:00:00", false, "closed: outside weekly hours sat 09:00-13:00"},
			{"2026-03-14T09:00:00", true, "open: weekly hours sat 09:00-13:00"},
			{"2026-03-14T13:00:00", false, "closed: outside weekly hours sat 09:00-13:00"},
		},
		"sun": {{"2026-03-15T11:00:00", false, "closed: no hours on weekly hours sun"}},
	}
	for day, cases := range week {
		t.Run(day, func(t *testing.T) {
			for _, tc := range cases {
				at, err := time.ParseInLocation("2006-01-02T15:04:05", tc.local, cal.Location())
				if err != nil {
					t.Fatal(err)
				}
				if got := triggers.WeekdayName(at.Weekday()); got != day {
					t.Fatalf("%s is a %s, not a %s", tc.local, got, day)
				}
				d := cal.Decide(at)
				if d.Open != tc.open || d.Reason != tc.reason || cal.Open(at) != tc.open {
					t.Errorf("%s: Decide=%v %q, Open=%v; want %v %q", tc.local, d.Open, d.Reason, cal.Open(at), tc.open, tc.reason)
				}
			}
		})
	}
}

// TestCalendar_exceptions: special hours, an .ics holiday (one-off and
// yearly), the last Friday of the month, a closure over a range of days,
// and which exception decides when two cover a day (the first written).
func TestCalendar_exceptions(t *testing.T) {
	set := mustCompile(t, calendars)
	cal := mustCalendar(t, set, "support")
	cases := []struct {
		local     string
		open      bool
		exception string
		reason    string
	}{
		{"2026-12-24T11:00:00", true, "christmas-eve", "open: exception christmas-eve on 2026-12-24, hours 08:00-12:00"},
		{"2026-12-24T14:00:00", false, "christmas-eve", "closed: outside exception christmas-eve on 2026-12-24, hours 08:00-12:00"},
		{"2026-12-25T10:00:00", false, "public-holiday", "closed: exception public-holiday on 2026-12-25 (Weihnachten)"},
		{"2026-12-26T10:00:00", false, "public-holiday", "closed: exception public-holiday on 2026-12-26 (Weihnachten)"}, // a two-day event
		{"2026-10-03T10:00:00", false, "public-holiday", "closed: exception public-holiday on 2026-10-03 (Tag der Deutschen Einheit)"},
		{"2026-05-01T10:00:00", false, "public-holiday", "closed: exception public-holiday on 2026-05-01 (Tag der Arbeit)"}, // RRULE in the .ics
		{"2031-05-01T10:00:00", false, "public-holiday", "closed: exception public-holiday on 2031-05-01 (Tag der Arbeit)"},
		{"2026-06-15T10:00:00", true, "", "open: weekly hours mon 08:00-12:00"},                                          // cancelled in the .ics
		{"2026-11-20T09:00:00", false, "public-holiday", "closed: exception public-holiday on 2026-11-20 (Staff party)"}, // a timed event covers its day
		{"2026-01-30T14:00:00", true, "team-meeting", "open: exception team-meeting on 2026-01-30, hours 08:00-15:00"},   // last Friday
		{"2026-01-30T15:00:00", false, "team-meeting", "closed: outside exception team-meeting on 2026-01-30, hours 08:00-15:00"},
		{"2026-01-30T23:00:00", false, "team-meeting", "closed: outside exception team-meeting on 2026-01-30, hours 08:00-15:00"}, // no night line that day
		{"2026-01-23T15:30:00", true, "", "open: weekly hours fri 08:00-16:00"},                                                   // not the last Friday
		{"2026-01-23T16:30:00", false, "", "closed: outside weekly hours fri 08:00-16:00, 22:00-02:00"},
		{"2026-02-27T08:30:00", true, "team-meeting", "open: exception team-meeting on 2026-02-27, hours 08:00-15:00"},
		{"2026-07-31T15:30:00", false, "team-meeting", "closed: outside exception team-meeting on 2026-07-31, hours 08:00-15:00"},
		{"2026-08-05T10:00:00", false, "summer-closure", "closed: exception summer-closure on 2026-08-05"},
		{"2026-08-08T10:00:00", true, "", "open: weekly hours sat 09:00-13:00"},
		// Friday's night line belongs to Friday: a holiday on Saturday does not cut it.
		{"2026-10-03T01:00:00", true, "public-holiday", "open: weekly hours fri 22:00-02:00, from the day before"},
	}
	vars := triggers.Map{}
	tr := func(name string) *triggers.Trigger {
		t.Helper()
		x, ok := set.Trigger(name)
		if !ok {
			t.Fatalf("trigger %s missing", name)
		}
		return x
	}
	for _, tc := range cases {
		at, err := time.ParseInLocation("2006-01-02T15:04:05", tc.local, cal.Location())
		if err != nil {
			t.Fatal(err)
		}
		d := cal.Decide(at)
		if d.Open != tc.open || d.Exception != tc.exception || d.Reason != tc.reason {
			t.Errorf("%s: Decide=%v %q %q, want %v %q %q", tc.local, d.Open, d.Exception, d.Reason, tc.open, tc.exception, tc.reason)
		}
		if got := tr("open").Eval(vars, at); got != tc.open {
			t.Errorf("%s: is open = %v, want %v", tc.local, got, tc.open)
		}
		if got := tr("closed").Eval(vars, at); got == tc.open {
			t.Errorf("%s: is closed = %v, want %v", tc.local, got, !tc.open)
		}
		if got, want := tr("holiday").Eval(vars, at), tc.exception == "public-holiday"; got != want {
			t.Errorf("%s: is public-holiday = %v, want %v", tc.local, got, want)
		}
		if got, want := tr("meeting").Eval(vars, at), tc.exception == "team-meeting"; got != want {
			t.Errorf("%s: is team-meeting = %v, want %v", tc.local, got, want)
		}
	}
}

// TestCalendar_DST checks the changes of daylight-saving time in two zones:
// a range inside the skipped hour never opens, one inside the repeated hour
// opens twice, and a range across midnight ends early or late as the wall
// clock does.
func TestCalendar_DST(t *testing.T) {
	set := mustCompile(t, calendars)
	utc := func(s string) time.Time { return mustTime(t, s) }
	t.Run("BerlinSkippedHour", func(t *testing.T) {
		cal := mustCalendar(t, set, "berlin-night")
		// 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00Z; 02:15-02:45 never happens.
		for _, at := range []string{"2026-03-29T00:59:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:20:00Z", "2026-03-29T01:40:00Z"} {
			if cal.Open(utc(at)) {
				t.Errorf("open at %s, in a skipped hour", at)
			}
		}
		ch, ok := cal.NextChange(utc("2026-03-28T12:00:00Z"))
		if want := "2026-04-05T02:15:00+02:00"; !ok || ch.At.Format(time.RFC3339) != want || !ch.Open {
			t.Errorf("NextChange = %v %v, want opens at %s (the next Sunday)", ch, ok, want)
		}
	})
	t.Run("BerlinRepeatedHour", func(t *testing.T) {
		cal := mustCalendar(t, set, "berlin-night")
		// 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00Z; 02:15-02:45 happens twice.
		cases := map[string]bool{
			"2026-10-25T00:10:00Z": false, "2026-10-25T00:15:00Z": true, "2026-10-25T00:44:00Z": true,
			"2026-10-25T00:45:00Z": false, "2026-10-25T01:15:00Z": true, "2026-10-25T01:44:00Z": true, "2026-10-25T01:45:00Z": false,
		}
		for at, want := range cases {
			if got := cal.Open(utc(at)); got != want {
				t.Errorf("Open(%s) = %v, want %v", at, got, want)
			}
		}
		changes := []string{}
		for at := utc("2026-10-24T23:00:00Z"); len(changes) < 4; {
			ch, ok := cal.NextChange(at)
			if !ok {
				t.Fatal("no next change")
			}
			changes = append(changes, ch.At.UTC().Format("15:04Z"))
			at = ch.At
		}
		if got, want := strings.Join(changes, " "), "00:15Z 00:45Z 01:15Z 01:45Z"; got != want {
			t.Errorf("changes %s, want %s", got, want)
		}
	})
	t.Run("NewYorkSkippedHour", func(t *testing.T) {
		cal := mustCalendar(t, set, "new-york")
		// 2026-03-08: 02:00 EST becomes 03:00 EDT at 07:00Z; Saturday's 22:00-02:30 ends then.
		cases := map[string]bool{
			"2026-03-08T02:59:00Z": false, "2026-03-08T03:00:00Z": true, "2026-03-08T06:59:00Z": true, "2026-03-08T07:00:00Z": false,
		}
		for at, want := range cases {
			if got := cal.Open(utc(at)); got != want {
				t.Errorf("Open(%s) = %v, want %v", at, got, want)
			}
		}
		ch, ok := cal.NextChange(utc("2026-03-08T06:00:00Z"))
		if want := "2026-03-08T03:00:00-04:00"; !ok || ch.At.Format(time.RFC3339) != want || ch.Open {
			t.Errorf("NextChange = %v %v, want closes at %s (when the clock jumps)", ch, ok, want)
		}
	})
	t.Run("NewYorkRepeatedHour", func(t *testing.T) {
		cal := mustCalendar(t, set, "new-york")
		// 2026-11-01: 02:00 EDT becomes 01:00 EST at 06:00Z; 01:00-02:00 happens twice and
		// Saturday's 22:00-02:30 lasts five hours and a half.
		cases := map[string]bool{
			"2026-11-01T01:59:00Z": false, "2026-11-01T02:00:00Z": true, "2026-11-01T05:30:00Z": true,
			"2026-11-01T06:30:00Z": true, "2026-11-01T07:29:00Z": true, "2026-11-01T07:30:00Z": false,
		}
		for at, want := range cases {
			if got := cal.Open(utc(at)); got != want {
				t.Errorf("Open(%s) = %v, want %v", at, got, want)
			}
		}
		ch, ok := cal.NextChange(utc("2026-11-01T05:30:00Z"))
		if want := "2026-11-01T02:30:00-05:00"; !ok || ch.At.Format(time.RFC3339) != want || ch.Open {
			t.Errorf("NextChange = %v %v, want closes at %s", ch, ok, want)
		}
	})
}

func TestCalendar_NextChange(t *testing.T) {
	set := mustCompile(t, calendars)
	cal := mustCalendar(t, set, "support")
	berlin := cal.Location()
	cases := []struct{ from, at string }{
		{"2026-03-09T17:18:00", "2026-03-09T18:00:00+01:00"}, // closes in 42 min
		{"2026-03-09T12:10:00", "2026-03-09T13:00:00+01:00"}, // opens after lunch
		{"2026-03-13T17:00:00", "2026-03-13T22:00:00+01:00"}, // the night line opens
		{"2026-03-13T23:00:00", "2026-03-14T02:00:00+01:00"}, // and closes on Saturday
		{"2026-03-14T14:00:00", "2026-03-16T08:00:00+01:00"}, // Monday morning
		{"2026-12-23T19:00:00", "2026-12-24T08:00:00+01:00"}, // Christmas Eve opens
		{"2026-12-24T11:00:00", "2026-12-24T12:00:00+01:00"}, // and closes at noon,
		{"2026-12-24T13:00:00", "2026-12-28T08:00:00+01:00"}, // then not before Monday
		{"2026-03-27T12:00:00", "2026-03-27T15:00:00+01:00"}, // the last Friday of March: the team meets
		{"2026-03-28T12:00:00", "2026-03-28T13:00:00+01:00"},
	}
	for _, tc := range cases {
		from, _ := time.ParseInLocation("2006-01-02T15:04:05", tc.from, berlin)
		ch, ok := cal.NextChange(from)
		if !ok || ch.At.Format(time.RFC3339) != tc.at || ch.Open == cal.Open(from) {
			t.Errorf("NextChange(%s) = %s open=%v %v, want %s", tc.from, ch.At.Format(time.RFC3339), ch.Open, ok, tc.at)
		}
	}
	t.Run("Never", func(t *testing.T) {
		always := mustCompile(t, "calendars:\n  a: {tz: UTC, weekly: {mon-sun: \"00:00-24:00\"}}\n")
		if ch, ok := mustCalendar(t, always, "a").NextChange(mustTime(t, "2026-03-09T12:00:00Z")); ok {
			t.Errorf("NextChange = %v, want none for a calendar always open", ch)
		}
	})
}

func TestCalendar_Upcoming(t *testing.T) {
	set := mustCompile(t, calendars)
	cal := mustCalendar(t, set, "support")
	from, _ := time.ParseInLocation("2006-01-02T15:04", "2026-12-01T10:00", cal.Location())
	var got []string
	for _, o := range cal.Upcoming(from, 30) {
		s := o.Date + " " + o.Exception.Name
		if o.Holiday != "" {
			s += " (" + o.Holiday + ")"
		}
		got = append(got, s)
	}
	want := "2026-12-24 christmas-eve, 2026-12-25 public-holiday (Weihnachten), 2026-12-26 public-holiday (Weihnachten)"
	// The last Friday of December 2026 is the 25th: the holiday, written first, decides it.
	if g := strings.Join(got, ", "); g != want {
		t.Errorf("Upcoming = %s, want %s", g, want)
	}
}

// TestCalendar_conditions: calendar conditions nested in any/not, on the
// time of a variable, and the weekday operator.
func TestCalendar_conditions(t *testing.T) {
	set := mustCompile(t, calendars)
	tr := func(name string) *triggers.Trigger {
		x, _ := set.Trigger(name)
		return x
	}
	monday := mustTime(t, "2026-03-09T09:00:00Z") // 10:00 in Berlin
	sunday := mustTime(t, "2026-03-15T09:00:00Z")
	evening := mustTime(t, "2026-03-09T20:00:00Z")
	cases := []struct {
		trigger string
		vars    triggers.Map
		at      time.Time
		want    bool
	}{
		{"weekend-or-closed", nil, monday, false},
		{"weekend-or-closed", nil, sunday, true},
		{"weekend-or-closed", nil, evening, true},
		{"started-open", triggers.Map{"call.startedAt": "2026-03-09T10:30:00+01:00"}, evening, true},
		{"started-open", triggers.Map{"call.startedAt": "2026-03-09T19:30:00+01:00"}, monday, false},
		{"started-open", triggers.Map{"call.startedAt": "yesterday"}, monday, false},
		{"started-open", triggers.Map{}, monday, false},
	}
	for _, tc := range cases {
		if got := tr(tc.trigger).Eval(tc.vars, tc.at); got != tc.want {
			t.Errorf("%s with %v at %s = %v, want %v", tc.trigger, tc.vars, tc.at, got, tc.want)
		}
		if got := tr(tc.trigger).Explain(tc.vars, tc.at).Result; got != tc.want {
			t.Errorf("%s: Explain().Result = %v, want %v", tc.trigger, got, tc.want)
		}
	}
	if got, want := tr("weekend-or-closed").UsesClock(), true; got != want {
		t.Errorf("UsesClock=%v, want %v", got, want)
	}
	if got, want := strings.Join(tr("started-open").Vars(), ","), "call.startedAt"; got != want || tr("started-open").UsesClock() {
		t.Errorf("Vars=%s UsesClock=%v, want %s and no clock", got, tr("started-open").UsesClock(), want)
	}
}

func TestWeekday(t *testing.T) {
	cases := []struct {
		when string
		vars triggers.Map
		want bool
	}{
		{`{var: call.startedAt, op: weekday, value: mon-fri}`, triggers.Map{"call.startedAt": "2026-03-13T23:30:00Z"}, true},                     // Friday in UTC
		{`{var: call.startedAt, op: weekday, value: mon-fri, tz: Europe/Berlin}`, triggers.Map{"call.startedAt": "2026-03-13T23:30:00Z"}, false}, // Saturday in Berlin
		{`{var: call.startedAt, op: weekday, value: [sat, sun]}`, triggers.Map{"call.startedAt": "2026-03-15T12:00:00+01:00"}, true},
		{`{var: ivr.date, op: weekday, value: fri-mon}`, triggers.Map{"ivr.date": "2026-03-16"}, true}, // a date: Monday
		{`{var: ivr.date, op: weekday, value: fri-mon}`, triggers.Map{"ivr.date": "2026-03-17"}, false},
		{`{var: ivr.date, op: weekday, value: sat}`, triggers.Map{"ivr.date": 20260314}, false},
		{`{var: ivr.date, op: weekday, value: sat}`, triggers.Map{}, false},
		{`{op: weekday, value: tue}`, nil, true}, // now: Tuesday 2026-03-10
	}
	now := mustTime(t, "2026-03-10T08:30:00Z")
	for _, tc := range cases {
		tr := mustTrigger(t, tc.when)
		if got := tr.Eval(tc.vars, now); got != tc.want {
			t.Errorf("%s with %v = %v, want %v", tc.when, tc.vars, got, tc.want)
		}
		e := tr.Explain(tc.vars, now)
		if e.Result != tc.want {
			t.Errorf("%s: Explain().Result = %v", tc.when, e.Result)
		}
	}
	e := mustTrigger(t, `{var: call.startedAt, op: weekday, value: mon-fri, tz: Europe/Berlin}`).Explain(triggers.Map{"call.startedAt": "2026-03-13T23:30:00Z"}, now)
	if got, want := e.Children[0].Decided, "sat in Europe/Berlin"; got != want {
		t.Errorf("Decided = %q, want %q", got, want)
	}
}

// TestCalendar_errors checks that check finds every mistake in calendars,
// each where it is written.
func TestCalendar_errors(t *testing.T) {
	defs, err := parseDirDefs("testdata/errors/calendars")
	if err != nil {
		t.Fatal(err)
	}
	_, err = triggers.Compile(defs)
	list := yamldoc.AsErrors(err)
	var got []string
	for _, e := range list {
		got = append(got, strings.TrimPrefix(e.Error(), "testdata/errors/calendars/"))
	}
	want := []string{
		`calendars.yaml:4:5: /calendars/bad-zone/tz: unknown time zone "Europe/Atlantis" (use an IANA name such as Europe/Berlin)`,
		`calendars.yaml:8:28: /calendars/overlaps/weekly/mon/1: mon 11:00-13:00 overlaps mon 08:00-12:00`,
		`calendars.yaml:10:7: /calendars/overlaps/weekly/tue-wed: tue is already given (tue, line 9)`,
		`calendars.yaml:12:7: /calendars/overlaps/weekly/fri: fri 22:00-02:00 overlaps sat 01:00-05:00`,
		`calendars.yaml:15:34: /calendars/wrap/weekly/sun: sun 23:00-01:00 overlaps mon 00:30-01:30`,
		`calendars.yaml:19:7: /calendars/bad-ranges/weekly/mon: "8-18" is not a range of the form "08:00-18:00" (24-hour clock; 24:00 ends at midnight; "22:00-02:00" passes midnight)`,
		`calendars.yaml:20:7: /calendars/bad-ranges/weekly/tue: "10:00-10:00" is empty; the whole day is "00:00-24:00"`,
		`calendars.yaml:21:7: /calendars/bad-ranges/weekly/weekend: "weekend" is not a day: use mon, tue, wed, thu, fri, sat, sun or a run such as mon-fri`,
		`calendars.yaml:25:20: /calendars/bad-exceptions/exceptions/0/rrule: invalid RRULE: undefined weekday: -1XX`,
		`calendars.yaml:26:20: /calendars/bad-exceptions/exceptions/1/rrule: invalid RRULE: FREQ=HOURLY repeats within a day; exceptions cover whole days (use DAILY, WEEKLY, MONTHLY or YEARLY)`,
		`calendars.yaml:27:20: /calendars/bad-exceptions/exceptions/2/rrule: invalid RRULE: a rule with COUNT or INTERVAL counts from a date: give start`,
		`calendars.yaml:28:20: /calendars/bad-exceptions/exceptions/3/ics: cannot read calendars/nowhere.ics: open testdata/calendars/nowhere.ics: no such file or directory`,
		`calendars.yaml:29:20: /calendars/bad-exceptions/exceptions/4/ics: calendars/broken.ics: not an iCalendar file: malformed content line: missing colon`,
		`calendars.yaml:30:20: /calendars/bad-exceptions/exceptions/5/date: "2026-02-30" is not a date "YYYY-MM-DD"`,
		`calendars.yaml:31:40: /calendars/bad-exceptions/exceptions/6/to: to (2026-08-01) is before from (2026-08-14)`,
		`calendars.yaml:32:10: /calendars/bad-exceptions/exceptions/7/name: "closed" is what is: tests for the calendar itself; name the exception otherwise`,
		`calendars.yaml:33:62: /calendars/bad-exceptions/exceptions/8/hours/1: 11:00-13:00 overlaps 08:00-12:00`,
		`calendars.yaml:34:10: /calendars/bad-exceptions/exceptions/9/name: exception "a" is already defined (exceptions/8)`,
		`calendars.yaml:35:9: /calendars/bad-exceptions/exceptions/10: an exception covers days by one of date, dates, from and to, rrule or ics; found date and rrule`,
		`calendars.yaml:38:29: /triggers/unknown-calendar/when/calendar: unknown calendar "nope"`,
		`calendars.yaml:39:56: /triggers/unknown-exception/when/is: is "holiday": use open, closed or an exception of bad-exceptions (a)`,
		`calendars.yaml:40:11: /triggers/no-is/when: a calendar condition needs is: open, closed or the name of one of bad-zone's exceptions`,
		`calendars.yaml:41:50: /triggers/bad-weekday/when/value/1: weekday takes days: mon, tue, wed, thu, fri, sat, sun, a run such as mon-fri, or a list of them; "weekend" is none`,
	}
	if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
		t.Errorf("errors:\n%s\nwant:\n%s", g, w)
	}
}
