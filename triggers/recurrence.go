package triggers

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	ical "github.com/emersion/go-ical"
	"github.com/teambition/rrule-go"
)

// recurrence is an exception's RRULE (RFC 5545), counted from its start
// date. Only its dates matter, so it runs in UTC from midnight.
type recurrence struct {
	rule *rrule.RRule
}

// defaultRuleStart is where a recurrence without a start date counts from.
// It matters only to rules with INTERVAL or COUNT, which must name a start.
var defaultRuleStart = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

// parseRule reads an RRULE value ("FREQ=MONTHLY;BYDAY=-1FR", with or
// without "RRULE:") starting on start (the zero time: defaultRuleStart).
func parseRule(s string, start time.Time) (*recurrence, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "\n") {
		return nil, errors.New("write the RRULE value alone on one line; the start date goes in start")
	}
	s = strings.TrimPrefix(strings.TrimPrefix(s, "RRULE:"), "rrule:")
	opt, err := rrule.StrToROption(s)
	if err != nil {
		return nil, err
	}
	if err := checkFreq(opt.Freq); err != nil {
		return nil, err
	}
	if strings.Contains(strings.ToUpper(s), "DTSTART") {
		return nil, errors.New("the start date goes in start, not in the rule")
	}
	if start.IsZero() {
		if opt.Count > 0 || opt.Interval > 1 {
			return nil, errors.New("a rule with COUNT or INTERVAL counts from a date: give start")
		}
		start = defaultRuleStart
	}
	opt.Dtstart = start
	if !opt.Until.IsZero() && opt.Until.Before(start) {
		return nil, errors.New("UNTIL is before the start date")
	}
	if err := checkYear(start); err != nil {
		return nil, err
	}
	r, err := rrule.NewRRule(*opt)
	if err != nil {
		return nil, err
	}
	return &recurrence{rule: r}, nil
}

// Years a calendar's dates may fall in: rrule-go panics on some dates far
// outside them (year 0), and no opening hours need them.
const (
	minYear = 1900
	maxYear = 2199
)

func checkYear(t time.Time) error {
	if y := t.Year(); y < minYear || y > maxYear {
		return fmt.Errorf("the year %d is outside %d to %d", y, minYear, maxYear)
	}
	return nil
}

// checkFreq refuses rules that repeat within a day: exceptions cover days.
func checkFreq(f rrule.Frequency) error {
	switch f {
	case rrule.YEARLY, rrule.MONTHLY, rrule.WEEKLY, rrule.DAILY:
		return nil
	}
	return fmt.Errorf("FREQ=%s repeats within a day; exceptions cover whole days (use DAILY, WEEKLY, MONTHLY or YEARLY)", f)
}

// days returns the days in [first, next) the rule falls on.
func (r *recurrence) days(first, next day) []day {
	occ := r.rule.Between(first.midnightUTC(), next.midnightUTC(), true)
	out := make([]day, 0, len(occ))
	for _, t := range occ {
		y, m, d := t.UTC().Date()
		out = append(out, civil(y, m, d))
	}
	return out
}

// midnightUTC returns the start of d in UTC.
func (d day) midnightUTC() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// holidayItem is one event of an imported iCalendar file: the days it
// covers, once or recurring.
type holidayItem struct {
	summary string
	allDay  bool
	start   time.Time     // all-day: midnight UTC of its first day
	length  time.Duration // all-day: whole days; timed: its duration
	set     *rrule.Set    // its recurrence, nil when it happens once
}

// Limits of an imported .ics file.
const (
	maxICSEvents = 5000
	maxICSSpan   = 366 * 24 * time.Hour // the longest event taken
)

