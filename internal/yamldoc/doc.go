// Package yamldoc turns YAML files written by people into JSON values that
// remember where every value came from, checks them against a JSON Schema,
// and reports every problem as file:line:column plus the JSON pointer of the
// field.
//
// The JSON values are the ones encoding/json produces with UseNumber: nil,
// bool, string, json.Number, []any and map[string]any. YAML features that
// have no JSON meaning are refused with a positioned error instead of being
// guessed at: numbers that are not JSON number literals (0123, 0x1F, 1_000,
// .inf), merge keys (<<), non-scalar or duplicate mapping keys, custom tags,
// more than one document per file. Anchors and aliases are expanded, within
// a budget so that a small file cannot expand into a huge value.
//
// Errors are reported, never logged; package yamldoc knows nothing about
// callctx's own file formats.
package yamldoc
