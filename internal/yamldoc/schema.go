package yamldoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// Schema is a compiled JSON Schema (draft 2020-12 unless the schema says
// otherwise) plus its source, which Validate reads to turn a failure into a
// message a person can act on.
//
// Two non-standard keywords are honoured, the ones editors using
// vscode-json-languageservice (and so yaml-language-server) show as well:
// "errorMessage" on a schema object replaces the message of any failure of a
// keyword of that object, and "patternErrorMessage" does so for "pattern".
type Schema struct {
	url    string
	schema *jsonschema.Schema
	source any
}

// CompileSchema compiles the JSON Schema in data, known under url (its $id,
// if it has one).
func CompileSchema(url string, data []byte) (*Schema, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var source any
	if err := dec.Decode(&source); err != nil {
		return nil, fmt.Errorf("decode schema %s: %w", url, err)
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	if err := c.AddResource(url, bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("add schema %s: %w", url, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("compile schema %s: %w", url, err)
	}
	return &Schema{url: url, schema: s, source: source}, nil
}

// Validate checks the document against the schema. It returns every failure,
// each mapped back to the file, line and column of the field, sorted.
func (s *Schema) Validate(d *Doc) Errors {
	v := d.Value
	if v == nil {
		// An empty file is an empty mapping, not a null document.
		v = map[string]any{}
	}
	err := s.schema.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return Errors{{File: d.File, Line: 1, Message: err.Error()}}
	}
	var out Errors
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		out = append(out, s.explain(d, e)...)
	}
	walk(ve)
	return out.Sort()
}

// explain turns one leaf failure into positioned problems.
func (s *Schema) explain(d *Doc, e *jsonschema.ValidationError) Errors {
	ptr := fromURLPointer(e.InstanceLocation)
	frag := e.AbsoluteKeywordLocation
	if i := strings.IndexByte(frag, '#'); i >= 0 {
		frag = frag[i+1:]
	} else {
		frag = ""
	}
	toks := splitPointer(frag)
	keyword := ""
	if len(toks) > 0 {
		keyword = toks[len(toks)-1]
	}
	target, _ := Lookup(s.source, frag)
	owner, ownerOK := s.owner(toks)

	// A field the schema does not know: one problem per field, at its key.
	if b, ok := target.(bool); ok && !b && keyword == "additionalProperties" && ownerOK {
		obj, _ := Lookup(d.Value, ptr)
		fields, _ := obj.(map[string]any)
		known := propertyNames(owner)
		var out Errors
		for name := range fields {
			if !slices.Contains(known, name) {
				p := ptr + "/" + EscapePointer(name)
				msg := fmt.Sprintf("unknown field %q", name)
				if len(known) > 0 {
					msg += "; allowed here: " + strings.Join(known, ", ")
				}
				out = append(out, d.Errorf(p, "%s", msg))
			}
		}
		if len(out) > 0 {
			return out
		}
	}

	msg := e.Message
	if m := hint(owner, keyword); ownerOK && m != "" {
		msg = m
	} else {
		switch {
		case keyword == "required" && ownerOK:
			if m := missingMessage(owner, d, ptr); m != "" {
				msg = m
			}
		case isFalse(target) && len(toks) >= 2 && toks[len(toks)-2] == "properties":
			msg = "field not allowed here"
		}
	}
	if strings.Contains(e.KeywordLocation, "/propertyNames") {
		msg = "invalid name: " + msg
	}
	return Errors{d.Errorf(ptr, "%s", msg)}
}

// owner finds the schema object that holds the keyword at toks: the parent of
// a keyword's value, skipping maps of named subschemas such as "properties".
func (s *Schema) owner(toks []string) (map[string]any, bool) {
	if len(toks) == 0 {
		m, ok := s.source.(map[string]any)
		return m, ok
	}
	n := len(toks) - 1 // toks[:n] is the parent of the failing keyword
	if n >= 1 && isNamedMap(toks[n-1]) {
		n-- // the failing "keyword" is a boolean subschema named in a map
	}
	v, ok := Lookup(s.source, joinPointer(toks[:n]))
	if !ok {
		return nil, false
	}
	m, ok := v.(map[string]any)
	return m, ok
}

func isNamedMap(tok string) bool {
	switch tok {
	case "properties", "$defs", "definitions", "patternProperties", "dependentSchemas":
		return true
	}
	return false
}

func hint(owner map[string]any, keyword string) string {
	if keyword == "pattern" {
		if m, ok := owner["patternErrorMessage"].(string); ok {
			return m
		}
	}
	m, _ := owner["errorMessage"].(string)
	return m
}

func propertyNames(schema map[string]any) []string {
	props, _ := schema["properties"].(map[string]any)
	names := make([]string, 0, len(props))
	for name := range props {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func missingMessage(owner map[string]any, d *Doc, ptr string) string {
	req, _ := owner["required"].([]any)
	obj, _ := Lookup(d.Value, ptr)
	fields, _ := obj.(map[string]any)
	var missing []string
	for _, r := range req {
		name, _ := r.(string)
		if _, ok := fields[name]; !ok {
			missing = append(missing, fmt.Sprintf("%q", name))
		}
	}
	switch len(missing) {
	case 0:
		return ""
	case 1:
		return "missing field " + missing[0]
	default:
		return "missing fields " + strings.Join(missing, ", ")
	}
}

func isFalse(v any) bool {
	b, ok := v.(bool)
	return ok && !b
}

func splitPointer(ptr string) []string {
	if ptr == "" || ptr[0] != '/' {
		return nil
	}
	toks := strings.Split(ptr[1:], "/")
	for i, t := range toks {
		if u, err := url.PathUnescape(t); err == nil {
			t = u
		}
		toks[i] = unescapePointer(t)
	}
	return toks
}

// fromURLPointer turns a JSON pointer whose tokens jsonschema has also
// percent-encoded (as in a URI fragment) back into a plain JSON pointer.
func fromURLPointer(ptr string) string {
	if !strings.Contains(ptr, "%") {
		return ptr
	}
	return joinPointer(splitPointer(ptr))
}

func joinPointer(toks []string) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteByte('/')
		b.WriteString(EscapePointer(t))
	}
	return b.String()
}
