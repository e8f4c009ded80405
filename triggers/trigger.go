package triggers

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/callctx/callctx/internal/yamldoc"
)

// Trigger is a named, compiled condition. It is immutable and safe for
// concurrent use.
type Trigger struct {
	Name        string
	Description string
	File        string // where it is defined
	Line        int
	When        any // the condition as written, as a JSON value

	root      *node
	vars      []string
	usesClock bool
}

// Eval reports whether the trigger fires for these variables. now is the time
// before/after conditions without a variable compare with; Eval never reads
// the clock itself. Eval does not allocate for conditions on strings,
// booleans and numbers compared by value, and never touches the disk.
func (t *Trigger) Eval(vars Vars, now time.Time) bool {
	return t.root.eval(vars, now)
}

// Vars returns the session variables the trigger reads, including through
// the triggers it uses, sorted. Its result can only change when one of them
// does, or with the time if UsesClock reports true.
func (t *Trigger) Vars() []string { return slices.Clone(t.vars) }

// UsesClock reports whether the trigger compares the current time (a before
// or after condition without a variable), so that its result can change
// without any variable changing.
func (t *Trigger) UsesClock() bool { return t.usesClock }

// Set is a compiled set of triggers and the calendars they use, immutable
// and safe for concurrent use. The methods of a nil *Set behave as for an
// empty set.
type Set struct {
	byName       map[string]*Trigger
	list         []*Trigger
	calendars    map[string]*Calendar
	calendarList []*Calendar
}

// Trigger returns the trigger called name.
func (s *Set) Trigger(name string) (*Trigger, bool) {
	if s == nil {
		return nil, false
	}
	t, ok := s.byName[name]
	return t, ok
}

// All returns every trigger, sorted by name.
func (s *Set) All() []*Trigger {
	if s == nil {
		return nil
	}
	return slices.Clone(s.list)
}

// Len returns the number of triggers.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.list)
}

// Defs are the definitions Compile compiles, as written in files.
type Defs struct {
	// Triggers are {description?, when: condition}.
	Triggers []yamldoc.Def
	// Calendars are {description?, tz, weekly?, exceptions?} (see
	// Calendar).
	Calendars []yamldoc.Def
	// ReadFile reads a file a calendar imports (ics: PATH), by the path
	// written; nil refuses imports.
	ReadFile func(path string) ([]byte, error)
}

// Compile compiles calendars and triggers: regular expressions and like
// patterns compiled, time zones loaded, lists prepared, holiday files read,
// references to other triggers and to calendars resolved. A reference to
// an unknown trigger or calendar and a cycle of references are errors,
// reported with every other problem found as a yamldoc.Errors list. It
// always returns a set: the triggers and calendars without problems work.
func Compile(d Defs) (*Set, error) {
	c := &compiler{
		byName:    map[string]*Trigger{},
		defs:      map[string]yamldoc.Def{},
		state:     map[string]int{},
		locs:      map[string]*time.Location{},
		calendars: map[string]*Calendar{},
		readFile:  d.ReadFile,
	}
	s := &Set{byName: c.byName, calendars: c.calendars}
	for _, def := range d.Calendars {
		cal := c.calendar(def)
		c.calendars[cal.Name] = cal
		s.calendarList = append(s.calendarList, cal)
	}
	slices.SortFunc(s.calendarList, func(a, b *Calendar) int { return strings.Compare(a.Name, b.Name) })
	for _, def := range d.Triggers {
		m, _ := def.Value.(map[string]any)
		desc, _ := m["description"].(string)
		t := &Trigger{Name: def.Name, Description: desc, File: def.Doc.File, Line: def.Pos().Line, When: m["when"]}
		c.byName[def.Name] = t
		c.defs[def.Name] = def
		s.list = append(s.list, t)
	}
	slices.SortFunc(s.list, func(a, b *Trigger) int { return strings.Compare(a.Name, b.Name) })
	for _, t := range s.list {
		c.trigger(t)
	}
	for _, t := range s.list {
		vars := map[string]bool{}
		t.usesClock = collect(t.root, vars, map[*Trigger]bool{t: true})
		for v := range vars {
			t.vars = append(t.vars, v)
		}
		slices.Sort(t.vars)
	}
	return s, c.errs.Err()
}

