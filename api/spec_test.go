package api_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/callctx/callctx"
	"github.com/callctx/callctx/api"
	"gopkg.in/yaml.v3"
)

// TestSpec_MatchesRouter fails when a route exists in the router but not in
// openapi.yaml, or the other way round.
func TestSpec_MatchesRouter(t *testing.T) {
	h, _ := newTestServer(t, nil)
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(callctx.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var inSpec []string
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
				inSpec = append(inSpec, strings.ToUpper(method)+" "+path)
			}
		}
	}
	var inRouter []string
	for _, r := range h.Routes() {
		inRouter = append(inRouter, r.Method+" "+r.Path)
	}
	sort.Strings(inSpec)
	sort.Strings(inRouter)
	if strings.Join(inSpec, "\n") != strings.Join(inRouter, "\n") {
		t.Fatalf("router and openapi.yaml differ\nspec:\n%s\n\nrouter:\n%s", strings.Join(inSpec, "\n"), strings.Join(inRouter, "\n"))
	}
	if len(inRouter) < 10 {
		t.Fatalf("only %d routes", len(inRouter))
	}
}

// TestNewHandler_SpecDrift: the handler refuses to start when the spec and
// the router disagree, in either direction.
func TestNewHandler_SpecDrift(t *testing.T) {
	_, s := newTestServer(t, nil)
	extra := strings.Replace(string(callctx.OpenAPI), "\npaths:\n", `
paths:
  /v1/ghost:
    get:
      operationId: ghost
      summary: A route the server does not have
      x-callctx-scope: sessions:read
      responses:
        '200': {description: never}
`, 1)
	_, err := api.NewHandler(api.Config{Service: s.Service, Spec: []byte(extra)})
	if err == nil || !strings.Contains(err.Error(), "GET /v1/ghost") {
		t.Fatalf("extra route in the spec: err = %v", err)
	}
	var doc map[string]any
	yaml.Unmarshal(callctx.OpenAPI, &doc)
	delete(doc["paths"].(map[string]any), "/healthz")
	missing, _ := yaml.Marshal(doc)
	_, err = api.NewHandler(api.Config{Service: s.Service, Spec: missing})
	if err == nil || !strings.Contains(err.Error(), "GET /healthz is not in openapi.yaml") {
		t.Fatalf("route missing from the spec: err = %v", err)
	}
	noScope := strings.Replace(string(callctx.OpenAPI), "      x-callctx-scope: calls:write\n", "", 1)
	if _, err := api.NewHandler(api.Config{Service: s.Service, Spec: []byte(noScope)}); err == nil || !strings.Contains(err.Error(), "x-callctx-scope") {
		t.Fatalf("an operation without a scope: err = %v", err)
	}
}

// TestSpec_EveryRouteMay429: every route answers 429 to a client over its
// limits (ClientLimits), so every operation declares it.
func TestSpec_EveryRouteMay429(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(callctx.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	for path, item := range doc.Paths {
		for method, op := range item {
			switch method {
			case "get", "put", "post", "delete", "patch":
				n++
				responses, _ := op.(map[string]any)["responses"].(map[string]any)
				if _, ok := responses["429"]; !ok {
					t.Errorf("%s %s does not declare 429", strings.ToUpper(method), path)
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d operations", n)
	}
}
