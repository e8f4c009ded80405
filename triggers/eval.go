package triggers

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Vars is where a trigger reads session variables. Values are decoded JSON:
// nil, bool, string, float64 or json.Number (int, int64 are tolerated), []any
// and map[string]any. Lookup reports false for a variable that is not set.
type Vars interface {
	Lookup(name string) (any, bool)
}

// Map is a Vars backed by a plain map, as decoded from a JSON object.
type Map map[string]any

// Lookup returns the variable name.
func (m Map) Lookup(name string) (any, bool) {
	v, ok := m[name]
	return v, ok
}

type opcode uint8

const (
	opEq opcode = iota
	opGt
	opGe
	opLt
	opLe
	opRegex
	opLike
	opContains
	opStartsWith
	opEndsWith
	opIn
	opSet
	opEmpty
	opNull
	opEvaluable
	opBefore
	opAfter
	opWeekday
)

// ops maps each operator name to the test it runs and whether the result is
// negated: every not_… operator (and ne) is exactly the negation of its
// positive twin, for every input.
var ops = map[string]struct {
	code opcode
	neg  bool
}{
	"eq": {opEq, false}, "ne": {opEq, true},
	"gt": {opGt, false}, "ge": {opGe, false}, "lt": {opLt, false}, "le": {opLe, false},
	"regex": {opRegex, false}, "like": {opLike, false},
	"contains": {opContains, false}, "not_contains": {opContains, true},
	"starts_with": {opStartsWith, false}, "not_starts_with": {opStartsWith, true},
	"ends_with": {opEndsWith, false}, "not_ends_with": {opEndsWith, true},
	"in": {opIn, false}, "not_in": {opIn, true},
	"set": {opSet, false}, "not_set": {opSet, true},
	"empty": {opEmpty, false}, "not_empty": {opEmpty, true},
	"null": {opNull, false}, "not_null": {opNull, true},
	"evaluable": {opEvaluable, false}, "not_evaluable": {opEvaluable, true},
	"before": {opBefore, false}, "after": {opAfter, false},
	"weekday": {opWeekday, false},
}

// timed reports whether an operator tests a time: the variable's, or the
// current time when there is no variable.
func (c opcode) timed() bool { return c == opBefore || c == opAfter || c == opWeekday }

// takesValue reports whether an operator compares with a value.
func (c opcode) takesValue() bool {
	switch c {
	case opSet, opEmpty, opNull, opEvaluable:
		return false
	}
	return true
}

type nodeKind uint8

const (
	nCompare nodeKind = iota
	nAll
	nAny
	nNot
	nRef
	nCalendar
)

// What a calendar condition tests (node.calIs); 0 and above is the index of
// an exception.
const (
	isOpen   = -1
	isClosed = -2
)

// node is a compiled condition.
type node struct {
	kind nodeKind
	kids []*node
	ref  *Trigger

	// comparisons
	opName     string
	op         opcode
	neg        bool
	varName    string
	o          opts
	lit        view   // the value, classified
	litText    string // the value's text, for text operators
	litHasText bool
	list       []view // in / not_in
	strs       map[string]struct{}
	re         *regexp.Regexp // regex, like
	loc        *time.Location // before / after
	tzName     string
	clock      int       // before/after: seconds since midnight, or -1 for a date
	date       int       // before/after: yyyymmdd
	days       uint8     // weekday: bit d set for time.Weekday d
	cal        *Calendar // calendar conditions
	calIs      int       // isOpen, isClosed or an exception's index
}

func (n *node) eval(vars Vars, now time.Time) bool {
	switch n.kind {
	case nAll:
		for _, k := range n.kids {
			if !k.eval(vars, now) {
				return false
			}
		}
		return true
	case nAny:
		for _, k := range n.kids {
			if k.eval(vars, now) {
				return true
			}
		}
		return false
	case nNot:
		return !n.kids[0].eval(vars, now)
	case nRef:
		return n.ref.root.eval(vars, now)
	case nCalendar:
		return n.calendarTest(vars, now)
	}
	v, present := n.lookup(vars)
	return n.compare(v, present, now)
}

