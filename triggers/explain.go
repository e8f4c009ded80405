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
	Kind       string // "compare", "all", "any", "not" or "trigger"
	Trigger    string // for "trigger": the trigger used
	Var        string // the variable compared; "" for before/after on the current time
	Op         string
	Value      any  // the value compared with (when the op takes one)
	Seen       any  // the variable's value, or the current time for before/after without a var
	Missing    bool // the variable is not set
	TZ         string
	IgnoreCase bool
	Trim       bool
	Result     bool
	Children   []Explanation
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
	if n.op == opBefore || n.op == opAfter {
		e.TZ = n.tzName
	}
	var v any
	present := false
	if n.varName != "" {
		v, present = vars.Lookup(n.varName)
		e.Seen, e.Missing = v, !present
	} else {
		e.Seen = now.In(n.loc).Format(time.RFC3339)
	}
	e.Result = n.compare(v, present, now)
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
		Var        string          `json:"var,omitempty"`
		Op         string          `json:"op,omitempty"`
		Value      json.RawMessage `json:"value,omitempty"`
		Seen       json.RawMessage `json:"seen,omitempty"`
		Missing    bool            `json:"missing,omitempty"`
		TZ         string          `json:"tz,omitempty"`
		IgnoreCase bool            `json:"ignoreCase,omitempty"`
		Trim       bool            `json:"trim,omitempty"`
		Result     bool            `json:"result"`
		Children   []Explanation   `json:"children,omitempty"`
	}
	o := out{Kind: e.Kind, Trigger: e.Trigger, Var: e.Var, Op: e.Op, Missing: e.Missing, TZ: e.TZ,
		IgnoreCase: e.IgnoreCase, Trim: e.Trim, Result: e.Result, Children: e.Children}
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
