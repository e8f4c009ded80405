package api_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/callctx/callctx"
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
