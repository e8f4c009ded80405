package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/internal/svgtest"
)

// graphOf decodes GET /v1/flows/{name}/graph.
func graphOf(t *testing.T, res *response) (*flow.Graph, map[string]any) {
	t.Helper()
	if res.Status != http.StatusOK {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	var g flow.Graph
	if err := json.Unmarshal(res.Body, &g); err != nil {
		t.Fatal(err)
	}
	return &g, res.JSON(t)
}

func TestFlowGraph(t *testing.T) {
	s, engine := newFlowServerEngine(t, flowsYAML)

	t.Run("JSON", func(t *testing.T) {
		g, raw := graphOf(t, s.do("GET", "/v1/flows/hotline/graph", nil))
		var nodes []string
		for _, n := range g.Nodes {
			nodes = append(nodes, n.Name+":"+string(n.Type)+":"+n.Summary)
		}
		want := []string{
			"hello:say:say “Hello {ivr.name}”", "ask:input:input app.ask.pin", "route:switch:switch on premium",
			"agent:transfer:transfer (refer) to sip:agent@pbx.example.com", "bye:hangup:hang up",
		}
		if !slices.Equal(nodes, want) {
			t.Errorf("nodes %q, want %q", nodes, want)
		}
		var edges []string
		for _, e := range g.Edges {
			edges = append(edges, e.ID+" "+e.From+">"+e.To+" "+e.Kind+" "+e.Label)
		}
		wantEdges := []string{"edge-0 hello>ask next ", "edge-1 ask>route next input", "edge-2 route>agent case premium", "edge-3 route>bye default default"}
		if !slices.Equal(edges, wantEdges) {
			t.Errorf("edges %q, want %q", edges, wantEdges)
		}
		if raw["current"] != true || raw["version"] != engine.Snapshot().Version || raw["digest"] == "" {
			t.Errorf("version fields: %v %v %v", raw["current"], raw["version"], raw["digest"])
		}
		if g.Nodes[3].Action["headers"].(map[string]any)["X-Pin"] != "{app.ask.pin}" {
			t.Errorf("the transfer's settings as written: %v", g.Nodes[3].Action)
		}
	})

	t.Run("SVG", func(t *testing.T) {
		g, _ := graphOf(t, s.do("GET", "/v1/flows/hotline/graph", nil))
		for _, how := range [][]string{{"?format=svg"}, {"", "Accept", "image/svg+xml"}} {
			res := s.do("GET", "/v1/flows/hotline/graph"+how[0], nil, how[1:]...)
			if res.Status != http.StatusOK || res.Header.Get("Content-Type") != "image/svg+xml; charset=utf-8" {
				t.Fatalf("%v: status %d, %s", how, res.Status, res.Header.Get("Content-Type"))
			}
			byID := svgtest.CheckFlow(t, g, res.Body)
			if got := byID["node-agent"].Text(); got != "agent transfer (refer) to sip:agent@pbx.example.com" {
				t.Errorf("the transfer node shows %q", got)
			}
			etag := res.Header.Get("ETag")
			if again := s.do("GET", "/v1/flows/hotline/graph?format=svg", nil, "If-None-Match", etag); again.Status != http.StatusNotModified {
				t.Errorf("If-None-Match %s: status %d", etag, again.Status)
			}
		}
	})

	t.Run("Trace", func(t *testing.T) {
		id := s.createCall(map[string]any{"from": "+4930123456", "to": "+4940555000", "flow": "hotline",
			"variables": map[string]any{"ivr.email": "a@example.com", "ivr.premium": true}})
		s.do("POST", "/v1/calls/"+id+"/flow/next", map[string]any{})
		s.do("POST", "/v1/calls/"+id+"/flow/next", map[string]any{"status": "done"})
		if res := s.do("POST", "/v1/calls/"+id+"/flow/next", map[string]any{"input": "1234"}); res.Status != http.StatusOK {
			t.Fatalf("flow/next: %d %s", res.Status, res.Body)
		}
		_, raw := graphOf(t, s.do("GET", "/v1/flows/hotline/graph?call="+id, nil))
		tr := raw["trace"].(map[string]any)
		if got, want := strings.Join(stringsOf(tr["nodes"]), ","), "hello,ask,route,agent"; got != want {
			t.Errorf("trace nodes %s, want %s", got, want)
		}
		if got, want := strings.Join(stringsOf(tr["edges"]), ","), "edge-0,edge-1,edge-2"; got != want {
			t.Errorf("trace edges %s, want %s", got, want)
		}
		if tr["current"] != "agent" || tr["done"] != false {
			t.Errorf("trace stands at %v (done %v), want agent", tr["current"], tr["done"])
		}

		other := s.createCall(nil)
		wantProblem(t, s.do("GET", "/v1/flows/hotline/graph?call="+other, nil), http.StatusNotFound, "no flow run")
		wantProblem(t, s.do("GET", "/v1/flows/hotline/graph?call=nope", nil), http.StatusNotFound, "nope")
	})

	t.Run("VersionsAfterReload", func(t *testing.T) {
		old := engine.Snapshot()
		id := s.createCall(map[string]any{"from": "+4930123456", "to": "+4940555000", "flow": "hotline"})
		engine.Reload(compileFlows(t, strings.Replace(flowsYAML, `default: bye`, `default: hello`, 1)))
		t.Cleanup(func() { engine.Reload(old) })

		res := s.do("GET", "/v1/flows/hotline/versions", nil)
		items := res.JSON(t)["items"].([]any)
		if len(items) != 2 {
			t.Fatalf("%d versions, want 2: %s", len(items), res.Body)
		}
		newest, oldest := items[0].(map[string]any), items[1].(map[string]any)
		if newest["current"] != true || oldest["version"] != old.Version || oldest["current"] != false || newest["digest"] == oldest["digest"] {
			t.Errorf("versions %s", res.Body)
		}

		_, cur := graphOf(t, s.do("GET", "/v1/flows/hotline/graph", nil))
		if cur["version"] == old.Version || !hasEdge(cur, "route", "hello") {
			t.Errorf("the graph in force is not the reloaded one: %v", cur["version"])
		}
		_, was := graphOf(t, s.do("GET", "/v1/flows/hotline/graph?call="+id, nil))
		if was["version"] != old.Version || was["current"] != false || !hasEdge(was, "route", "bye") {
			t.Errorf("a call that started before the reload is drawn on version %v (current %v)", was["version"], was["current"])
		}
		_, picked := graphOf(t, s.do("GET", "/v1/flows/hotline/graph?version="+old.Version, nil))
		if !hasEdge(picked, "route", "bye") {
			t.Error("?version= does not draw the old version")
		}
	})

	t.Run("Errors", func(t *testing.T) {
		wantProblem(t, s.do("GET", "/v1/flows/nope/graph", nil), http.StatusNotFound, "no flow nope")
		wantProblem(t, s.do("GET", "/v1/flows/nope/versions", nil), http.StatusNotFound, "no flow nope")
		wantProblem(t, s.do("GET", "/v1/flows/hotline/graph?format=png", nil), http.StatusBadRequest, "json or svg")
		wantProblem(t, s.do("GET", "/v1/flows/hotline/graph?version=0000", nil), http.StatusNotFound, "no version 0000")
	})
}

func stringsOf(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func hasEdge(graph map[string]any, from, to string) bool {
	for _, e := range graph["edges"].([]any) {
		m := e.(map[string]any)
		if m["from"] == from && m["to"] == to {
			return true
		}
	}
	return false
}

const routingYAML = flowsYAML + `
  sales:
    start: hi
    nodes:
      hi: {type: say, text: Sales, next: end}
      end: {type: hangup}
routing:
  country: DE
  routes:
    - {number: "030 1234567", flow: sales, name: sales-line}
    - {prefix: "+49800", flow: hotline, when: premium}
  default: hotline
`

func TestRoutingGraph(t *testing.T) {
	s := newFlowServerWith(t, routingYAML)
	res := s.do("GET", "/v1/routing/graph", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	var g struct {
		flow.RoutingGraph
		Version string
	}
	if err := json.Unmarshal(res.Body, &g); err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for _, n := range g.Nodes {
		nodes = append(nodes, n.ID+" "+n.Kind+" "+n.Label+": "+n.Summary)
	}
	want := []string{
		"route-0 route sales-line: number +49301234567", "flow-sales flow sales: flow sales",
		"route-1 route +49800*: prefix +49800, if premium fires", "flow-hotline flow hotline: flow hotline",
		"route-default default default: any number no route takes",
	}
	if !slices.Equal(nodes, want) {
		t.Errorf("nodes\n%q\nwant\n%q", nodes, want)
	}
	var edges []string
	for _, e := range g.Edges {
		edges = append(edges, e.From+">"+e.To+" "+e.Label)
	}
	if want := []string{"route-0>flow-sales ", "route-1>flow-hotline if premium", "route-default>flow-hotline "}; !slices.Equal(edges, want) {
		t.Errorf("edges %q, want %q", edges, want)
	}

	svg := s.do("GET", "/v1/routing/graph?format=svg", nil)
	if svg.Status != http.StatusOK {
		t.Fatalf("svg: status %d", svg.Status)
	}
	groups := svgtest.Parse(t, svg.Body)
	byID := map[string]svgtest.Group{}
	var nodeIDs, edgeIDs []string
	for _, gr := range groups {
		byID[gr.ID] = gr
		if gr.Has("node") {
			nodeIDs = append(nodeIDs, gr.ID)
		} else {
			edgeIDs = append(edgeIDs, gr.ID)
		}
	}
	if len(nodeIDs) != len(g.Nodes) || len(edgeIDs) != len(g.Edges) {
		t.Errorf("%d node and %d edge elements, want %d and %d", len(nodeIDs), len(edgeIDs), len(g.Nodes), len(g.Edges))
	}
	if got := byID["route-1"].Text(); got != "2. +49800* prefix +49800 if premium fires" {
		t.Errorf("route-1 shows %q", got)
	}
	if !byID["route-default"].Has("kind-default") {
		t.Errorf("route-default's class %q", byID["route-default"].Class)
	}

	// Without a table: an empty graph.
	plain := newFlowServer(t)
	if res := plain.do("GET", "/v1/routing/graph", nil); res.Status != http.StatusOK || len(res.JSON(t)["nodes"].([]any)) != 0 {
		t.Errorf("no table: %d %s", res.Status, res.Body)
	}
}
