package api_test

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/callctx/callctx"
	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"
)

// TestSpec_ExamplesMatchSchemas validates every example in openapi.yaml
// (request bodies and responses) against the schema it illustrates, so that
// the documentation cannot drift from the contract.
func TestSpec_ExamplesMatchSchemas(t *testing.T) {
	var root map[string]any
	if err := yaml.Unmarshal(callctx.OpenAPI, &root); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	const url = "mem://openapi.json"
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	if err := c.AddResource(url, bytes.NewReader(js)); err != nil {
		t.Fatal(err)
	}
	resolve := func(v any) (any, string) {
		m, _ := v.(map[string]any)
		ref, ok := m["$ref"].(string)
		if !ok {
			return v, ""
		}
		cur := any(doc)
		for _, tok := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = cur.(map[string]any)[strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")]
		}
		return cur, ref
	}
	checked := 0
	// check validates the examples of one media type object at ptr.
	check := func(where, ptr string, media map[string]any) {
		examples, _ := media["examples"].(map[string]any)
		if len(examples) == 0 {
			return
		}
		schema, err := c.Compile(url + "#" + ptr + "/schema")
		if err != nil {
			t.Errorf("%s: compile schema: %v", where, err)
			return
		}
		names := make([]string, 0, len(examples))
		for n := range examples {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			ex, _ := resolve(examples[name])
			value := ex.(map[string]any)["value"]
			if err := schema.Validate(value); err != nil {
				t.Errorf("%s: example %q does not match its schema: %v", where, name, err)
			}
			checked++
		}
	}
	esc := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1") }
	paths := doc["paths"].(map[string]any)
	for path, item := range paths {
		for method, op := range item.(map[string]any) {
			opm, ok := op.(map[string]any)
			if !ok || method == "parameters" {
				continue
			}
			base := "/paths/" + esc(path) + "/" + method
			if rb, ok := opm["requestBody"].(map[string]any); ok {
				for mt, media := range rb["content"].(map[string]any) {
					check(strings.ToUpper(method)+" "+path+" request "+mt, base+"/requestBody/content/"+esc(mt), media.(map[string]any))
				}
			}
			for code, res := range opm["responses"].(map[string]any) {
				resolved, ref := resolve(res)
				rptr := base + "/responses/" + code
				if ref != "" {
					rptr = strings.TrimPrefix(ref, "#")
				}
				content, _ := resolved.(map[string]any)["content"].(map[string]any)
				for mt, media := range content {
					check(strings.ToUpper(method)+" "+path+" "+code+" "+mt, rptr+"/content/"+esc(mt), media.(map[string]any))
				}
			}
		}
	}
	if checked < 30 {
		t.Fatalf("only %d examples checked", checked)
	}
	t.Logf("%d examples match their schemas", checked)
}
