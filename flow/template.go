package flow

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/callctx/callctx/triggers"
)

// Template is text with placeholders such as {call.id} or {ivr.track_id},
// filled from a session's variables. A placeholder is a variable name of the
// call, sip, ivr or app namespace in braces; {{ and }} stand for literal
// braces; any other brace is literal text, so JSON-looking text passes
// through unchanged.
type Template struct {
	src   string
	parts []part
}

type part struct {
	lit  string
	name string // a placeholder when not ""
}

// ParseTemplate parses s. It never fails: text that is not a placeholder is
// literal.
func ParseTemplate(s string) Template {
	t := Template{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "{{"):
			lit.WriteByte('{')
			i += 2
		case strings.HasPrefix(s[i:], "}}"):
			lit.WriteByte('}')
			i += 2
		case s[i] == '{':
			if end := strings.IndexByte(s[i+1:], '}'); end >= 0 && isPlaceholder(s[i+1:i+1+end]) {
				flush()
				t.parts = append(t.parts, part{name: s[i+1 : i+1+end]})
				i += end + 2
				continue
			}
			lit.WriteByte('{')
			i++
		default:
			lit.WriteByte(s[i])
			i++
		}
	}
	flush()
	return t
}

// isPlaceholder reports whether name is a variable name of a known
// namespace: dot-separated segments of letters, digits, '_' and '-'.
func isPlaceholder(name string) bool {
	ns, rest, ok := strings.Cut(name, ".")
	if !ok {
		return false
	}
	switch ns {
	case "call", "sip", "ivr", "app":
	default:
		return false
	}
	return validSegments(rest)
}

func validSegments(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	seg := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if seg == 0 {
				return false
			}
			seg = 0
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
		seg++
	}
	return seg > 0
}

// String returns the template as written.
func (t Template) String() string { return t.src }

// Vars returns the variables the template uses, in order of appearance.
func (t Template) Vars() []string {
	var out []string
	for _, p := range t.parts {
		if p.name != "" {
			out = append(out, p.name)
		}
	}
	return out
}

// Suspicious returns the brace-enclosed words that look like placeholders
// but are not, such as {iv.email} or {email}, so that check can warn about
// them.
func (t Template) Suspicious() []string {
	var out []string
	s := t.src
	for i := 0; i < len(s); i++ {
		if s[i] != '{' || strings.HasPrefix(s[i:], "{{") {
			if strings.HasPrefix(s[i:], "{{") {
				i++
			}
			continue
		}
		end := strings.IndexByte(s[i+1:], '}')
		if end <= 0 {
			continue
		}
		word := s[i+1 : i+1+end]
		if !isPlaceholder(word) && looksLikeName(word) {
			out = append(out, "{"+word+"}")
		}
	}
	return out
}

