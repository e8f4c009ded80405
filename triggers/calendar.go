package triggers

import (
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Calendar is a compiled calendar: weekly opening hours in a time zone,
// with exceptions (closed days or special hours) on dates, date ranges,
// recurrences and imported holidays. It is immutable for its users and safe
// for concurrent use.
//
// A range belongs to the day it starts on: "22:00-02:00" on Friday keeps
// the calendar open until 02:00 on Saturday, whatever Saturday's plan is.
// Times are wall-clock times in the calendar's zone, so a range holds across
// daylight-saving changes as a clock on the wall shows it: a skipped hour
// never happens, a repeated one happens twice.
type Calendar struct {
	Name        string
	Description string
	File        string
	Line        int
	TZ          string // the IANA zone name

	loc        *time.Location
	week       [7][]Range // by time.Weekday
	exceptions []*Exception

	mu    sync.Mutex                    // serialises filling years
	years atomic.Pointer[map[int]*year] // the exceptions of each year asked about
}

// Range is an opening range in minutes since midnight: [Start, End). A
// range with End <= Start passes midnight and ends at End on the next day.
type Range struct {
	Start, End int
}

// overnight reports whether the range passes midnight.
func (r Range) overnight() bool { return r.End <= r.Start }

// String writes the range as it is written in a flows file, "08:00-18:00".
func (r Range) String() string {
	return clockText(r.Start) + "-" + clockText(r.End)
}

func clockText(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

// Exception changes the plan of the days it covers: closed (no Hours) or
// open in Hours instead of the weekly ranges. The first exception of a
// calendar that covers a day decides that day.
type Exception struct {
	Name  string
	Hours []Range // nil: closed all day
	Line  int
	What  string // what it covers, as written: a date, a range of dates, a rule or a file

	spans []span        // dates, date ranges
	rule  *recurrence   // a recurrence
	ics   []holidayItem // events imported from an .ics file
}

// Closed reports whether the exception closes its days.
func (e *Exception) Closed() bool { return len(e.Hours) == 0 }

// span is a run of days, both ends included.
type span struct{ from, to day }

// Calendar returns the calendar called name.
func (s *Set) Calendar(name string) (*Calendar, bool) {
	if s == nil {
		return nil, false
	}
	c, ok := s.calendars[name]
	return c, ok
}

// Calendars returns every calendar, sorted by name.
func (s *Set) Calendars() []*Calendar {
	if s == nil {
		return nil
	}
	return append([]*Calendar(nil), s.calendarList...)
}

// Location returns the calendar's time zone.
func (c *Calendar) Location() *time.Location { return c.loc }

// Weekly returns the ranges of a weekday, as compiled.
func (c *Calendar) Weekly(d time.Weekday) []Range { return append([]Range(nil), c.week[d]...) }

// Exceptions returns the exceptions in the order they are written.
func (c *Calendar) Exceptions() []*Exception { return append([]*Exception(nil), c.exceptions...) }

// open reports whether the calendar is open at t, and the index of the
// exception that governs t's day (-1 when the weekly hours do). It does not
// allocate once the exceptions of t's year are known.
func (c *Calendar) open(t time.Time) (bool, int) {
	lt := t.In(c.loc)
	y, mo, dd := lt.Date()
	h, mi, _ := lt.Clock()
	m := h*60 + mi
	d := civil(y, mo, dd)
	ranges, exc := c.plan(y, d)
	for _, r := range ranges {
		if m >= r.Start && (r.overnight() || m < r.End) {
			return true, exc
		}
	}
	prev, _ := c.plan(y, d-1)
	for _, r := range prev {
		if r.overnight() && m < r.End {
			return true, exc
		}
	}
	return false, exc
}

// Open reports whether the calendar is open at t.
func (c *Calendar) Open(t time.Time) bool {
	open, _ := c.open(t)
	return open
}

// plan returns the ranges of day d (in year y or the one before) and the
// exception that sets them, -1 for the weekly ranges.
func (c *Calendar) plan(y int, d day) ([]Range, int) {
	if len(c.exceptions) > 0 {
		yt := c.year(y)
		if d < yt.first {
			yt = c.year(y - 1)
		} else if int(d-yt.first) >= len(yt.exc) {
			yt = c.year(y + 1)
		}
		if e := yt.exc[d-yt.first]; e > 0 {
			return c.exceptions[e-1].Hours, int(e) - 1
		}
	}
	return c.week[d.weekday()], -1
}

// year is the exceptions of one year: for each day, 1 + the index of the
// exception that governs it, or 0; and the summary of the imported event
// that made it an exception, for explanations.
type year struct {
	first day
	exc   []uint16
	notes map[day]string
}

// maxCachedYears bounds the years a calendar remembers; a year beyond it
// is worked out again at each use (only odd --at values get there).
const maxCachedYears = 64

// year returns the exceptions of year y, working them out on first use.
func (c *Calendar) year(y int) *year {
	if m := c.years.Load(); m != nil {
		if yt, ok := (*m)[y]; ok {
			return yt
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.years.Load()
	if old != nil {
		if yt, ok := (*old)[y]; ok {
			return yt
		}
	}
	yt := c.fill(y)
	m := map[int]*year{}
	if old != nil {
		m = maps.Clone(*old)
	}
	if len(m) < maxCachedYears {
		m[y] = yt
		c.years.Store(&m)
	}
	return yt
}

// fill works out which exception governs each day of year y.
func (c *Calendar) fill(y int) *year {
	first, next := civil(y, time.January, 1), civil(y+1, time.January, 1)
	yt := &year{first: first, exc: make([]uint16, next-first)}
	mark := func(i int, d day, note string) {
		if d < first || d >= next || yt.exc[d-first] != 0 {
			return
		}
		yt.exc[d-first] = uint16(i + 1)
		if note != "" {
			if yt.notes == nil {
				yt.notes = map[day]string{}
			}
			yt.notes[d] = note
		}
	}
	for i, e := range c.exceptions {
		fillOne(i, e, first, next, c.loc, mark)
	}
	return yt
}

// fillOne marks the days of year [first, next) exception i covers. The
// recurrence libraries are asked here, on first use of a year, possibly
// while a call waits: their inputs are checked when compiling (years, FREQ),
// and should one of them panic all the same, the exception covers nothing
// that year rather than the process stopping.
func fillOne(i int, e *Exception, first, next day, loc *time.Location, mark func(int, day, string)) {
	defer func() { _ = recover() }()
	for _, s := range e.spans {
		for d := max(s.from, first); d <= s.to && d < next; d++ {
			mark(i, d, "")
		}
	}
	if e.rule != nil {
		for _, d := range e.rule.days(first, next) {
			mark(i, d, "")
		}
	}
	for _, h := range e.ics {
		h.days(first, next, loc, func(d day) { mark(i, d, h.summary) })
	}
}

// exceptionOn returns the exception governing day d, -1 for none, and the
// imported event's summary that made it one.
func (c *Calendar) exceptionOn(d day) (int, string) {
	if len(c.exceptions) == 0 {
		return -1, ""
	}
	y, _, _ := d.date()
	yt := c.year(y)
	e := int(yt.exc[d-yt.first]) - 1
	return e, yt.notes[d]
}

// Decision says what decides whether a calendar is open at one moment.
type Decision struct {
	At        time.Time // the moment, in the calendar's zone
	Open      bool
	Exception string // the exception that governs the day, "" for the weekly hours
	Holiday   string // the imported event behind Exception, if any
	Range     string // the range that makes it open, "" when closed
	Day       string // the day whose plan decides: a weekday ("fri") or a date of an exception
	Reason    string // all of it, in a sentence
}

// Decide explains whether the calendar is open at t: which range or
// exception decided. It allocates; Open is for the hot path.
func (c *Calendar) Decide(t time.Time) Decision {
	lt := t.In(c.loc)
	y, mo, dd := lt.Date()
	h, mi, _ := lt.Clock()
	m := h*60 + mi
	d := civil(y, mo, dd)
	dec := Decision{At: lt}
	exc, note := c.exceptionOn(d)
	if exc >= 0 {
		dec.Exception, dec.Holiday = c.exceptions[exc].Name, note
	}
	ranges, _ := c.plan(y, d)
	for _, r := range ranges {
		if m >= r.Start && (r.overnight() || m < r.End) {
			dec.Open, dec.Range, dec.Day = true, r.String(), c.dayLabel(d, exc)
			dec.Reason = "open: " + c.source(d, exc, note) + hoursText(exc, r.String())
			return dec
		}
	}
	pexc, pnote := c.exceptionOn(d - 1)
	prev, _ := c.plan(y, d-1)
	for _, r := range prev {
		if r.overnight() && m < r.End {
			dec.Open, dec.Range, dec.Day = true, r.String(), c.dayLabel(d-1, pexc)
			dec.Reason = "open: " + c.source(d-1, pexc, pnote) + hoursText(pexc, r.String()) + ", from the day before"
			return dec
		}
	}
	dec.Day = c.dayLabel(d, exc)
	switch {
	case exc >= 0 && c.exceptions[exc].Closed():
		dec.Reason = "closed: " + c.source(d, exc, note)
	case len(ranges) == 0:
		dec.Reason = "closed: no hours on " + c.source(d, exc, note)
	default:
		texts := make([]string, len(ranges))
		for i, r := range ranges {
			texts[i] = r.String()
		}
		dec.Reason = "closed: outside " + c.source(d, exc, note) + hoursText(exc, strings.Join(texts, ", "))
	}
	return dec
}

// hoursText writes the ranges after the source of a day's plan: "weekly
// hours mon 08:00-18:00", "exception x on 2026-12-24, hours 08:00-12:00".
func hoursText(exc int, ranges string) string {
	if exc >= 0 {
		return ", hours " + ranges
	}
	return " " + ranges
}

// dayLabel names the day whose plan applies: its weekday, or its date when
// an exception governs it.
func (c *Calendar) dayLabel(d day, exc int) string {
	if exc >= 0 {
		return d.String()
	}
	return weekdayNames[d.weekday()]
}

// source says where a day's plan comes from, for reasons.
func (c *Calendar) source(d day, exc int, note string) string {
	if exc < 0 {
		return "weekly hours " + weekdayNames[d.weekday()]
	}
	e := c.exceptions[exc]
	s := "exception " + e.Name + " on " + d.String()
	if note != "" {
		s += " (" + note + ")"
	}
	return s
}

// Change is a moment at which a calendar opens or closes.
type Change struct {
	At   time.Time // in the calendar's zone
	Open bool      // the state from At on
}

// NextChange returns the first moment after t at which the calendar opens
// or closes, looking up to a year ahead; false when it stays as it is.
func (c *Calendar) NextChange(t time.Time) (Change, bool) {
	now, _ := c.open(t)
	lt := t.In(c.loc)
	y, mo, dd := lt.Date()
	start := civil(y, mo, dd)
	var cands []time.Time
	for d := start - 1; d <= start+366; d++ {
		cands = c.candidates(d, cands[:0])
		sortTimes(cands)
		for _, at := range cands {
			if !at.After(t) {
				continue
			}
			if open, _ := c.open(at); open != now {
				return Change{At: at.In(c.loc), Open: open}, true
			}
		}
	}
	return Change{}, false
}

// candidates appends the moments of day d at which the calendar may open or
// close: its ranges' starts and ends (an overnight end on the next day),
// midnight, and the zone's changes of offset that day. Around a change of
// offset a wall-clock time may happen twice; both moments are added.
func (c *Calendar) candidates(d day, out []time.Time) []time.Time {
	y, mo, dd := d.date()
	midnight := time.Date(y, mo, dd, 0, 0, 0, 0, c.loc)
	nextMidnight := time.Date(y, mo, dd+1, 0, 0, 0, 0, c.loc)
	out = append(out, midnight)
	// Changes of offset within the day.
	var offsets []int
	for at := midnight; at.Before(nextMidnight); {
		_, off := at.Zone()
		offsets = append(offsets, off)
		_, end := at.ZoneBounds()
		if end.IsZero() || !end.Before(nextMidnight) {
			break
		}
		out = append(out, end)
		at = end
	}
	wall := func(dd, m int) {
		w := time.Date(y, mo, dd, m/60, m%60, 0, 0, c.loc)
		out = append(out, w)
		if len(offsets) > 1 {
			utc := time.Date(y, mo, dd, m/60, m%60, 0, 0, time.UTC)
			for _, off := range offsets {
				out = append(out, utc.Add(-time.Duration(off)*time.Second))
			}
		}
	}
	ranges, _ := c.plan(y, d)
	for _, r := range ranges {
		wall(dd, r.Start)
		if r.overnight() {
			wall(dd+1, r.End)
		} else {
			wall(dd, r.End)
		}
	}
	return out
}

func sortTimes(ts []time.Time) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j].Before(ts[j-1]); j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

// Occurrence is a day an exception governs.
type Occurrence struct {
	Date      string // YYYY-MM-DD
	Exception *Exception
	Holiday   string // the imported event's summary, if any
}

// Upcoming returns the days from t's (in the calendar's zone) on, for days
// days, that an exception governs.
func (c *Calendar) Upcoming(t time.Time, days int) []Occurrence {
	lt := t.In(c.loc)
	y, mo, dd := lt.Date()
	start := civil(y, mo, dd)
	var out []Occurrence
	for d := start; d < start+day(days); d++ {
		if e, note := c.exceptionOn(d); e >= 0 {
			out = append(out, Occurrence{Date: d.String(), Exception: c.exceptions[e], Holiday: note})
		}
	}
	return out
}

// weekdayNames are the names of weekdays in flows files, by time.Weekday.
var weekdayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// WeekdayName returns the short name of d used in flows files ("mon").
func WeekdayName(d time.Weekday) string { return weekdayNames[d] }

// day is a civil date: days since 1970-01-01.
type day int32

// civil returns the day of a date (month and day may overflow, as in
// time.Date).
func civil(y int, m time.Month, d int) day {
	// Days from civil, after Howard Hinnant's algorithm: no time.Time, no
	// allocation, exact for every proleptic Gregorian date.
	mm := int(m)
	y += (mm - 1) / 12
	mm = (mm-1)%12 + 1
	if mm <= 0 {
		mm += 12
		y--
	}
	if mm <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (mm + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return day(era*146097 + doe - 719468)
}

// date returns the year, month and day of d.
func (d day) date() (int, time.Month, int) {
	return time.Unix(int64(d)*86400, 0).UTC().Date()
}

// weekday returns d's day of the week.
func (d day) weekday() time.Weekday {
	return time.Weekday(((int(d) % 7) + 7 + 4) % 7) // 1970-01-01 was a Thursday
}

// String writes d as YYYY-MM-DD.
func (d day) String() string {
	y, m, dd := d.date()
	return fmt.Sprintf("%04d-%02d-%02d", y, int(m), dd)
}
