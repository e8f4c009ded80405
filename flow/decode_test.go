package flow_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/callctx/callctx/flow"
)

// TestDecodeVars: the variables triggers see decode as encoding/json with
// UseNumber decodes them, whichever path a value takes.
func TestDecodeVars(t *testing.T) {
	raw := map[string]json.RawMessage{}
	for i, v := range []string{
		`true`, `false`, `null`, `0`, `-1.5e3`, `12345678901234567890`, `"plain"`, `""`, `"esc\"aped"`,
		`"\u00e9t\u00e9"`, `"été"`, `"tab\tin"`, `[1,"a",{"b":null}]`, `{"k":[true,2]}`, `"<&>"`,
	} {
		raw[string(rune('a'+i))] = json.RawMessage(v)
	}
	got := flow.DecodeVars(raw)
	for name, v := range raw {
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		var want any
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got[name], want) {
			t.Errorf("%s: %#v, want %#v", v, got[name], want)
		}
	}
}
