package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"
)

// specURL names the OpenAPI document inside the schema compiler.
const specURL = "mem://callctx/openapi.json"

// operation is what the API needs to know about one operation of the spec.
type operation struct {
	Method string // GET, POST, …
	Path   string // OpenAPI form: /v1/sessions/{callId}
	ID     string // operationId
	Scope  Scope  // "" for a public operation
	Body   *requestBody
}

// requestBody is an operation's request body: whether it is required and a
// compiled schema per accepted media type.
type requestBody struct {
	Required bool
	Media    map[string]*bodySchema
}

// bodySchema is the compiled schema of one media type of a request body.
type bodySchema struct {
	*jsonschema.Schema
	// anyObject: the schema accepts every JSON object and nothing else
	// (type: object and annotations only, as SessionWrite): checking that
	// the body is well-formed JSON and an object is the whole validation,
	// without decoding it (the write path's hottest check).
	anyObject bool
}

// MediaTypes returns the accepted media types, sorted.
func (b *requestBody) MediaTypes() []string {
	mts := make([]string, 0, len(b.Media))
	for mt := range b.Media {
		mts = append(mts, mt)
	}
	sort.Strings(mts)
	return mts
}

// spec is the parsed OpenAPI document.
type spec struct {
	ops map[string]*operation // by "METHOD path"
}

var httpMethods = []string{"get", "put", "post", "delete", "patch", "head", "options"}

// parseSpec reads the OpenAPI document, compiles every request body schema
// and reads each operation's scope from its x-callctx-scope extension.
func parseSpec(doc []byte) (*spec, error) {
	var root map[string]any
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return nil, fmt.Errorf("parse openapi.yaml: %w", err)
	}
	js, err := json.Marshal(root)
	if err != nil {
		return nil, fmt.Errorf("convert openapi.yaml to JSON: %w", err)
	}
	compiler := jsonschema.NewCompiler()
	compiler.Draft = jsonschema.Draft2020
	if err := compiler.AddResource(specURL, bytes.NewReader(js)); err != nil {
		return nil, fmt.Errorf("load openapi.yaml schemas: %w", err)
	}
	paths, _ := root["paths"].(map[string]any)
	if len(paths) == 0 {
		return nil, errors.New("openapi.yaml has no paths")
	}
	sp := &spec{ops: make(map[string]*operation)}
	for path, item := range paths {
		item, _ := item.(map[string]any)
		for _, m := range httpMethods {
			raw, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			op := &operation{Method: strings.ToUpper(m), Path: path}
			op.ID, _ = raw["operationId"].(string)
			if !isPublic(raw) {
				scope, _ := raw["x-callctx-scope"].(string)
				if !Scope(scope).Valid() {
					return nil, fmt.Errorf("openapi.yaml: %s %s: x-callctx-scope %q is not a known scope", op.Method, path, scope)
				}
				op.Scope = Scope(scope)
			}
			if rb, ok := raw["requestBody"].(map[string]any); ok {
				body, err := compileBody(compiler, root, rb, pointerTo("paths", path, m, "requestBody"))
				if err != nil {
					return nil, fmt.Errorf("openapi.yaml: %s %s: %w", op.Method, path, err)
				}
				op.Body = body
			}
			sp.ops[op.Method+" "+path] = op
		}
	}
	return sp, nil
}

// isPublic reports whether an operation opts out of security with
// `security: []`.
func isPublic(op map[string]any) bool {
	sec, ok := op["security"].([]any)
	return ok && len(sec) == 0
}

func compileBody(c *jsonschema.Compiler, root, rb map[string]any, ptr string) (*requestBody, error) {
	body := &requestBody{Media: make(map[string]*bodySchema)}
	body.Required, _ = rb["required"].(bool)
	content, _ := rb["content"].(map[string]any)
	for mt, media := range content {
		raw, ok := media.(map[string]any)["schema"]
		if !ok {
			return nil, fmt.Errorf("request body %s has no schema", mt)
		}
		s, err := c.Compile(specURL + "#" + ptr + "/content/" + escapePointer(mt) + "/schema")
		if err != nil {
			return nil, fmt.Errorf("compile request body schema for %s: %w", mt, err)
		}
		body.Media[mt] = &bodySchema{Schema: s, anyObject: anyObject(root, raw)}
	}
	if len(body.Media) == 0 {
		return nil, errors.New("request body has no content")
	}
	return body, nil
}

// anyObject reports whether the raw schema s, following local $refs,
// says type: object and nothing else that constrains a value.
func anyObject(root map[string]any, s any) bool {
	for range 8 { // a chain of $refs, bounded
		m, ok := s.(map[string]any)
		if !ok {
			return false
		}
		ref, isRef := m["$ref"].(string)
		if !isRef {
			break
		}
		if len(m) != 1 && !(len(m) == 2 && m["description"] != nil) {
			return false
		}
		s = resolveLocal(root, ref)
	}
	m, ok := s.(map[string]any)
	if !ok || m["type"] != "object" {
		return false
	}
	for k := range m {
		switch k {
		case "type", "description", "title", "examples", "example", "$comment":
		default:
			return false
		}
	}
	return true
}

// resolveLocal returns what a local reference ("#/components/…") points
// at in root, nil when nothing.
func resolveLocal(root map[string]any, ref string) any {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	var cur any = root
	for _, seg := range strings.Split(rest, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		seg = strings.NewReplacer("~1", "/", "~0", "~").Replace(seg)
		cur = m[seg]
	}
	return cur
}

// pointerTo builds a JSON pointer from unescaped segments.
func pointerTo(segs ...string) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(escapePointer(s))
	}
	return b.String()
}

// escapePointer escapes one JSON pointer segment (RFC 6901).
func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// ginPath turns an OpenAPI path into gin's syntax: {id} → :id.
var templateParam = regexp.MustCompile(`\{([^}]+)\}`)

func ginPath(openapiPath string) string {
	return templateParam.ReplaceAllString(openapiPath, ":$1")
}

var ginParam = regexp.MustCompile(`[:*]([^/]+)`)

// openapiPath turns a gin path into OpenAPI's syntax: :id → {id}.
func openapiPath(ginPath string) string {
	return ginParam.ReplaceAllString(ginPath, "{$1}")
}

// fieldErrors turns a schema validation error into one problem error per
// failing keyword, pointing into the request body.
func fieldErrors(err error) []problemError {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []problemError{{Pointer: "", Detail: err.Error()}}
	}
	var out []problemError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		out = append(out, leafErrors(e)...)
	}
	walk(ve)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Pointer < out[j].Pointer })
	return out
}

var quotedNames = regexp.MustCompile(`'([^']*)'`)

// leafErrors makes a leaf validation error point at the field it is about:
// a missing or unknown property points at the property itself.
func leafErrors(e *jsonschema.ValidationError) []problemError {
	kw := e.KeywordLocation[strings.LastIndexByte(e.KeywordLocation, '/')+1:]
	switch kw {
	case "required", "additionalProperties":
		detail := "is required"
		if kw == "additionalProperties" {
			detail = "is not a known field"
		}
		var out []problemError
		for _, m := range quotedNames.FindAllStringSubmatch(e.Message, -1) {
			out = append(out, problemError{Pointer: e.InstanceLocation + "/" + escapePointer(m[1]), Detail: detail})
		}
		if len(out) > 0 {
			return out
		}
	}
	return []problemError{{Pointer: e.InstanceLocation, Detail: e.Message}}
}