// collect gathers the variables a condition reads and reports whether it
// reads the clock.
func collect(n *node, vars map[string]bool, seen map[*Trigger]bool) bool {
	clock := false
	switch n.kind {
	case nRef:
		if !seen[n.ref] {
			seen[n.ref] = true
			clock = collect(n.ref.root, vars, seen)
		}
	case nCompare, nCalendar:
		if n.varName != "" {
			vars[n.varName] = true
			if n.op == opEvaluable { // it may read a variable its name is a path into
				for i, ns := strings.LastIndexByte(n.varName, '.'), strings.IndexByte(n.varName, '.'); i > ns; i = strings.LastIndexByte(n.varName[:i], '.') {
					vars[n.varName[:i]] = true
				}
			}
		} else if n.kind == nCalendar || n.op.timed() {
			clock = true
		}
	}
	for _, k := range n.kids {
		clock = collect(k, vars, seen) || clock
	}
	return clock
}

const (
	stateNew = iota
	stateCompiling
	stateDone
)

type compiler struct {
	byName    map[string]*Trigger
	defs      map[string]yamldoc.Def
	state     map[string]int
	stack     []string
	locs      map[string]*time.Location
	calendars map[string]*Calendar
	readFile  func(string) ([]byte, error)
	errs      yamldoc.Errors
}

func (c *compiler) fail(def yamldoc.Def, ptr, format string, args ...any) {
	c.errs = append(c.errs, def.Errorf(ptr, format, args...))
}

func (c *compiler) trigger(t *Trigger) {
	if c.state[t.Name] != stateNew {
		return
	}
	c.state[t.Name] = stateCompiling
	c.stack = append(c.stack, t.Name)
	def := c.defs[t.Name]
	if m, _ := def.Value.(map[string]any); m == nil || m["when"] == nil {
		c.fail(def, "", "missing field \"when\"")
		t.root = &node{kind: nAll}
	} else {
		t.root = c.cond(def, "/when", t.When)
	}
	c.stack = c.stack[:len(c.stack)-1]
	c.state[t.Name] = stateDone
}

// cond compiles the condition v found at def.Pointer+ptr. It never returns
// nil: after an error it returns a placeholder so that compiling can go on
// and find the other problems.
func (c *compiler) cond(def yamldoc.Def, ptr string, v any) *node {
	m, ok := v.(map[string]any)
	if !ok {
		c.fail(def, ptr, "a condition is a mapping")
		return &node{kind: nAll}
	}
	if list, ok := m["all"]; ok {
		return &node{kind: nAll, kids: c.conds(def, ptr+"/all", list)}
	}
	if list, ok := m["any"]; ok {
		return &node{kind: nAny, kids: c.conds(def, ptr+"/any", list)}
	}
	if sub, ok := m["not"]; ok {
		return &node{kind: nNot, kids: []*node{c.cond(def, ptr+"/not", sub)}}
	}
	if ref, ok := m["trigger"]; ok {
		return c.ref(def, ptr+"/trigger", ref)
	}
	if _, ok := m["calendar"]; ok {
		return c.calendarCond(def, ptr, m)
	}
	return c.comparison(def, ptr, m)
}

func (c *compiler) conds(def yamldoc.Def, ptr string, v any) []*node {
	list, ok := v.([]any)
	if !ok {
		c.fail(def, ptr, "expected a list of conditions")
		return nil
	}
	kids := make([]*node, len(list))
	for i, item := range list {
		kids[i] = c.cond(def, ptr+"/"+strconv.Itoa(i), item)
	}
	return kids
}

func (c *compiler) ref(def yamldoc.Def, ptr string, v any) *node {
	name, _ := v.(string)
	target, ok := c.byName[name]
	if !ok {
		c.fail(def, ptr, "unknown trigger %q", name)
		return &node{kind: nAll}
	}
	if c.state[name] == stateCompiling {
		i := slices.Index(c.stack, name)
		path := append(slices.Clone(c.stack[i:]), name)
		c.fail(def, ptr, "trigger cycle: %s", strings.Join(path, " → "))
		return &node{kind: nAll}
	}
	c.trigger(target)
	return &node{kind: nRef, ref: target}
}

