package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/callctx/callctx/api"
	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/stats"
)

const flowsYAML = `
triggers:
  known: {when: {var: ivr.email, op: not_empty}}
  premium:
    description: A premium customer.
    when: {all: [{trigger: known}, {var: ivr.premium, op: eq, value: true}]}
flows:
  hotline:
    description: A small flow.
    start: hello
    nodes:
      hello: {type: say, text: "Hello {ivr.name}", next: ask}
      ask: {type: input, var: pin, min: 4, max: 4, chars: digits, next: route}
      route:
        type: switch
        cases: [{trigger: premium, next: agent}]
        default: bye
      agent: {type: transfer, target: "sip:agent@pbx.example.com", headers: {X-Pin: "{app.ask.pin}"}}
      bye: {type: hangup}
`

// newFlowServer starts the API with a flow engine over a real store.
func newFlowServer(t *testing.T) *testServer {
	t.Helper()
	s, _ := newFlowServerEngine(t, flowsYAML)
	return s
}

// newFlowServerWith starts the API with the flows of one file.
func newFlowServerWith(t *testing.T, yaml string) *testServer {
	t.Helper()
	s, _ := newFlowServerEngine(t, yaml)
	return s
}

// compileFlows compiles one flows file.
func compileFlows(t *testing.T, yaml string) *flow.Snapshot {
	t.Helper()
	d, err := flow.ParseFS(fstest.MapFS{"flows.yaml": {Data: []byte(yaml)}})
	if err != nil {
		t.Fatal(err)
	}
	snap, _, err := flow.Compile(d, flow.CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// newFlowServerEngine is newFlowServerWith, returning the engine too.
func newFlowServerEngine(t *testing.T, yaml string) (*testServer, *flow.Engine) {
	t.Helper()
	s, engine, _ := newBoardServer(t, yaml)
	return s, engine
}

// newBoardServer is newFlowServerWith with the wallboard's board, which
// hears the engine; it returns the engine and the board too.
func newBoardServer(t *testing.T, yaml string) (*testServer, *flow.Engine, *stats.Board) {
	t.Helper()
	snap := compileFlows(t, yaml)
	st := openStore(t)
	svc := session.NewService(st, session.Options{})
	board := stats.New(stats.Config{Service: svc})
	engine := flow.NewEngine(flow.Config{Service: svc, Store: st, Snapshot: snap, Observer: board})
	if err := engine.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(engine.Close)
	if err := board.Open(context.Background(), engine); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(board.Close)
	_, s := serve(t, api.Config{Service: svc, Flows: engine, Board: board})
	return s, engine, board
}

func TestTriggers(t *testing.T) {
	s := newFlowServer(t)

	t.Run("List", func(t *testing.T) {
		res := s.do("GET", "/v1/triggers", nil)
		if res.Status != http.StatusOK {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		items := res.JSON(t)["items"].([]any)
		if len(items) != 2 || items[0].(map[string]any)["name"] != "known" {
			t.Fatalf("items %v", items)
		}
	})

	t.Run("Get", func(t *testing.T) {
		res := s.do("GET", "/v1/triggers/premium", nil)
		got := res.JSON(t)
		if got["description"] != "A premium customer." || got["file"] != "flows.yaml" || got["line"] != 4.0 {
			t.Fatalf("trigger %s", res.Body)
		}
		if vars := got["vars"].([]any); len(vars) != 2 || vars[0] != "ivr.email" || vars[1] != "ivr.premium" {
			t.Fatalf("vars %v", vars)
		}
		wantProblem(t, s.do("GET", "/v1/triggers/nope", nil), http.StatusNotFound, "no trigger nope")
	})

	t.Run("EvaluateVariables", func(t *testing.T) {
		res := s.do("POST", "/v1/triggers/premium/evaluate", `{"variables": {"ivr.email": "a@b.c", "ivr.premium": "true"}}`)
		if res.Status != http.StatusOK {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		got := res.JSON(t)
		if got["result"] != true || got["trigger"] != "premium" {
			t.Fatalf("result %s", res.Body)
		}
		if !strings.Contains(string(res.Body), `{"kind":"compare","var":"ivr.premium","op":"eq","value":true,"seen":"true","result":true}`) {
			t.Fatalf("explanation %s", res.Body)
		}
	})

	t.Run("EvaluateCall", func(t *testing.T) {
		id := s.createCall(map[string]any{"from": "a", "to": "b", "variables": map[string]any{"ivr.email": "a@b.c"}})
		res := s.do("POST", "/v1/triggers/premium/evaluate", map[string]any{"callId": id})
		if got := res.JSON(t); got["result"] != false {
			t.Fatalf("result %s", res.Body)
		}
		if !strings.Contains(string(res.Body), `"var":"ivr.premium","op":"eq","value":true,"missing":true,"result":false`) {
			t.Fatalf("explanation %s", res.Body)
		}
		wantProblem(t, s.do("POST", "/v1/triggers/premium/evaluate", `{"callId": "nope"}`), http.StatusNotFound, "nope")
	})

	t.Run("EvaluateErrors", func(t *testing.T) {
		wantProblem(t, s.do("POST", "/v1/triggers/premium/evaluate", `{}`), http.StatusUnprocessableEntity, "")
		wantProblem(t, s.do("POST", "/v1/triggers/premium/evaluate", `{"callId": "a", "variables": {}}`), http.StatusUnprocessableEntity, "")
		p := wantProblem(t, s.do("POST", "/v1/triggers/premium/evaluate", `{"variables": {}, "extra": 1}`), http.StatusUnprocessableEntity, "")
		if got := strings.Join(pointers(p), ","); !strings.Contains(got, "/extra") {
			t.Fatalf("pointers %s", got)
		}
		wantProblem(t, s.do("POST", "/v1/triggers/premium/evaluate", `{"variables": `), http.StatusBadRequest, "not valid JSON")
		wantProblem(t, s.do("POST", "/v1/triggers/nope/evaluate", `{"variables": {}}`), http.StatusNotFound, "")
	})

	t.Run("EvaluateAt", func(t *testing.T) {
		res := s.do("POST", "/v1/triggers/known/evaluate", `{"variables": {}, "at": "2026-11-20T09:00:00+01:00"}`)
		if got := res.JSON(t); got["at"] != "2026-11-20T08:00:00Z" {
			t.Fatalf("at %v", got["at"])
		}
	})
}

func TestFlows(t *testing.T) {
	s := newFlowServer(t)

	t.Run("List", func(t *testing.T) {
		got := s.do("GET", "/v1/flows", nil).JSON(t)
		items := got["items"].([]any)
		if len(items) != 1 || items[0].(map[string]any)["name"] != "hotline" || items[0].(map[string]any)["nodeCount"] != 5.0 {
			t.Fatalf("flows %v", got)
		}
	})

	t.Run("Get", func(t *testing.T) {
		got := s.do("GET", "/v1/flows/hotline", nil).JSON(t)
		nodes := got["nodes"].(map[string]any)
		if got["start"] != "hello" || nodes["ask"].(map[string]any)["var"] != "pin" {
			t.Fatalf("flow %v", got)
		}
		wantProblem(t, s.do("GET", "/v1/flows/nope", nil), http.StatusNotFound, "no flow nope")
	})

	t.Run("UnknownFlow", func(t *testing.T) {
		p := wantProblem(t, s.do("POST", "/v1/calls", `{"from": "a", "to": "b", "flow": "nope"}`), http.StatusUnprocessableEntity, "no flow nope")
		if got := strings.Join(pointers(p), ","); got != "/flow" {
			t.Fatalf("pointers %s", got)
		}
		page := s.do("GET", "/v1/calls?state=all", nil).JSON(t)
		if n := len(page["items"].([]any)); n != 0 {
			t.Fatalf("a call was created for an unknown flow: %d calls", n)
		}
	})

	t.Run("Drive", func(t *testing.T) {
		id := s.createCall(map[string]any{"from": "a", "to": "b", "flow": "hotline",
			"variables": map[string]any{"ivr.name": "Jane", "ivr.email": "jane@example.com", "ivr.premium": true}})
		next := func(body any) map[string]any {
			t.Helper()
			res := s.do("POST", "/v1/calls/"+id+"/flow/next", body)
			if res.Status != http.StatusOK {
				t.Fatalf("flow/next %v: %d %s", body, res.Status, res.Body)
			}
			return res.JSON(t)
		}
		got := next(nil)
		if got["node"] != "hello" || got["step"] != 1.0 || got["action"].(map[string]any)["text"] != "Hello Jane" {
			t.Fatalf("first action %v", got)
		}
		wantProblem(t, s.do("POST", "/v1/calls/"+id+"/flow/next", `{"input": "1234", "step": 1}`), http.StatusUnprocessableEntity, "not input")
		got = next(`{"status": "done", "step": 1}`)
		if got["node"] != "ask" || got["action"].(map[string]any)["var"] != "app.ask.pin" {
			t.Fatalf("input action %v", got)
		}
		got = next(`{"input": "4711", "step": 2}`)
		action := got["action"].(map[string]any)
		if got["node"] != "agent" || action["type"] != "transfer" || action["headers"].(map[string]any)["X-Pin"] != "4711" {
			t.Fatalf("transfer action %v", got)
		}
		got = next(`{"status": "done", "step": 3}`)
		if got["done"] != true || got["action"] != nil || got["node"] != nil {
			t.Fatalf("end %v", got)
		}

		run := s.do("GET", "/v1/calls/"+id+"/flow", nil).JSON(t)
		var path []string
		for _, st := range run["path"].([]any) {
			path = append(path, st.(map[string]any)["node"].(string))
		}
		if strings.Join(path, " ") != "hello ask route agent" || run["done"] != true {
			t.Fatalf("run %v", run)
		}
		sess := s.do("GET", "/v1/sessions/"+id, nil).JSON(t)
		vars := sess["variables"].(map[string]any)
		if vars["app.ask.pin"] != "4711" || vars["app.agent.status"] != "done" {
			t.Fatalf("session %v", vars)
		}
		autos := s.do("GET", "/v1/calls/"+id+"/automations", nil).JSON(t)
		if items := autos["items"].([]any); len(items) != 0 {
			t.Fatalf("automations %v", items)
		}
	})

	t.Run("NextErrors", func(t *testing.T) {
		id := s.createCall(map[string]any{"from": "a", "to": "b", "flow": "hotline"})
		wantProblem(t, s.do("POST", "/v1/calls/nope/flow/next", `{}`), http.StatusNotFound, "nope")
		wantProblem(t, s.do("POST", "/v1/calls/"+id+"/flow/next", `{"status": "done"}`), http.StatusConflict, "no action awaits")
		wantProblem(t, s.do("POST", "/v1/calls/"+id+"/flow/next", `{"status": "finished"}`), http.StatusUnprocessableEntity, "")
		wantProblem(t, s.do("POST", "/v1/calls/"+id+"/flow/next", `{"step": 0}`), http.StatusUnprocessableEntity, "")
		wantProblem(t, s.do("POST", "/v1/calls/"+id+"/flow/next", `{"status": "done", "step": 9}`), http.StatusConflict, "not been handed out")
		wantProblem(t, s.do("POST", "/v1/calls/"+id+"/flow/next", `{"input": `), http.StatusBadRequest, "")
		wantProblem(t, s.do("POST", "/v1/calls/"+id+"/flow/next", "status=done", "Content-Type", "text/plain"), http.StatusUnsupportedMediaType, "")
		noFlow := s.createCall(nil)
		wantProblem(t, s.do("POST", "/v1/calls/"+noFlow+"/flow/next", nil), http.StatusNotFound, "has no flow")
		wantProblem(t, s.do("GET", "/v1/calls/"+noFlow+"/flow", nil), http.StatusNotFound, "no flow run")
		wantProblem(t, s.do("GET", "/v1/calls/nope/automations", nil), http.StatusNotFound, "")
		s.do("POST", "/v1/calls/"+id+"/end", nil)
		wantProblem(t, s.do("POST", "/v1/calls/"+id+"/flow/next", nil), http.StatusConflict, "has ended")
	})
}

func TestFlows_disabled(t *testing.T) {
	_, s := newTestServer(t, nil) // no engine
	if got := s.do("GET", "/v1/flows", nil).JSON(t); len(got["items"].([]any)) != 0 {
		t.Fatalf("flows %v", got)
	}
	if got := s.do("GET", "/v1/triggers", nil).JSON(t); len(got["items"].([]any)) != 0 {
		t.Fatalf("triggers %v", got)
	}
	id := s.createCall(map[string]any{"from": "a", "to": "b", "flow": "anything"})
	wantProblem(t, s.do("POST", "/v1/calls/"+id+"/flow/next", nil), http.StatusNotFound, "not enabled")
	wantProblem(t, s.do("GET", "/v1/calls/"+id+"/flow", nil), http.StatusNotFound, "not enabled")
	wantProblem(t, s.do("GET", "/v1/calls/"+id+"/automations", nil), http.StatusNotFound, "not enabled")
}
