package yamldoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Limits that keep a hostile or broken file from costing more than a file of
// that size should. They are far above anything a hand-written flow needs.
const (
	// MaxDepth is how deeply mappings and sequences may nest.
	MaxDepth = 100
	// MaxValues is how many values a document may hold, counting every
	// expansion of an alias.
	MaxValues = 200_000
)

// Pos is a place in a file, both 1-based.
type Pos struct {
	Line   int
	Column int
}

type place struct {
	key Pos // where the mapping key is written; zero for array elements and the root
	val Pos // where the value starts
}

// Doc is one YAML document decoded into a JSON value, with the position of
// every value in it.
type Doc struct {
	File  string // the name errors are reported under
	Value any    // nil, bool, string, json.Number, []any or map[string]any
	pos   map[string]place
}

// Parse decodes one YAML document. An empty file gives a Doc whose Value is
// nil. The error, if any, is an Errors list naming file and line.
func Parse(file string, data []byte) (*Doc, error) {
	d := &Doc{File: file, pos: map[string]place{"": {val: Pos{1, 1}}}}
	if e := checkText(file, data); e != nil {
		return nil, Errors{e}
	}
	root, err := decodeOne(file, data)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return d, nil
	}
	c := converter{doc: d, active: map[*yaml.Node]bool{}}
	d.pos[""] = place{val: nodePos(root)}
	d.Value = c.convert(root, "", 0)
	if err := c.errs.Err(); err != nil {
		return nil, err
	}
	return d, nil
}

// decodeOne parses the YAML stream and returns the root node of its only
// document, or nil for an empty stream.
func decodeOne(file string, data []byte) (root *yaml.Node, err error) {
	defer func() {
		// yaml.v3 is not known to panic on v3.0.1, but a parser of outside
		// input must never take the process down with it.
		if r := recover(); r != nil {
			root, err = nil, Errors{{File: file, Line: 1, Message: fmt.Sprintf("YAML parser failed: %v", r)}}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, Errors{yamlError(file, data, err)}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, Errors{yamlError(file, data, err)}
	default:
		return nil, Errors{{File: file, Line: next.Line, Column: next.Column,
			Message: "a file holds one YAML document; found a second one (---)"}}
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		return doc.Content[0], nil
	}
	return &doc, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserProblems are the problems yaml.v3 (v3.0.1) reports from its parser
// rather than its scanner. For these it prints the 0-based line of the mark
// (the scanner's are 1-based), so one is added. It leaves out the line when
// the mark is on the first line.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

func yamlError(file string, data []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if parserProblems[msg] {
			line++
		}
	}
	// At the end of the stream the parser counts one line more than the
	// file has.
	last := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		last++
	}
	line = max(1, min(line, last))
	return &Error{File: file, Line: line, Message: msg}
}

// checkText finds bytes YAML would refuse with an error that has no line
// (invalid UTF-8, control characters) and reports them with their position.
func checkText(file string, data []byte) *Error {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		bad := ""
		switch {
		case r == utf8.RuneError && size <= 1:
			bad = "invalid UTF-8 (files must be UTF-8 text)"
		case r == '\t' || r == '\n' || r == '\r' || r == 0x85:
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			bad = fmt.Sprintf("control character %U is not allowed", r)
		case r >= 0xd800 && r <= 0xdfff, r == 0xfffe, r == 0xffff:
			bad = fmt.Sprintf("character %U is not allowed", r)
		}
		if bad != "" {
			return &Error{File: file, Line: line, Column: col, Message: bad}
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return nil
}

type converter struct {
	doc    *Doc
	values int
	full   bool
	active map[*yaml.Node]bool // anchors being expanded, to refuse self-reference
	errs   Errors
}

func (c *converter) fail(n *yaml.Node, ptr, format string, args ...any) {
	c.errs = append(c.errs, &Error{File: c.doc.File, Line: n.Line, Column: n.Column, Pointer: ptr,
		Message: fmt.Sprintf(format, args...)})
}

func nodePos(n *yaml.Node) Pos { return Pos{n.Line, n.Column} }

// convert turns n into a JSON value and records the positions of everything
// below it; the caller records the position of n itself.
func (c *converter) convert(n *yaml.Node, ptr string, depth int) any {
	if c.full {
		return nil
	}
	c.values++
	if c.values > MaxValues {
		c.full = true
		c.fail(n, ptr, "document too large: more than %d values (counting alias expansions)", MaxValues)
		return nil
	}
	if depth > MaxDepth {
		c.fail(n, ptr, "nested deeper than %d levels", MaxDepth)
		return nil
	}
	switch n.Kind {
	case yaml.AliasNode:
		target := n.Alias
		if target == nil {
			c.fail(n, ptr, "unknown alias *%s", n.Value)
			return nil
		}
		if c.active[target] {
			c.fail(n, ptr, "alias *%s refers to a value that contains it", n.Value)
			return nil
		}
		c.active[target] = true
		v := c.convert(target, ptr, depth+1)
		delete(c.active, target)
		return v
	case yaml.ScalarNode:
		return c.scalar(n, ptr)
	case yaml.SequenceNode:
		if !plainTag(n, "!!seq") {
			c.fail(n, ptr, "unsupported tag %s", n.Tag)
			return nil
		}
		arr := make([]any, len(n.Content))
		for i, item := range n.Content {
			p := ptr + "/" + strconv.Itoa(i)
			c.doc.pos[p] = place{val: nodePos(item)}
			arr[i] = c.convert(item, p, depth+1)
		}
		return arr
	case yaml.MappingNode:
		if !plainTag(n, "!!map") {
			c.fail(n, ptr, "unsupported tag %s", n.Tag)
			return nil
		}
		obj := make(map[string]any, len(n.Content)/2)
		keyAt := make(map[string]Pos, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key, ok := c.key(k, ptr)
			if !ok {
				continue
			}
			p := ptr + "/" + EscapePointer(key)
			if first, dup := keyAt[key]; dup {
				c.fail(k, p, "key %q is already defined at line %d", key, first.Line)
				continue
			}
			keyAt[key] = nodePos(k)
			c.doc.pos[p] = place{key: nodePos(k), val: nodePos(v)}
			obj[key] = c.convert(v, p, depth+1)
		}
		return obj
	default:
		c.fail(n, ptr, "unexpected YAML node")
		return nil
	}
}

func plainTag(n *yaml.Node, want string) bool {
	return n.Tag == "" || n.Tag == "!" || n.ShortTag() == want
}

func (c *converter) key(k *yaml.Node, ptr string) (string, bool) {
	if k.Kind == yaml.AliasNode && k.Alias != nil {
		k = k.Alias
	}
	if k.Kind != yaml.ScalarNode {
		c.fail(k, ptr, "a mapping key must be a plain value, not a mapping or list")
		return "", false
	}
	if k.ShortTag() == "!!merge" {
		c.fail(k, ptr, "merge keys (<<) are not supported")
		return "", false
	}
	return k.Value, true
}

func (c *converter) scalar(n *yaml.Node, ptr string) any {
	switch tag := n.ShortTag(); tag {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			c.fail(n, ptr, "%q is not a boolean", n.Value)
			return nil
		}
		return b
	case "!!str", "!!timestamp":
		// Timestamps stay text: the JSON data model has no time type, and
		// trigger values such as 2025-12-24 are compared as written.
		return n.Value
	case "!!int", "!!float":
		if !IsJSONNumber(n.Value) {
			var v any
			if err := n.Decode(&v); err == nil {
				c.fail(n, ptr, "%s is not written as a JSON number (YAML reads it as %v); quote it if it is text", n.Value, v)
			} else {
				c.fail(n, ptr, "%s is not written as a JSON number; quote it if it is text", n.Value)
			}
			return nil
		}
		if _, err := strconv.ParseFloat(n.Value, 64); err != nil {
			c.fail(n, ptr, "number %s is out of range", n.Value)
			return nil
		}
		return json.Number(n.Value)
	case "!!merge":
		c.fail(n, ptr, "merge keys (<<) are not supported")
		return nil
	default:
		c.fail(n, ptr, "unsupported tag %s", n.Tag)
		return nil
	}
}

