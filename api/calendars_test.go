package api_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// calendarsYAML adds support hours, a trigger on them and a routing table to
// the hotline of flowsYAML.
var calendarsYAML = strings.Replace(flowsYAML, "triggers:\n", "triggers:\n  support-open: {when: {calendar: support, is: open}}\n", 1) + `
calendars:
  support:
    description: Support hours.
    tz: Europe/Berlin
    weekly: {mon-fri: "08:00-18:00"}
    exceptions:
      - {name: christmas-eve, date: "2026-12-24", hours: "08:00-12:00"}
      - {name: boxing-day, date: "2026-12-26"}
routing:
  country: DE
  routes:
    - {number: "+49 30 111", flow: hotline, name: hotline-line, when: premium}
`

func TestCalendars(t *testing.T) {
	s := newFlowServerWith(t, calendarsYAML)
	at := url.QueryEscape("2026-12-24T11:18:00+01:00")

	t.Run("List", func(t *testing.T) {
		got := s.do("GET", "/v1/calendars?at="+at, nil).JSON(t)
		items := got["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("items %v", items)
		}
		c := items[0].(map[string]any)
		if c["name"] != "support" || c["state"] != "open" || c["exception"] != "christmas-eve" || c["weekly"] != nil {
			t.Fatalf("calendar %v", c)
		}
	})

	t.Run("Get", func(t *testing.T) {
		got := s.do("GET", "/v1/calendars/support?at="+at, nil).JSON(t)
		if got["open"] != true || got["range"] != "08:00-12:00" || got["reason"] != "open: exception christmas-eve on 2026-12-24, hours 08:00-12:00" {
			t.Fatalf("state %v", got)
		}
		next := got["nextChange"].(map[string]any)
		if next["at"] != "2026-12-24T12:00:00+01:00" || next["open"] != false || next["inSeconds"] != 2520.0 {
			t.Fatalf("nextChange %v (closes in 42 min)", next)
		}
		var up []string
		for _, o := range got["upcoming"].([]any) {
			m := o.(map[string]any)
			up = append(up, m["date"].(string)+" "+m["exception"].(string))
		}
		if g, w := strings.Join(up, ", "), "2026-12-24 christmas-eve, 2026-12-26 boxing-day"; g != w {
			t.Fatalf("upcoming %s, want %s", g, w)
		}
		if w := got["weekly"].(map[string]any); len(w["mon"].([]any)) != 1 || len(w["sun"].([]any)) != 0 {
			t.Fatalf("weekly %v", w)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		wantProblem(t, s.do("GET", "/v1/calendars/nope", nil), http.StatusNotFound, "no calendar nope")
		wantProblem(t, s.do("GET", "/v1/calendars/support?at=tomorrow", nil), http.StatusBadRequest, "RFC 3339")
	})

	t.Run("Evaluate", func(t *testing.T) {
		res := s.do("POST", "/v1/triggers/support-open/evaluate", `{"variables": {}, "at": "2026-12-24T13:00:00+01:00"}`)
		got := res.JSON(t)
		e := got["explain"].(map[string]any)["children"].([]any)[0].(map[string]any)
		if got["result"] != false || e["kind"] != "calendar" || e["calendar"] != "support" || e["is"] != "open" ||
			e["decided"] != "closed: outside exception christmas-eve on 2026-12-24, hours 08:00-12:00" || e["seen"] != "2026-12-24T13:00:00+01:00" {
			t.Fatalf("evaluation %s", res.Body)
		}
	})
}

func TestRouting(t *testing.T) {
	s := newFlowServerWith(t, calendarsYAML)
	got := s.do("GET", "/v1/routing", nil).JSON(t)
	routes := got["routes"].([]any)
	if got["country"] != "DE" || len(routes) != 1 || routes[0].(map[string]any)["number"] != "+4930111" || routes[0].(map[string]any)["when"] != "premium" {
		t.Fatalf("routing %v", got)
	}
	// GET /v1/routing?to= routes as a call to the number without variables would be: the
	// route's trigger (premium) does not fire, and the table has no default.
	to := s.do("GET", "/v1/routing?to="+url.QueryEscape("030 111"), nil).JSON(t)["to"].(map[string]any)
	if to["number"] != "+4930111" || to["flow"] != nil {
		t.Fatalf("to %v", to)
	}

	t.Run("CreateCall", func(t *testing.T) {
		// POST /v1/calls without a flow takes the table's, whose trigger sees the variables
		// the call starts with.
		res := s.do("POST", "/v1/calls", map[string]any{"from": "+4940555000", "to": "030 111",
			"variables": map[string]any{"ivr.email": "jane@example.com", "ivr.premium": true}})
		call := res.JSON(t)
		if res.Status != http.StatusCreated || call["flow"] != "hotline" || call["route"] != "hotline-line" {
			t.Fatalf("%d %v", res.Status, call)
		}
		// The flow was started: its first action is ready.
		next := s.do("POST", "/v1/calls/"+call["id"].(string)+"/flow/next", nil).JSON(t)
		if next["node"] != "hello" {
			t.Fatalf("flow/next %v", next)
		}
		sess := s.do("GET", "/v1/sessions/"+call["id"].(string), nil).JSON(t)
		if sess["variables"].(map[string]any)["call.route"] != "hotline-line" {
			t.Fatalf("session %v", sess)
		}
		call = s.do("GET", "/v1/calls/"+call["id"].(string), nil).JSON(t)
		if call["route"] != "hotline-line" {
			t.Fatalf("GET call %v", call)
		}
		// Without them, nothing routes it: the call has no flow.
		call = s.do("POST", "/v1/calls", map[string]any{"from": "+4940555000", "to": "030 111"}).JSON(t)
		if call["flow"] != nil || call["route"] != nil {
			t.Fatalf("call %v, want no flow", call)
		}
	})
	t.Run("Unrouted", func(t *testing.T) {
		got := s.do("GET", "/v1/routing?to=%2B441234", nil).JSON(t)["to"].(map[string]any)
		if got["number"] != "+441234" || got["flow"] != nil || got["route"] != nil || got["index"] != nil {
			t.Fatalf("to %v", got)
		}
		call := s.do("POST", "/v1/calls", map[string]any{"from": "a", "to": "+441234"}).JSON(t)
		if call["flow"] != nil || call["route"] != nil {
			t.Fatalf("call %v, want no flow", call)
		}
	})
}