func (c *compiler) comparison(def yamldoc.Def, ptr string, m map[string]any) *node {
	opName, _ := m["op"].(string)
	if op, ok := m["op"]; ok && op == nil {
		opName = "null" // YAML reads an unquoted `op: null` as null
	}
	spec, ok := ops[opName]
	if _, given := m["op"]; !given {
		c.fail(def, ptr, "a comparison needs an op (and usually var and value); to combine conditions use all, any, not or trigger")
		return &node{kind: nAll}
	}
	if !ok {
		c.fail(def, ptr+"/op", "unknown op %q", opName)
		return &node{kind: nAll}
	}
	n := &node{kind: nCompare, opName: opName, op: spec.code, neg: spec.neg, clock: -1}
	n.varName, _ = m["var"].(string)
	if b, _ := m["ignore_case"].(bool); b {
		n.o |= optFold
	}
	if b, _ := m["trim"].(bool); b {
		n.o |= optTrim
	}
	value, hasValue := m["value"]
	switch {
	case spec.code.takesValue() && !hasValue:
		c.fail(def, ptr, "op %s needs a value", opName)
		return n
	case !spec.code.takesValue() && hasValue:
		c.fail(def, ptr+"/value", "op %s takes no value", opName)
		return n
	case n.varName == "" && !spec.code.timed():
		c.fail(def, ptr, "op %s needs a var", opName)
		return n
	}
	if tz, ok := m["tz"].(string); ok && !spec.code.timed() {
		c.fail(def, ptr+"/tz", "tz %q is only used by before, after and weekday", tz)
	}
	switch spec.code {
	case opBefore, opAfter:
		c.clock(def, ptr, n, m, value)
	case opWeekday:
		c.weekday(def, ptr, n, m, value)
	case opRegex, opLike:
		pattern, ok := value.(string)
		if !ok {
			c.fail(def, ptr+"/value", "op %s takes a text pattern", opName)
			return n
		}
		n.lit = viewOf(pattern, 0)
		if spec.code == opLike {
			pattern = likePattern(pattern)
		}
		if n.o&optFold != 0 {
			pattern = "(?i)" + pattern
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			var se *syntax.Error
			msg := err.Error()
			if errors.As(err, &se) {
				msg = se.Code.String() + ": `" + se.Expr + "`"
			}
			c.fail(def, ptr+"/value", "invalid regular expression: %s", msg)
			return n
		}
		n.re = re
	case opIn:
		list, ok := value.([]any)
		if !ok {
			c.fail(def, ptr+"/value", "op %s takes a list", opName)
			return n
		}
		n.lit = viewOf(value, n.o)
		c.inList(n, list)
	default:
		n.lit = viewOf(value, n.o)
	}
	n.litText, n.litHasText = n.lit.text()
	return n
}

// inList prepares in/not_in: a long list of plain strings compared exactly
// becomes a set; everything else is compared one by one.
func (c *compiler) inList(n *node, list []any) {
	views := make([]view, len(list))
	plain := 0
	for i, e := range list {
		views[i] = viewOf(e, n.o)
		if isPlainString(views[i]) {
			plain++
		}
	}
	if n.o&optFold != 0 || plain < 8 {
		n.list = views
		return
	}
	n.strs = make(map[string]struct{}, plain)
	for _, v := range views {
		if isPlainString(v) {
			n.strs[v.s] = struct{}{}
		} else {
			n.list = append(n.list, v)
		}
	}
}

// isPlainString reports whether a value can only equal a string identical to
// it: a string that is neither numeric nor "true"/"false".
func isPlainString(v view) bool { return v.kind == vString && !v.isNum && !v.isBool }

func (c *compiler) clock(def yamldoc.Def, ptr string, n *node, m map[string]any, value any) {
	s, _ := value.(string)
	if secs, ok := parseClock(s); ok {
		n.clock = secs
	} else if date, ok := parseDate(s); ok {
		n.date = date
	} else {
		c.fail(def, ptr+"/value", "op %s takes a time of day \"HH:MM\" or a date \"YYYY-MM-DD\"; %q is neither", n.opName, s)
		return
	}
	n.lit = viewOf(s, 0)
	c.zone(def, ptr, n, m)
}

