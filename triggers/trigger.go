package triggers

import (
	"errors"
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

// Set is a compiled set of triggers, immutable and safe for concurrent use.
// The methods of a nil *Set behave as for an empty set.
type Set struct {
	byName map[string]*Trigger
	list   []*Trigger
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

// Compile compiles trigger definitions, each {description?, when: condition}
// as written in a file: regular expressions and like patterns compiled, time
// zones loaded, lists prepared, references to other triggers resolved. A
// reference to an unknown trigger and a cycle of references are errors,
// reported with every other problem found as a yamldoc.Errors list.
func Compile(defs []yamldoc.Def) (*Set, error) {
	c := &compiler{
		byName: map[string]*Trigger{},
		defs:   map[string]yamldoc.Def{},
		state:  map[string]int{},
		locs:   map[string]*time.Location{},
	}
	s := &Set{byName: c.byName}
	for _, def := range defs {
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
	if err := c.errs.Err(); err != nil {
		return nil, err
	}
	for _, t := range s.list {
		vars := map[string]bool{}
		t.usesClock = collect(t.root, vars, map[*Trigger]bool{t: true})
		for v := range vars {
			t.vars = append(t.vars, v)
		}
		slices.Sort(t.vars)
	}
	return s, nil
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
	case nCompare:
		if n.varName != "" {
			vars[n.varName] = true
		} else if n.op == opBefore || n.op == opAfter {
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
	byName map[string]*Trigger
	defs   map[string]yamldoc.Def
	state  map[string]int
	stack  []string
	locs   map[string]*time.Location
	errs   yamldoc.Errors
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
	t.root = c.cond(def, "/when", t.When)
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
	case n.varName == "" && spec.code != opBefore && spec.code != opAfter:
		c.fail(def, ptr, "op %s needs a var", opName)
		return n
	}
	if tz, ok := m["tz"].(string); ok && spec.code != opBefore && spec.code != opAfter {
		c.fail(def, ptr+"/tz", "tz %q is only used by before and after", tz)
	}
	switch spec.code {
	case opBefore, opAfter:
		c.clock(def, ptr, n, m, value)
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
	n.tzName = "UTC"
	if tz, ok := m["tz"].(string); ok {
		n.tzName = tz
	}
	loc, ok := c.locs[n.tzName]
	if !ok {
		var err error
		loc, err = loadLocation(n.tzName)
		if err != nil {
			c.fail(def, ptr+"/tz", "unknown time zone %q (use an IANA name such as Europe/Berlin)", n.tzName)
			return
		}
		c.locs[n.tzName] = loc
	}
	n.loc = loc
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