// IsJSONNumber reports whether s is a number literal in JSON's grammar
// (RFC 8259 §6): an optional minus, no leading zeros, no plus sign, no hex.
func IsJSONNumber(s string) bool {
	_, ok := ScanJSONNumber(s)
	return ok
}

// MaxJSONExponent bounds the exponent ScanJSONNumber reports, so that
// arithmetic on it cannot overflow; a number beyond it is effectively
// infinite.
const MaxJSONExponent = 1 << 30

// JSONNumber is a JSON number literal taken apart: its sign, the digits
// before and after the point (slices of the literal), and its exponent
// (its magnitude capped at MaxJSONExponent).
type JSONNumber struct {
	Neg               bool
	IntPart, FracPart string
	Exp               int
}

// ScanJSONNumber takes number literal s apart; ok is false when s is not a
// number in JSON's grammar (see IsJSONNumber). It does not allocate.
func ScanJSONNumber(s string) (n JSONNumber, ok bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		n.Neg = true
		i++
	}
	start := i
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return n, false
	}
	n.IntPart = s[start:i]
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == fs {
			return n, false
		}
		n.FracPart = s[fs:i]
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		neg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			neg = s[i] == '-'
			i++
		}
		es := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if n.Exp < MaxJSONExponent {
				n.Exp = n.Exp*10 + int(s[i]-'0')
			}
			i++
		}
		if i == es {
			return n, false
		}
		if neg {
			n.Exp = -n.Exp
		}
	}
	return n, i == len(s)
}

// EscapePointer escapes one JSON pointer reference token (RFC 6901).
func EscapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func unescapePointer(s string) string {
	if !strings.Contains(s, "~") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}

// Pos returns where the field at ptr is written: the key of a mapping member,
// the value of an array element or of the root. For a pointer the document
// does not hold, the position of its nearest ancestor that it does.
func (d *Doc) Pos(ptr string) Pos {
	p := d.place(ptr)
	if p.key.Line > 0 {
		return p.key
	}
	return p.val
}

// ValuePos returns where the value at ptr starts (for a mapping member, the
// value rather than its key).
func (d *Doc) ValuePos(ptr string) Pos {
	return d.place(ptr).val
}

func (d *Doc) place(ptr string) place {
	for {
		if p, ok := d.pos[ptr]; ok {
			return p
		}
		i := strings.LastIndexByte(ptr, '/')
		if i < 0 {
			return d.pos[""]
		}
		ptr = ptr[:i]
	}
}

// Get returns the value at ptr and whether it exists.
func (d *Doc) Get(ptr string) (any, bool) {
	return Lookup(d.Value, ptr)
}

// Lookup returns the value at the JSON pointer ptr inside v.
func Lookup(v any, ptr string) (any, bool) {
	if ptr == "" {
		return v, true
	}
	if ptr[0] != '/' {
		return nil, false
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = unescapePointer(tok)
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[tok]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) || strconv.Itoa(i) != tok {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// Errorf returns a problem at the field ptr of this document.
func (d *Doc) Errorf(ptr, format string, args ...any) *Error {
	p := d.Pos(ptr)
	return &Error{File: d.File, Line: p.Line, Column: p.Column, Pointer: ptr, Message: fmt.Sprintf(format, args...)}
}
