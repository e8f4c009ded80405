package triggers

import (
	"encoding/json"
	"time"
)

// Explanation says why a condition came out as it did. It mirrors the
// condition: a comparison names the variable, the operator, the value it
// compares with and the value it saw; all, any, not and trigger hold the
// explanations of their parts.
//
// Every part is evaluated, also those Eval would skip once the result is
// known, so that a designer sees every condition; the result is the same.
type Explanation struct {
	Kind       string // "compare", "all", "any", "not", "trigger" or "calendar"
	Trigger    string // for "trigger": the trigger used
	Calendar   string // for "calendar": the calendar asked
	Is         string // for "calendar": open, closed or an exception's name
	Var        string // the variable compared; "" for before/after on the current time
	Op         string
	Value      any  // the value compared with (when the op takes one)
	Seen       any  // the variable's value, or the current time for before/after without a var
	Missing    bool // the variable is not set
	TZ         string
	IgnoreCase bool
	Trim       bool
	Result     bool
	// Decided says what decided, in words: for a calendar, which range or
	// exception (e.g. "open: weekly hours mon 08:00-18:00"); for weekday,
	// the day seen.
	Decided  string
	Children []Explanation
}

// Explain evaluates the trigger like Eval and explains the result. Unlike
// Eval it allocates; use it for the API and tools, not on the hot path.
func (t *Trigger) Explain(vars Vars, now time.Time) Explanation {
	root := t.root.explain(vars, now)
	return Explanation{Kind: "trigger", Trigger: t.Name, Children: []Explanation{root}, Result: root.Result}
}

// explain explains n; a combination's result comes from its parts' results,
// as Eval would compute it, without evaluating them again.
func (n *node) explain(vars Vars, now time.Time) Explanation {
	switch n.kind {
	case nAll, nAny, nNot:
		e := Explanation{Kind: combinationKinds[n.kind]}
		some, every := false, true
		for _, k := range n.kids {
			c := k.explain(vars, now)
			some, every = some || c.Result, every && c.Result
			e.Children = append(e.Children, c)
		}
		switch n.kind {
		case nAll:
			e.Result = every
		case nAny:
			e.Result = some
		case nNot:
			e.Result = !some
		}
		return e
	case nRef:
		return n.ref.Explain(vars, now)
	case nCalendar:
		return n.explainCalendar(vars, now)
	}
	e := Explanation{
		Kind:       "compare",
		Var:        n.varName,
		Op:         n.opName,
		IgnoreCase: n.o&optFold != 0,
		Trim:       n.o&optTrim != 0,
	}
	if n.op.takesValue() {
		e.Value = n.lit.v
	}
	if n.op.timed() {
		e.TZ = n.tzName
	}
	v, present := n.lookup(vars)
	if n.varName != "" {
		e.Seen, e.Missing = v, !present
	} else {
		e.Seen = now.In(n.loc).Format(time.RFC3339)
	}
	e.Result = n.compare(v, present, now)
	if n.op == opWeekday {
		if wd, fromDate, ok := n.weekdayOf(v, present, now); ok {
			e.Decided = weekdayNames[wd]
			if !fromDate {
				e.Decided += " in " + n.tzName
			}
		}
	}
	return e
}

// explainCalendar explains a calendar condition: the moment looked at, in
// the calendar's zone, and the range or exception that decided.
func (n *node) explainCalendar(vars Vars, now time.Time) Explanation {
	e := Explanation{Kind: "calendar", Calendar: n.cal.Name, Is: n.opName, Var: n.varName, TZ: n.cal.TZ}
	if n.varName != "" {
		v, present := vars.Lookup(n.varName)
		e.Seen, e.Missing = v, !present
	}
	e.Result = n.calendarTest(vars, now)
	t, ok := n.timeOf(vars, now)
	if !ok {
		if !e.Missing {
			e.Decided = "not an RFC 3339 time"
		}
		return e
	}
	if n.varName == "" {
		e.Seen = t.In(n.cal.loc).Format(time.RFC3339)
	}
	e.Decided = n.cal.Decide(t).Reason
	return e
}

// combinationKinds names the kinds of all, any and not in explanations.
var combinationKinds = map[nodeKind]string{nAll: "all", nAny: "any", nNot: "not"}

// MarshalJSON writes the explanation with camelCase keys, leaving out what
// does not apply; "value" and "seen" are written even when they are null.
func (e Explanation) MarshalJSON() ([]byte, error) {
	type out struct {
		Kind       string          `json:"kind"`
		Trigger    string          `json:"trigger,omitempty"`
		Calendar   string          `json:"calendar,omitempty"`
		Is         string          `json:"is,omitempty"`
		Var        string          `json:"var,omitempty"`
		Op         string          `json:"op,omitempty"`
		Value      json.RawMessage `json:"value,omitempty"`
		Seen       json.RawMessage `json:"seen,omitempty"`
		Missing    bool            `json:"missing,omitempty"`
		TZ         string          `json:"tz,omitempty"`
		IgnoreCase bool            `json:"ignoreCase,omitempty"`
		Trim       bool            `json:"trim,omitempty"`
		Result     bool            `json:"result"`
		Decided    string          `json:"decided,omitempty"`
		Children   []Explanation   `json:"children,omitempty"`
	}
	o := out{Kind: e.Kind, Trigger: e.Trigger, Calendar: e.Calendar, Is: e.Is, Var: e.Var, Op: e.Op, Missing: e.Missing, TZ: e.TZ,
		IgnoreCase: e.IgnoreCase, Trim: e.Trim, Result: e.Result, Decided: e.Decided, Children: e.Children}
	if e.Kind == "calendar" && !e.Missing {
		var err error
		if o.Seen, err = json.Marshal(e.Seen); err != nil {
			return nil, err
		}
	}
	if e.Kind == "compare" {
		var err error
		if op, ok := ops[e.Op]; ok && op.code.takesValue() {
			if o.Value, err = json.Marshal(e.Value); err != nil {
				return nil, err
			}
		}
		if !e.Missing {
			if o.Seen, err = json.Marshal(e.Seen); err != nil {
				return nil, err
			}
		}
	}
	return json.Marshal(o)
}
