package main_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	main "github.com/callctx/callctx/cmd/callctx"
)

// checkTarget is the figure for callctx check on 200 flows and 20
// calendars.
const checkTarget = time.Second

// BenchmarkCheck runs callctx check, in process, on a directory of 20 files
// with 200 flows (8 nodes each, switches on calendar triggers), 20 calendars
// (weekly ranges, special hours, an RRULE and an imported .ics each), 100
// triggers, 40 automations and a routing table of 200 routes. Its last
// metric is the time of one check as a fraction of the 1 s target.
func BenchmarkCheck(b *testing.B) {
	dir := writeCheckDir(b, 20, 10)
	var out bytes.Buffer
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		out.Reset()
		if err := main.Run([]string{"check", dir}, &out, io.Discard); err != nil {
			b.Fatalf("check: %v\n%s", err, out.String())
		}
	}
	per := time.Since(start) / time.Duration(b.N)
	if !strings.Contains(out.String(), "ok: 20 calendars, 100 triggers, 40 automations, 200 flows, 200 routes and a default; 0 warnings") {
		b.Fatalf("check said:\n%s", out.String())
	}
	b.ReportMetric(float64(per)/float64(checkTarget), "of-1s-target")
}

// writeCheckDir writes files × flowsPerFile flows, a calendar and five
// triggers per file, and the routing table in the first file.
func writeCheckDir(tb testing.TB, files, flowsPerFile int) string {
	tb.Helper()
	dir := tb.TempDir()
	ics, err := os.ReadFile("../../examples/opening-hours/flows/holidays/de-be-2026.ics")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "holidays.ics"), ics, 0o644); err != nil {
		tb.Fatal(err)
	}
	for f := range files {
		var y bytes.Buffer
		fmt.Fprintf(&y, "calendars:\n  hours-%d:\n    tz: Europe/Berlin\n    weekly:\n      mon-thu: [\"08:00-12:00\", \"13:00-18:00\"]\n      fri: [\"08:00-16:00\", \"22:00-02:00\"]\n      sat: \"09:00-13:00\"\n", f)
		fmt.Fprintf(&y, "    exceptions:\n      - {name: eve, date: \"2026-12-24\", hours: \"08:00-12:00\"}\n      - {name: holiday, ics: holidays.ics}\n      - {name: meeting, rrule: \"FREQ=MONTHLY;BYDAY=-1FR\", hours: \"08:00-15:00\"}\n")
		fmt.Fprintf(&y, "triggers:\n")
		fmt.Fprintf(&y, "  open-%d: {when: {calendar: hours-%d, is: open}}\n", f, f)
		fmt.Fprintf(&y, "  holiday-%d: {when: {calendar: hours-%d, is: holiday}}\n", f, f)
		fmt.Fprintf(&y, "  premium-%d: {when: {all: [{var: ivr.email, op: set}, {var: ivr.premium, op: eq, value: true}]}}\n", f)
		fmt.Fprintf(&y, "  ref-%d: {when: {var: app.ask.ref, op: regex, value: \"^[A-Z]{2}[0-9]{5}$\"}}\n", f)
		fmt.Fprintf(&y, "  weekend-%d: {when: {op: weekday, value: [sat, sun], tz: Europe/Berlin}}\n", f)
		fmt.Fprintf(&y, "automations:\n")
		for a := range 2 {
			fmt.Fprintf(&y, "  crm-%d-%d: {url: \"https://crm.example.com/lookup/{call.id}\", body: {from: \"{call.from}\"}, retry: {attempts: 3, backoff: 1s}}\n", f, a)
		}
		fmt.Fprintf(&y, "flows:\n")
		for i := range flowsPerFile {
			fmt.Fprintf(&y, "  flow-%d-%d:\n    start: lookup\n    nodes:\n", f, i)
			fmt.Fprintf(&y, "      lookup: {type: automation, automations: [crm-%d-0], next: hours}\n", f)
			fmt.Fprintf(&y, "      hours: {type: switch, cases: [{trigger: open-%d, next: welcome}, {trigger: holiday-%d, next: holiday}], default: closed}\n", f, f)
			fmt.Fprintf(&y, "      welcome: {type: say, text: \"Hello {ivr.name}\", next: ask}\n")
			fmt.Fprintf(&y, "      ask: {type: input, var: ref, min: 7, max: 7, next: route, on_timeout: closed}\n")
			fmt.Fprintf(&y, "      route: {type: switch, cases: [{trigger: premium-%d, next: agent}, {trigger: ref-%d, next: agent}], default: closed}\n", f, f)
			fmt.Fprintf(&y, "      agent: {type: transfer, target: \"sip:agent@pbx.example.com\", headers: {X-Ref: \"{app.ask.ref}\"}, on_failure: closed}\n")
			fmt.Fprintf(&y, "      holiday: {type: play, prompt: holiday, next: closed}\n")
			fmt.Fprintf(&y, "      closed: {type: hangup}\n")
		}
		if f == 0 {
			fmt.Fprintf(&y, "routing:\n  country: DE\n  routes:\n")
			for r := range files * flowsPerFile {
				fmt.Fprintf(&y, "    - {number: \"+4930%07d\", flow: flow-%d-%d}\n", r, r/flowsPerFile, r%flowsPerFile)
			}
			fmt.Fprintf(&y, "  default: flow-0-0\n")
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d.yaml", f)), y.Bytes(), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}
