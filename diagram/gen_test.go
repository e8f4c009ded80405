package diagram_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/callctx/callctx/flow"
	"gopkg.in/yaml.v3"
)

// genFlow writes a flows file with one flow of n nodes, chosen by seed, and
// returns it compiled. It is shaped as an IVR's flows are: a tree of menus
// (node i leads to nodes 2i+1 and 2i+2) where now and then a node goes back
// to one on its way from the start ("back to the main menu"); each node is
// of a random type, its prompt or text being text, so that whatever text
// holds ends up on the diagram.
func genFlow(tb testing.TB, seed uint64, n int, text string) *flow.Flow {
	tb.Helper()
	f, err := tryGenFlow(seed, n, text)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// tryGenFlow is genFlow, failing when the flows directory refuses text
// (YAML files are UTF-8 text: the loader has its own fuzz test).
func tryGenFlow(seed uint64, n int, text string) (*flow.Flow, error) {
	text = strings.ToValidUTF8(text, "?")
	if text == "" {
		text = "-" // prompts and texts are not empty
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	name := func(i int) string { return fmt.Sprintf("n%03d", i) }
	parent := func(i int) int { return (i - 1) / 2 }
	// target is the k-th way out of node i: its k-th child, or now and
	// then a way back.
	target := func(i, k int) string {
		if i > 0 && (k == 2 || rng.IntN(10) == 0) {
			up := parent(i) // back to a node on the way here
			for up > 0 && rng.IntN(2) == 0 {
				up = parent(up)
			}
			return name(up)
		}
		if child := 2*i + 1 + k; child < n {
			return name(child)
		}
		return ""
	}
	nodes := map[string]any{}
	for i := range n {
		next := target(i, 0)
		var node map[string]any
		switch k := rng.IntN(8); {
		case next == "":
			node = map[string]any{"type": "hangup", "reason": text}
		case k == 0:
			node = map[string]any{"type": "play", "prompt": text, "next": next}
		case k == 1:
			node = map[string]any{"type": "say", "text": text, "next": next}
		case k == 2:
			node = map[string]any{"type": "input", "var": "v", "prompt": text, "next": next, "on_timeout": target(i, 1), "on_failure": target(i, 2)}
		case k == 3:
			cases := []any{map[string]any{"trigger": "t1", "next": next}}
			if alt := target(i, 1); alt != "" {
				cases = append(cases, map[string]any{"trigger": "t2", "next": alt})
			}
			node = map[string]any{"type": "switch", "cases": cases, "default": target(i, 2)}
		case k == 4:
			node = map[string]any{"type": "wait", "until": "t1", "timeout": "2s", "next": next, "on_timeout": target(i, 1)}
		case k == 5:
			node = map[string]any{"type": "automation", "automations": []any{"a1"}, "next": next}
		case k == 6:
			node = map[string]any{"type": "transfer", "target": "sip:" + text + "@pbx.example.com", "on_failure": next}
		default:
			node = map[string]any{"type": "say", "text": text, "next": next, "on_failure": target(i, 1)}
		}
		for k, v := range node {
			if v == "" {
				delete(node, k)
			}
		}
		if node["type"] == "switch" && node["default"] == nil {
			node["default"] = name(n - 1)
		}
		nodes[name(i)] = node
	}
	doc := map[string]any{
		"triggers": map[string]any{
			"t1": map[string]any{"when": map[string]any{"var": "ivr.a", "op": "set"}},
			"t2": map[string]any{"when": map[string]any{"var": "ivr.b", "op": "eq", "value": text}},
		},
		"automations": map[string]any{"a1": map[string]any{"url": "https://crm.example.com/x", "on": []any{}}},
		"flows":       map[string]any{"gen": map[string]any{"description": text, "start": name(0), "nodes": nodes}},
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		return nil, err
	}
	d, err := flow.ParseFS(fstest.MapFS{"gen.yaml": {Data: data}})
	if err != nil {
		return nil, fmt.Errorf("generated flows do not parse: %w\n%s", err, data)
	}
	snap, _, err := flow.Compile(d, flow.CompileOptions{})
	if err != nil {
		return nil, fmt.Errorf("generated flows do not compile: %w\n%s", err, data)
	}
	f, _ := snap.Flow("gen")
	return f, nil
}