// lookup reads the comparison's variable: as a path for evaluable (see
// resolvePath), else by its name.
func (n *node) lookup(vars Vars) (any, bool) {
	switch {
	case n.varName == "":
		return nil, false
	case n.op == opEvaluable:
		return resolvePath(vars, n.varName)
	}
	return vars.Lookup(n.varName)
}

// resolvePath reads name as an expression the way babelforce evaluates
// one: the variable of that name or, when there is none, a value inside the
// JSON object or array held by the longest variable whose name is a prefix
// of it at a dot, reached by the remaining segments (object keys, exactly;
// array indexes as decimal numbers): ivr.customer.tier is the "tier" of an
// object in ivr.customer. Strings are not parsed as JSON.
func resolvePath(vars Vars, name string) (any, bool) {
	if v, ok := vars.Lookup(name); ok {
		return v, true
	}
	for i, ns := strings.LastIndexByte(name, '.'), strings.IndexByte(name, '.'); i > ns; i = strings.LastIndexByte(name[:i], '.') {
		if v, ok := vars.Lookup(name[:i]); ok {
			return walkPath(v, name[i+1:])
		}
	}
	return nil, false
}

// walkPath follows a dotted path of object keys and array indexes into v.
func walkPath(v any, path string) (any, bool) {
	for seg := range strings.SplitSeq(path, ".") {
		switch t := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = t[seg]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(t) || strconv.Itoa(i) != seg {
				return nil, false
			}
			v = t[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// compare runs a comparison on the variable's value.
func (n *node) compare(v any, present bool, now time.Time) bool {
	return n.test(v, present, now) != n.neg
}

func (n *node) test(v any, present bool, now time.Time) bool {
	switch n.op {
	case opSet:
		return present
	case opNull:
		return !present || v == nil
	case opEvaluable:
		return present && v != nil
	case opEmpty:
		return !present || viewOf(v, n.o).empty()
	case opBefore, opAfter:
		return n.clockTest(v, present, now)
	case opWeekday:
		wd, _, ok := n.weekdayOf(v, present, now)
		return ok && n.days&(1<<wd) != 0
	}
	if !present {
		return false
	}
	switch n.op {
	case opStartsWith, opEndsWith, opRegex, opLike:
		return n.textTest(v)
	case opContains:
		if _, isArray := v.([]any); !isArray {
			return n.textTest(v)
		}
	case opEq:
		if r, ok := n.eqLiteral(v); ok {
			return r
		}
	}
	return n.valueTest(v)
}

// eqLiteral is equals' short way for the common literals, a boolean or a
// plain string, which needs no view of v; ok is false for other literals.
func (n *node) eqLiteral(v any) (result, ok bool) {
	switch {
	case n.lit.kind == vBool:
		switch t := v.(type) {
		case bool:
			return t == n.lit.b, true
		case string:
			if n.o&optTrim != 0 {
				t = strings.TrimSpace(t)
			}
			b, ok := boolText(t, n.o)
			return ok && b == n.lit.b, true
		}
		return false, true
	case isPlainString(n.lit):
		t, ok := v.(string)
		if !ok {
			return false, true
		}
		if n.o&optTrim != 0 {
			t = strings.TrimSpace(t)
		}
		return textEqual(t, n.lit.s, n.o), true
	}
	return false, false
}

// valueTest runs the operators that compare a view of the value with the
// literal or the list.
func (n *node) valueTest(v any) bool {
	x := viewOf(v, n.o)
	switch n.op {
	case opEq:
		return equal(x, n.lit, n.o)
	case opGt, opGe, opLt, opLe:
		c, ok := order(x, n.lit, n.o)
		if !ok {
			return false
		}
		switch n.op {
		case opGt:
			return c > 0
		case opGe:
			return c >= 0
		case opLt:
			return c < 0
		}
		return c <= 0
	case opContains:
		if x.kind == vArray {
			for _, e := range v.([]any) {
				if equal(viewOf(e, n.o), n.lit, n.o) {
					return true
				}
			}
			return false
		}
		return false
	case opIn:
		if n.strs != nil && x.kind == vString {
			if _, ok := n.strs[x.s]; ok {
				return true
			}
		}
		for i := range n.list {
			if equal(x, n.list[i], n.o) {
				return true
			}
		}
		return false
	}
	return false
}

// textTest runs the operators that work on the text of strings and numbers.
func (n *node) textTest(v any) bool {
	var s string
	switch t := v.(type) {
	case string:
		s = t
		if n.o&optTrim != 0 {
			s = strings.TrimSpace(s)
		}
	case bool, nil, []any, map[string]any:
		return false
	default:
		var ok bool
		if s, ok = viewOf(v, n.o).text(); !ok {
			return false
		}
	}
	switch n.op {
	case opRegex, opLike:
		return n.re.MatchString(s)
	case opStartsWith:
		return hasPrefix(s, n.litText, n.o)
	case opEndsWith:
		return hasSuffix(s, n.litText, n.o)
	case opContains:
		return n.litHasText && containsText(s, n.litText, n.o)
	}
	return false
}

// clockTest implements before and after. "before X" holds strictly before
// X and "after X" from X on, so [after 09:00, before 17:00] is a half-open
// window.
func (n *node) clockTest(v any, present bool, now time.Time) bool {
	t := now
	if n.varName != "" {
		if !present {
			return false
		}
		s, ok := v.(string)
		if !ok {
			return false
		}
		if n.o&optTrim != 0 {
			s = strings.TrimSpace(s)
		}
		if n.clock < 0 {
			if d, ok := parseDate(s); ok {
				return n.dateCmp(d)
			}
		}
		var err error
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return false
		}
	}
	t = t.In(n.loc)
	if n.clock < 0 {
		y, m, d := t.Date()
		return n.dateCmp(y*10000 + int(m)*100 + d)
	}
	h, m, s := t.Clock()
	cur := h*3600 + m*60 + s
	if n.op == opBefore {
		return cur < n.clock
	}
	return cur >= n.clock
}

// weekdayOf returns the day of the week a weekday comparison looks at: of
// the current time, or of the variable's RFC 3339 time, in the zone; or of
// the variable's date "YYYY-MM-DD" (fromDate). false when the variable is
// missing or neither.
func (n *node) weekdayOf(v any, present bool, now time.Time) (wd time.Weekday, fromDate, ok bool) {
	if n.varName == "" {
		return now.In(n.loc).Weekday(), false, true
	}
	s, isText := v.(string)
	if !present || !isText {
		return 0, false, false
	}
	if n.o&optTrim != 0 {
		s = strings.TrimSpace(s)
	}
	if d, ok := parseDate(s); ok {
		return civil(d/10000, time.Month(d/100%100), d%100).weekday(), true, true
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, false, false
	}
	return t.In(n.loc).Weekday(), false, true
}

// calendarTest implements calendar conditions, at now or at the time in
// the variable (false when it is missing or not an RFC 3339 time).
func (n *node) calendarTest(vars Vars, now time.Time) bool {
	t, ok := n.timeOf(vars, now)
	if !ok {
		return false
	}
	open, exc := n.cal.open(t)
	switch n.calIs {
	case isOpen:
		return open
	case isClosed:
		return !open
	}
	return exc == n.calIs
}

// timeOf returns the time a condition on time looks at: the variable's,
// parsed as RFC 3339, or now when the condition has no variable.
func (n *node) timeOf(vars Vars, now time.Time) (time.Time, bool) {
	if n.varName == "" {
		return now, true
	}
	v, ok := vars.Lookup(n.varName)
	if !ok {
		return time.Time{}, false
	}
	s, ok := v.(string)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

func (n *node) dateCmp(d int) bool {
	if n.op == opBefore {
		return d < n.date
	}
	return d >= n.date
}

// parseDate reads "YYYY-MM-DD" as yyyymmdd.
func parseDate(s string) (int, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	v := 0
	for i := 0; i < 10; i++ {
		if i == 4 || i == 7 {
			continue
		}
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	y, m, d := v/10000, v/100%100, v%100
	if m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, false
	}
	return v, true
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// parseClock reads "HH:MM" as seconds since midnight.
func parseClock(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if h > 23 || m > 59 {
		return 0, false
	}
	return h*3600 + m*60, true
}