func looksLikeName(w string) bool {
	if w == "" || len(w) > 128 {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Render fills the placeholders with the text of the variables' values
// (see Text); a variable that is not set renders as nothing.
func (t Template) Render(vars triggers.Vars) string {
	return t.render(vars, nil)
}

func (t Template) render(vars triggers.Vars, escape func(string) string) string {
	if len(t.parts) == 1 && t.parts[0].name == "" {
		return t.parts[0].lit
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.name == "" {
			b.WriteString(p.lit)
			continue
		}
		v, _ := vars.Lookup(p.name)
		s := Text(v)
		if escape != nil {
			s = escape(s)
		}
		b.WriteString(s)
	}
	return b.String()
}

// single returns the placeholder's name when the template is exactly one
// placeholder.
func (t Template) single() (string, bool) {
	if len(t.parts) == 1 && t.parts[0].name != "" {
		return t.parts[0].name, true
	}
	return "", false
}

// Text is the text of a variable's value in a template: a string as it is,
// a number and a boolean as JSON writes them, an array or object as compact
// JSON, null or a missing variable as nothing.
func Text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return string(x)
	case float64:
		b, _ := json.Marshal(x)
		return string(b)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// urlTemplate is an http(s) URL with placeholders in its path, query or
// fragment. Values are escaped for the part they land in, so that a value
// can never add a path segment, a query parameter or change the host.
type urlTemplate struct {
	path, query, fragment Template
	hasQuery, hasFragment bool
}

// parseURLTemplate checks that the URL is http or https with a literal host
// and splits it into parts.
func parseURLTemplate(s string) (urlTemplate, error) {
	var u urlTemplate
	rest := s
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		u.fragment, u.hasFragment = ParseTemplate(rest[i+1:]), true
		rest = rest[:i]
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		u.query, u.hasQuery = ParseTemplate(rest[i+1:]), true
		rest = rest[:i]
	}
	u.path = ParseTemplate(rest)
	scheme, afterScheme, ok := strings.Cut(rest, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return u, fmt.Errorf("the URL must start with http:// or https://")
	}
	host := afterScheme
	if i := strings.IndexByte(afterScheme, '/'); i >= 0 {
		host = afterScheme[:i]
	}
	if host == "" || strings.ContainsAny(host, "{}") {
		return u, fmt.Errorf("the URL's host must be written out; placeholders may only follow it")
	}
	probe := u.render(triggers.Map{})
	if _, err := url.Parse(probe); err != nil {
		return u, fmt.Errorf("the URL is not valid: %v", errText(err))
	}
	return u, nil
}

func (u urlTemplate) render(vars triggers.Vars) string {
	var b strings.Builder
	b.WriteString(u.path.render(vars, url.PathEscape))
	if u.hasQuery {
		b.WriteByte('?')
		b.WriteString(u.query.render(vars, url.QueryEscape))
	}
	if u.hasFragment {
		b.WriteByte('#')
		b.WriteString(u.fragment.render(vars, url.PathEscape))
	}
	return b.String()
}

// bodyTemplate is a JSON value whose strings are templates. A string that
// is exactly one placeholder becomes the variable's JSON value (null when it
// is not set), so {ivr.premium} stays a boolean; other strings are text.
type bodyTemplate struct {
	kind  byte // 'o' object, 'a' array, 's' string template, 'v' literal value
	keys  []string
	items []*bodyTemplate
	tmpl  Template
	value any
}

func parseBody(v any) *bodyTemplate {
	switch x := v.(type) {
	case map[string]any:
		b := &bodyTemplate{kind: 'o'}
		for k := range x {
			b.keys = append(b.keys, k)
		}
		// sorted, as encoding/json writes maps
		slices.Sort(b.keys)
		for _, k := range b.keys {
			b.items = append(b.items, parseBody(x[k]))
		}
		return b
	case []any:
		b := &bodyTemplate{kind: 'a'}
		for _, item := range x {
			b.items = append(b.items, parseBody(item))
		}
		return b
	case string:
		return &bodyTemplate{kind: 's', tmpl: ParseTemplate(x)}
	}
	return &bodyTemplate{kind: 'v', value: v}
}

func (b *bodyTemplate) fill(vars triggers.Vars) any {
	switch b.kind {
	case 'o':
		m := make(map[string]any, len(b.keys))
		for i, k := range b.keys {
			m[k] = b.items[i].fill(vars)
		}
		return m
	case 'a':
		a := make([]any, len(b.items))
		for i, item := range b.items {
			a[i] = item.fill(vars)
		}
		return a
	case 's':
		if name, ok := b.tmpl.single(); ok {
			v, _ := vars.Lookup(name)
			return v
		}
		return b.tmpl.Render(vars)
	}
	return b.value
}

// render returns the body as JSON.
func (b *bodyTemplate) render(vars triggers.Vars) ([]byte, error) {
	return json.Marshal(b.fill(vars))
}

func (b *bodyTemplate) templates(visit func(Template)) {
	if b.kind == 's' {
		visit(b.tmpl)
	}
	for _, item := range b.items {
		item.templates(visit)
	}
}