// parseICS reads the events of an iCalendar file (RFC 5545). Times without
// a zone are read in loc. Cancelled events are left out.
//
// go-ical panics on some malformed input (an index out of range in its
// parameter decoder, found by FuzzICS): a file is outside input, so a panic
// while reading it is turned into an error instead of stopping a reload.
func parseICS(data []byte, loc *time.Location) (items []holidayItem, err error) {
	defer func() {
		if r := recover(); r != nil {
			items, err = nil, fmt.Errorf("not an iCalendar file: the parser failed (%v)", r)
		}
	}()
	cal, err := ical.NewDecoder(bytes.NewReader(data)).Decode()
	if err != nil {
		return nil, fmt.Errorf("not an iCalendar file: %s", strings.TrimPrefix(err.Error(), "ical: "))
	}
	events := cal.Events()
	if len(events) > maxICSEvents {
		return nil, fmt.Errorf("%d events; at most %d are read", len(events), maxICSEvents)
	}
	var out []holidayItem
	for i, ev := range events {
		if st, _ := ev.Props.Text(ical.PropStatus); strings.EqualFold(st, "CANCELLED") {
			continue
		}
		h, err := holidayOf(ev, loc)
		if err != nil {
			name := fmt.Sprintf("event %d", i+1)
			if s, _ := ev.Props.Text(ical.PropSummary); s != "" {
				name += fmt.Sprintf(" (%s)", s)
			}
			return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "ical: "))
		}
		out = append(out, h)
	}
	if len(out) == 0 {
		return nil, errors.New("the file has no events")
	}
	return out, nil
}

func holidayOf(ev ical.Event, loc *time.Location) (holidayItem, error) {
	var h holidayItem
	h.summary, _ = ev.Props.Text(ical.PropSummary)
	prop := ev.Props.Get(ical.PropDateTimeStart)
	if prop == nil {
		return h, errors.New("no DTSTART")
	}
	h.allDay = prop.ValueType() == ical.ValueDate || len(prop.Value) == len("20060102")
	in := loc
	if h.allDay {
		in = time.UTC // a date is a date: its days are read off in UTC
	}
	start, err := ev.DateTimeStart(in)
	if err != nil {
		return h, err
	}
	end, err := ev.DateTimeEnd(in)
	if err != nil {
		return h, err
	}
	if err := checkYear(start); err != nil {
		return h, err
	}
	h.start, h.length = start, end.Sub(start)
	if h.allDay && h.length < 24*time.Hour {
		h.length = 24 * time.Hour
	}
	if h.length < 0 || h.length > maxICSSpan {
		return h, fmt.Errorf("it lasts %s; events of up to a year are read", h.length)
	}
	if ev.Props.Get(ical.PropRecurrenceRule) == nil {
		return h, nil
	}
	set, err := ev.RecurrenceSet(in)
	if err != nil {
		return h, err
	}
	if err := checkFreq(set.GetRRule().OrigOptions.Freq); err != nil {
		return h, err
	}
	if u := set.GetRRule().OrigOptions.Until; !u.IsZero() {
		if err := checkYear(u); err != nil {
			return h, err
		}
	}
	// go-ical reads EXDATE where RDATE is meant (EXDATE wins, so nothing is
	// added twice): add the RDATEs here.
	for _, p := range ev.Props[ical.PropRecurrenceDates] {
		t, err := p.DateTime(in)
		if err != nil {
			return h, err
		}
		if err := checkYear(t); err != nil {
			return h, err
		}
		set.RDate(t)
	}
	h.set = set
	return h, nil
}

// days calls fn with each day in [first, next) the event covers, in loc.
func (h holidayItem) days(first, next day, loc *time.Location, fn func(day)) {
	cover := func(start time.Time) {
		if h.allDay {
			y, m, d := start.UTC().Date()
			d0 := civil(y, m, d)
			for k := day(0); k < day(h.length/(24*time.Hour)); k++ {
				if d0+k >= first && d0+k < next {
					fn(d0 + k)
				}
			}
			return
		}
		last := start
		if h.length > 0 {
			last = start.Add(h.length - time.Nanosecond)
		}
		y, m, d := start.In(loc).Date()
		y2, m2, d2 := last.In(loc).Date()
		for dd := max(civil(y, m, d), first); dd <= civil(y2, m2, d2) && dd < next; dd++ {
			fn(dd)
		}
	}
	if h.set == nil {
		cover(h.start)
		return
	}
	from := first.midnightUTC().Add(-h.length - 24*time.Hour)
	for _, t := range h.set.Between(from, next.midnightUTC().Add(24*time.Hour), true) {
		cover(t)
	}
}
