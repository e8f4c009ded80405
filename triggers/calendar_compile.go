package triggers

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/callctx/callctx/internal/yamldoc"
)

// calendar compiles one calendar definition:
//
//	{description?, tz, weekly?: {DAYS: RANGES}, exceptions?: [EXCEPTION]}
//
// DAYS is a weekday (mon … sun) or a run of them (mon-fri, fri-mon); RANGES
// is "HH:MM-HH:MM" or a list of them. An EXCEPTION is {name, hours?: RANGES}
// with one of date, dates, from+to, rrule (+start) or ics. Every problem is
// reported; the calendar returned is usable whatever they were.
func (c *compiler) calendar(def yamldoc.Def) *Calendar {
	m, _ := def.Value.(map[string]any)
	cal := &Calendar{
		Name: def.Name, Description: str(m, "description"), File: def.Doc.File, Line: def.Pos().Line,
		TZ: str(m, "tz"), loc: time.UTC,
	}
	if loc, ok := c.location(def, "/tz", cal.TZ); ok {
		cal.loc = loc
	}
	c.weekly(def, cal, m["weekly"])
	list, _ := m["exceptions"].([]any)
	names := map[string]int{}
	for i, v := range list {
		ptr := "/exceptions/" + strconv.Itoa(i)
		em, _ := v.(map[string]any)
		e := c.exception(def, ptr, cal, em)
		if e == nil {
			continue
		}
		if first, dup := names[e.Name]; dup {
			c.fail(def, ptr+"/name", "exception %q is already defined (exceptions/%d)", e.Name, first)
			continue
		}
		names[e.Name] = i
		if len(cal.exceptions) >= 0xfffe {
			c.fail(def, ptr, "too many exceptions")
			break
		}
		cal.exceptions = append(cal.exceptions, e)
	}
	return cal
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// location loads an IANA zone, reporting an unknown one at ptr.
func (c *compiler) location(def yamldoc.Def, ptr, name string) (*time.Location, bool) {
	if loc, ok := c.locs[name]; ok {
		return loc, true
	}
	loc, err := loadLocation(name)
	if err != nil {
		c.fail(def, ptr, "unknown time zone %q (use an IANA name such as Europe/Berlin)", name)
		return nil, false
	}
	c.locs[name] = loc
	return loc, true
}

// dayKey matches a key of weekly: a weekday or a run of them.
var dayKey = regexp.MustCompile(`^(mon|tue|wed|thu|fri|sat|sun)(?:-(mon|tue|wed|thu|fri|sat|sun))?$`)

// weekdays returns the days of a weekly key, in order from its first.
func weekdays(key string) ([]time.Weekday, bool) {
	sm := dayKey.FindStringSubmatch(strings.ToLower(key))
	if sm == nil {
		return nil, false
	}
	from := time.Weekday(slices.Index(weekdayNames[:], sm[1]))
	to := from
	if sm[2] != "" {
		to = time.Weekday(slices.Index(weekdayNames[:], sm[2]))
	}
	var out []time.Weekday
	for d := from; ; d = (d + 1) % 7 {
		out = append(out, d)
		if d == to {
			return out, true
		}
	}
}

// weekly compiles the weekly ranges and checks that no two of them overlap,
// across midnight and from Sunday into Monday included.
func (c *compiler) weekly(def yamldoc.Def, cal *Calendar, v any) {
	if v == nil {
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		c.fail(def, "/weekly", "weekly maps days (mon, mon-fri, …) to ranges such as \"08:00-18:00\"")
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// In the order written, so that a day given twice is reported where it
	// is given the second time.
	slices.SortFunc(keys, func(a, b string) int {
		pa, pb := def.Doc.Pos(def.Pointer+"/weekly/"+yamldoc.EscapePointer(a)), def.Doc.Pos(def.Pointer+"/weekly/"+yamldoc.EscapePointer(b))
		return pa.Line*1000 + pa.Column - pb.Line*1000 - pb.Column
	})
	given := map[time.Weekday]string{} // the key that gave a day, and its line
	type placed struct {
		r   Range
		day time.Weekday
		ptr string
	}
	var all []placed
	for _, k := range keys {
		ptr := "/weekly/" + yamldoc.EscapePointer(k)
		days, ok := weekdays(k)
		if !ok {
			c.fail(def, ptr, "%q is not a day: use mon, tue, wed, thu, fri, sat, sun or a run such as mon-fri", k)
			continue
		}
		ranges := c.ranges(def, ptr, m[k], false)
		for _, d := range days {
			if prev, dup := given[d]; dup {
				c.fail(def, ptr, "%s is already given (%s)", weekdayNames[d], prev)
				continue
			}
			given[d] = fmt.Sprintf("%s, line %d", k, def.Doc.Pos(def.Pointer+ptr).Line)
			cal.week[d] = append(cal.week[d], ranges...)
			for i, r := range ranges {
				p := ptr
				if _, isList := m[k].([]any); isList {
					p += "/" + strconv.Itoa(i)
				}
				all = append(all, placed{r, d, p})
			}
		}
	}
	for i := range cal.week {
		slices.SortFunc(cal.week[i], func(a, b Range) int { return a.Start - b.Start })
	}
	// Overlaps on the circle of the week, Monday first.
	const week = 7 * 1440
	reported := map[string]bool{}
	for i := range all {
		for j := range i {
			a, b := all[i], all[j]
			if !overlap(weekMinutes(a.day, a.r), weekMinutes(b.day, b.r), week) || reported[a.ptr] {
				continue
			}
			reported[a.ptr] = true
			c.fail(def, a.ptr, "%s %s overlaps %s %s", weekdayNames[a.day], a.r, weekdayNames[b.day], b.r)
		}
	}
}

// weekMinutes places a range of a weekday on the week: its start in
// minutes from Monday 00:00, and its length.
func weekMinutes(d time.Weekday, r Range) [2]int {
	start := ((int(d)+6)%7)*1440 + r.Start
	length := r.End - r.Start
	if r.overnight() {
		length += 1440
	}
	return [2]int{start, length}
}

// overlap reports whether two intervals on a circle of size n overlap.
func overlap(a, b [2]int, n int) bool {
	d := ((b[0]-a[0])%n + n) % n // b's start, seen from a's
	return d < a[1] || n-d < b[1]
}

// ranges compiles "HH:MM-HH:MM" or a list of them; with distinct, the
// ranges of the list must not overlap (weekly checks the whole week).
func (c *compiler) ranges(def yamldoc.Def, ptr string, v any, distinct bool) []Range {
	var texts []any
	switch t := v.(type) {
	case string:
		texts = []any{t}
	case []any:
		texts = t
	case nil:
		return nil
	default:
		c.fail(def, ptr, "hours are \"HH:MM-HH:MM\" or a list of them")
		return nil
	}
	var out []Range
	for i, tv := range texts {
		p := ptr
		if _, isList := v.([]any); isList {
			p += "/" + strconv.Itoa(i)
		}
		s, _ := tv.(string)
		r, err := parseRange(s)
		if err != nil {
			c.fail(def, p, "%v", err)
			continue
		}
		for _, o := range out {
			if distinct && overlap(weekMinutes(0, r), weekMinutes(0, o), 1<<30) {
				c.fail(def, p, "%s overlaps %s", r, o)
				break
			}
		}
		out = append(out, r)
	}
	return out
}

// parseRange reads "HH:MM-HH:MM". An end of 00:00 or 24:00 is midnight at
// the end of the day; an end before the start passes midnight.
func parseRange(s string) (Range, error) {
	from, to, ok := strings.Cut(strings.TrimSpace(s), "-")
	start, ok1 := parseClock(strings.TrimSpace(from))
	end, ok2 := parseClock(strings.TrimSpace(to))
	if strings.TrimSpace(to) == "24:00" {
		end, ok2 = 1440*60, true
	}
	if !ok || !ok1 || !ok2 {
		return Range{}, fmt.Errorf("%q is not a range of the form \"08:00-18:00\" (24-hour clock; 24:00 ends at midnight; \"22:00-02:00\" passes midnight)", s)
	}
	r := Range{Start: start / 60, End: end / 60}
	if r.End == 0 {
		r.End = 1440
	}
	if r.Start == r.End {
		return Range{}, fmt.Errorf("%q is empty; the whole day is \"00:00-24:00\"", s)
	}
	return r, nil
}

// exception compiles one exception; nil when it is too broken to use.
func (c *compiler) exception(def yamldoc.Def, ptr string, cal *Calendar, m map[string]any) *Exception {
	if m == nil {
		c.fail(def, ptr, "an exception is a mapping: {name, date | dates | from and to | rrule | ics, hours?}")
		return nil
	}
	e := &Exception{Name: str(m, "name"), Line: def.Doc.Pos(def.Pointer + ptr).Line}
	switch e.Name {
	case "":
		c.fail(def, ptr, "an exception needs a name: conditions test it with is: NAME")
		return nil
	case "open", "closed":
		c.fail(def, ptr+"/name", "%q is what is: tests for the calendar itself; name the exception otherwise", e.Name)
		return nil
	}
	if h, ok := m["hours"]; ok {
		e.Hours = c.ranges(def, ptr+"/hours", h, true)
		slices.SortFunc(e.Hours, func(a, b Range) int { return a.Start - b.Start })
	}
	kind, ok := c.exceptionKind(def, ptr, m)
	if !ok || !c.exceptionDays(def, ptr, cal, m, kind, e) {
		return nil
	}
	if _, ok := m["start"]; ok && kind != "rrule" {
		c.fail(def, ptr+"/start", "start is the first date of an rrule")
	}
	return e
}

// exceptionKind is how exception m covers its days: date, dates, from (with
// to), rrule or ics; exactly one of them.
func (c *compiler) exceptionKind(def yamldoc.Def, ptr string, m map[string]any) (string, bool) {
	var kinds []string
	for _, k := range []string{"date", "dates", "from", "rrule", "ics"} {
		if _, ok := m[k]; ok {
			kinds = append(kinds, k)
		}
	}
	if _, ok := m["to"]; ok && !slices.Contains(kinds, "from") {
		kinds = append(kinds, "to")
	}
	if len(kinds) != 1 {
		c.fail(def, ptr, "an exception covers days by one of date, dates, from and to, rrule or ics; found %s",
			orNone(kinds))
		return "", false
	}
	return kinds[0], true
}

// exceptionDays fills in the days exception e covers, by kind; false when
// they are wrong (the compiler has the reasons).
func (c *compiler) exceptionDays(def yamldoc.Def, ptr string, cal *Calendar, m map[string]any, kind string, e *Exception) bool {
	switch kind {
	case "date":
		d, ok := c.date(def, ptr+"/date", m["date"])
		if !ok {
			return false
		}
		e.What, e.spans = d.String(), []span{{d, d}}
	case "dates":
		list, _ := m["dates"].([]any)
		if len(list) == 0 {
			c.fail(def, ptr+"/dates", "dates is a list of dates \"YYYY-MM-DD\"")
			return false
		}
		var texts []string
		for i, v := range list {
			if d, ok := c.date(def, ptr+"/dates/"+strconv.Itoa(i), v); ok {
				e.spans = append(e.spans, span{d, d})
				texts = append(texts, d.String())
			}
		}
		e.What = strings.Join(texts, ", ")
	case "from", "to":
		from, ok1 := c.date(def, ptr+"/from", m["from"])
		to, ok2 := c.date(def, ptr+"/to", m["to"])
		if !ok1 || !ok2 {
			return false
		}
		if to < from {
			c.fail(def, ptr+"/to", "to (%s) is before from (%s)", to, from)
			return false
		}
		e.What, e.spans = from.String()+" to "+to.String(), []span{{from, to}}
	case "rrule":
		var start time.Time
		if _, ok := m["start"]; ok {
			d, ok := c.date(def, ptr+"/start", m["start"])
			if !ok {
				return false
			}
			start = d.midnightUTC()
		}
		text := str(m, "rrule")
		r, err := parseRule(text, start)
		if err != nil {
			c.fail(def, ptr+"/rrule", "invalid RRULE: %v", err)
			return false
		}
		e.What, e.rule = text, r
	case "ics":
		path := str(m, "ics")
		e.What = path
		if c.readFile == nil {
			c.fail(def, ptr+"/ics", "cannot read %s: no files to import from here", path)
			return false
		}
		data, err := c.readFile(path)
		if err != nil {
			c.fail(def, ptr+"/ics", "cannot read %s: %v", path, err)
			return false
		}
		items, err := parseICS(data, cal.loc)
		if err != nil {
			c.fail(def, ptr+"/ics", "%s: %v", path, err)
			return false
		}
		e.ics = items
	}
	return true
}

func orNone(kinds []string) string {
	if len(kinds) == 0 {
		return "none"
	}
	return strings.Join(kinds, " and ")
}

// date reads a date "YYYY-MM-DD".
func (c *compiler) date(def yamldoc.Def, ptr string, v any) (day, bool) {
	s, _ := v.(string)
	ymd, ok := parseDate(s)
	if !ok {
		c.fail(def, ptr, "%q is not a date \"YYYY-MM-DD\"", fmt.Sprint(v))
		return 0, false
	}
	if y := ymd / 10000; y < minYear || y > maxYear {
		c.fail(def, ptr, "%s is outside the years %d to %d", s, minYear, maxYear)
		return 0, false
	}
	return civil(ymd/10000, time.Month(ymd/100%100), ymd%100), true
}
