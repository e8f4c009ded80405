package triggers_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/triggers"
)

// sessionVars is a session as the order-status scenario leaves it, padded with
// other variables so that the map is of a realistic size.
func sessionVars() triggers.Map {
	m := triggers.Map{
		"call.id":                   "0193f7a2-6c1e-7d3a-9b7c-2f5e8a1d4c3b",
		"call.from":                 "+4930123456",
		"call.to":                   "+498001234567",
		"ivr.email":                 "jane@example.com",
		"ivr.premium":               true,
		"ivr.track_id":              "TRK-99812",
		"ivr.orders":                3.0,
		"app.inputReader.reference": "AB12345",
	}
	for i := range 16 {
		m[fmt.Sprintf("ivr.extra%d", i)] = "value"
	}
	return m
}

// BenchmarkTrigger_Eval is the figure: a three-condition trigger
// (target ≤ 300 ns/op, 0 allocs/op).
func BenchmarkTrigger_Eval(b *testing.B) {
	set := mustCompile(b, `
triggers:
  premium-de:
    when:
      all:
        - {var: ivr.email, op: set}
        - {var: ivr.premium, op: eq, value: true}
        - {var: call.from, op: starts_with, value: "+49"}
  reference-format:
    when: {var: app.inputReader.reference, op: regex, value: "^[A-Z]{2}[0-9]{5}$"}
  orders-numeric:
    when: {var: ivr.orders, op: ge, value: "2.5"}
  office-hours:
    when: {all: [{op: after, value: "09:00", tz: Europe/Berlin}, {op: before, value: "17:00", tz: Europe/Berlin}]}
  big-in:
    when: {var: ivr.track_id, op: in, value: [`+bigList(100)+`]}
  weekday:
    when: {op: weekday, value: mon-fri, tz: Europe/Berlin}
`+benchCalendar+`
`)
	vars := sessionVars()
	now := time.Date(2025, 3, 10, 8, 30, 0, 0, time.UTC)
	for _, name := range []string{"premium-de", "reference-format", "orders-numeric", "office-hours", "big-in", "weekday", "calendar", "calendar-holiday"} {
		tr, _ := set.Trigger(name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !tr.Eval(vars, now) {
					b.Fatal("trigger did not fire")
				}
			}
		})
	}
	b.Run("premium-de/Explain", func(b *testing.B) {
		tr, _ := set.Trigger("premium-de")
		b.ReportAllocs()
		for b.Loop() {
			if !tr.Explain(vars, now).Result {
				b.Fatal("trigger did not fire")
			}
		}
	})
}

// benchCalendar is the calendar of the figure: weekly hours,
// special hours, an RRULE and an imported .ics file; "calendar" asks
// whether it is open, "calendar-holiday" which exception governs the day.
const benchCalendar = `
  calendar:
    when: {calendar: support, is: open}
  calendar-holiday:
    when: {not: {calendar: support, is: public-holiday}}
calendars:
  support:
    tz: Europe/Berlin
    weekly:
      mon-thu: ["08:00-12:00", "13:00-18:00"]
      fri: ["08:00-16:00", "22:00-02:00"]
      sat: "09:00-13:00"
    exceptions:
      - {name: christmas-eve, date: "2026-12-24", hours: "08:00-12:00"}
      - {name: public-holiday, ics: calendars/holidays.ics}
      - {name: team-meeting, rrule: "FREQ=MONTHLY;BYDAY=-1FR", hours: "08:00-15:00"}`

func bigList(n int) string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf("TRK-%05d", 99812-n/2+i)
	}
	return strings.Join(items, ", ")
}

func TestTrigger_Eval_allocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count only")
	}
	set := mustCompile(t, `
triggers:
  premium-de:
    when:
      all:
        - {var: ivr.email, op: set}
        - {var: ivr.premium, op: eq, value: true}
        - {var: call.from, op: starts_with, value: "+49", ignore_case: true, trim: true}
        - {var: ivr.orders, op: gt, value: 2}
        - {var: ivr.track_id, op: in, value: [`+bigList(20)+`]}
        - {var: ivr.email, op: ends_with, value: ".COM", ignore_case: true}
        - {op: after, value: "09:00", tz: Europe/Berlin}
        - {op: weekday, value: [mon-fri], tz: Europe/Berlin}
        - {calendar: support, is: open}
        - {not: {calendar: support, is: public-holiday}}
`+benchCalendar+`
`)
	tr, _ := set.Trigger("premium-de")
	vars := sessionVars()
	now := time.Date(2025, 3, 10, 8, 30, 0, 0, time.UTC)
	if !tr.Eval(vars, now) {
		t.Fatal("trigger did not fire")
	}
	if got := testing.AllocsPerRun(100, func() { tr.Eval(vars, now) }); got != 0 {
		t.Fatalf("Eval allocates %v times per run, want 0", got)
	}
}
