package session_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/callctx/callctx/session"
)

// TestLimits_Fit: what a new session cannot take is left out, each with
// why, and the rest kept, in name order until the session is full.
func TestLimits_Fit(t *testing.T) {
	lim := session.Limits{MaxNameLength: 20, MaxValueBytes: 16, MaxVariables: session.MaxCallVariables + 3, MaxSessionBytes: 2048 + 60}
	vars := map[string]json.RawMessage{
		"sip.a":                      json.RawMessage(`"1"`),
		"sip.b":                      json.RawMessage(`"2"`),
		"sip.c":                      json.RawMessage(`null`),
		"sip.much-too-long-a-name-x": json.RawMessage(`"3"`),
		"sip.big":                    json.RawMessage(`"` + strings.Repeat("x", 20) + `"`),
		"call.to":                    json.RawMessage(`"4"`),
		"sip.d":                      json.RawMessage(`"5"`),
		"sip.e":                      json.RawMessage(`"6"`),
	}
	fit, left := lim.Fit(vars, session.OriginSIP)
	var kept []string
	for _, n := range []string{"sip.a", "sip.b", "sip.c", "sip.d", "sip.e"} {
		if _, ok := fit[n]; ok {
			kept = append(kept, n)
		}
	}
	if got, want := strings.Join(kept, " "), "sip.a sip.b sip.d"; got != want || len(fit) != 3 {
		t.Errorf("kept %s (%d), want %s", got, len(fit), want)
	}
	var why []string
	for _, f := range left {
		why = append(why, f.Name+": "+f.Message)
	}
	want := []string{
		"call.to: the call. namespace is read-only; clients write ivr. and app.",
		"sip.big: the value is 22 bytes as JSON; the limit is 16",
		"sip.e: the session's limits are reached",
		"sip.much-too-long-a-name-x: the name is 26 characters long; the limit is 20",
	}
	if g, w := strings.Join(why, "\n"), strings.Join(want, "\n"); g != w {
		t.Errorf("left out:\n%s\nwant:\n%s", g, w)
	}
	if fit, _ := lim.Fit(map[string]json.RawMessage{"ivr.x": json.RawMessage(`"ok"`)}, session.OriginClient); len(fit) != 1 {
		t.Errorf("a client's ivr. variable was left out")
	}
}
