package session

import (
	"encoding/json"
	"sort"
)

// callReserve is the room a new session keeps for the call.* variables
// callctx writes: at most MaxCallVariables of them, well under 2 KiB.
const callReserve = 2048

// Fit returns the variables of vars that a new call's session takes under
// the limits and the namespace rules of origin, leaving room for the call.*
// variables: those that fit, in name order until the session is full; and
// each one left out with why. It is for a writer that must not lose a call
// over context it cannot keep (the SIP bridge mapping inbound headers),
// where CreateCall would refuse the whole call.
func (l Limits) Fit(vars map[string]json.RawMessage, origin Origin) (map[string]json.RawMessage, []FieldError) {
	l = l.WithDefaults()
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	sort.Strings(names)
	budgetVars, budgetBytes := l.MaxVariables-MaxCallVariables, l.MaxSessionBytes-callReserve
	out := make(map[string]json.RawMessage, len(vars))
	var left []FieldError
	for _, n := range names {
		v, refused := checkVariable(n, vars[n], origin, l)
		switch {
		case refused != nil:
			left = append(left, *refused)
			continue
		case v == nil:
			continue // null: nothing to keep
		case budgetVars <= 0 || budgetBytes < len(n)+len(v):
			left = append(left, FieldError{Name: n, Message: "the session's limits are reached", Variable: true})
			continue
		}
		budgetVars--
		budgetBytes -= len(n) + len(v)
		out[n] = v
	}
	return out, left
}