// zone sets the time zone of a before, after or weekday comparison: tz,
// UTC by default.
func (c *compiler) zone(def yamldoc.Def, ptr string, n *node, m map[string]any) {
	n.tzName, n.loc = "UTC", time.UTC
	if tz, ok := m["tz"].(string); ok {
		n.tzName = tz
		if loc, ok := c.location(def, ptr+"/tz", tz); ok {
			n.loc = loc
		}
	}
}

// weekday compiles {op: weekday, value: DAYS}: a day (sat), a run of days
// (mon-fri) or a list of them.
func (c *compiler) weekday(def yamldoc.Def, ptr string, n *node, m map[string]any, value any) {
	list, isList := value.([]any)
	if !isList {
		list = []any{value}
	}
	for i, v := range list {
		p := ptr + "/value"
		if isList {
			p += "/" + strconv.Itoa(i)
		}
		s, _ := v.(string)
		days, ok := weekdays(s)
		if !ok {
			c.fail(def, p, "weekday takes days: mon, tue, wed, thu, fri, sat, sun, a run such as mon-fri, or a list of them; %q is none", fmt.Sprint(v))
			continue
		}
		for _, d := range days {
			n.days |= 1 << d
		}
	}
	n.lit = viewOf(value, 0)
	c.zone(def, ptr, n, m)
}

// calendarCond compiles {calendar: NAME, is: open | closed | EXCEPTION,
// var?}: whether the calendar is open (or which exception governs the day)
// now, or at the time in var.
func (c *compiler) calendarCond(def yamldoc.Def, ptr string, m map[string]any) *node {
	n := &node{kind: nCalendar, calIs: isOpen}
	name, _ := m["calendar"].(string)
	cal, ok := c.calendars[name]
	if !ok {
		c.fail(def, ptr+"/calendar", "unknown calendar %q", name)
		return &node{kind: nAll}
	}
	n.cal = cal
	n.varName, _ = m["var"].(string)
	n.opName, _ = m["is"].(string)
	for k := range m {
		switch k {
		case "calendar", "is", "var":
		default:
			c.fail(def, ptr+"/"+yamldoc.EscapePointer(k), "a calendar condition is {calendar, is, var?}; %s does not belong", k)
		}
	}
	switch n.opName {
	case "open":
	case "closed":
		n.calIs = isClosed
	case "":
		c.fail(def, ptr, "a calendar condition needs is: open, closed or the name of one of %s's exceptions", name)
	default:
		i := slices.IndexFunc(cal.exceptions, func(e *Exception) bool { return e.Name == n.opName })
		if i < 0 {
			c.fail(def, ptr+"/is", "is %q: use open, closed or an exception of %s%s", n.opName, name, exceptionNames(cal))
			return &node{kind: nAll}
		}
		n.calIs = i
	}
	return n
}

func exceptionNames(cal *Calendar) string {
	if len(cal.exceptions) == 0 {
		return " (it has none)"
	}
	names := make([]string, len(cal.exceptions))
	for i, e := range cal.exceptions {
		names[i] = e.Name
	}
	return " (" + strings.Join(names, ", ") + ")"
}

func loadLocation(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		// "Local" would make a trigger depend on the server's settings.
		return nil, errors.New("not a zone name")
	}
	return time.LoadLocation(name)
}

// likePattern translates a SQL LIKE pattern into an anchored regular
// expression: % is any run of characters, _ is one character, and a
// backslash makes the next character literal.
func likePattern(p string) string {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	lit := func(r rune) { b.WriteString(regexp.QuoteMeta(string(r))) }
	escaped := false
	for _, r := range p {
		switch {
		case escaped:
			lit(r)
			escaped = false
		case r == '\\':
			escaped = true
		case r == '%':
			b.WriteString(`.*`)
		case r == '_':
			b.WriteString(`.`)
		default:
			lit(r)
		}
	}
	if escaped {
		lit('\\')
	}
	b.WriteString(`)$`)
	return b.String()
}
