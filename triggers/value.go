package triggers

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// opts are the comparison options of a condition.
type opts uint8

const (
	optFold opts = 1 << iota // ignore_case
	optTrim                  // trim
)

type vkind uint8

const (
	vNull vkind = iota
	vBool
	vNumber
	vString
	vArray
	vObject
	vOther // a Go type that decoded JSON does not produce
)

// num is a number seen either as an exact decimal literal (JSON numbers kept
// as json.Number, numeric strings, numbers written in trigger files) or as a
// float64 (numbers decoded without UseNumber, Go integers).
type num struct {
	dec   decimal
	src   string // the literal, when isDec
	isDec bool
	f     float64 // when !isDec
}

func (n num) float() float64 {
	if !n.isDec {
		return n.f
	}
	f, _ := strconv.ParseFloat(n.src, 64) // ±Inf on overflow is the right order
	return f
}

func cmpNum(a, b num) int {
	if a.isDec && b.isDec {
		return cmpDecimal(a.dec, b.dec)
	}
	x, y := a.float(), b.float()
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// view is a value classified once for comparison: what it is, and what it
// also counts as under the typing rules (a numeric string is a number, the
// strings "true" and "false" are booleans when compared with a boolean).
// Building a view never allocates.
type view struct {
	v      any
	kind   vkind
	s      string // the (trimmed) string, or a json.Number's literal
	n      num
	isNum  bool
	b      bool
	isBool bool
}

func viewOf(v any, o opts) view {
	x := view{v: v}
	switch t := v.(type) {
	case nil:
		x.kind = vNull
	case bool:
		x.kind, x.b, x.isBool = vBool, t, true
	case string:
		x.kind = vString
		if o&optTrim != 0 {
			t = strings.TrimSpace(t)
		}
		x.s = t
		if d, ok := parseDecimal(t); ok {
			x.n, x.isNum = num{dec: d, src: t, isDec: true}, true
		} else if b, ok := boolText(t, o); ok {
			x.b, x.isBool = b, true
		}
	case json.Number:
		x.kind, x.s = vNumber, string(t)
		if d, ok := parseDecimal(string(t)); ok {
			x.n, x.isNum = num{dec: d, src: string(t), isDec: true}, true
		}
	case float64:
		x.kind, x.n, x.isNum = vNumber, num{f: t}, true
	case float32:
		x.kind, x.n, x.isNum = vNumber, num{f: float64(t)}, true
	case int:
		x.kind, x.n, x.isNum = vNumber, num{f: float64(t)}, true
	case int64:
		x.kind, x.n, x.isNum = vNumber, num{f: float64(t)}, true
	case int32:
		x.kind, x.n, x.isNum = vNumber, num{f: float64(t)}, true
	case uint64:
		x.kind, x.n, x.isNum = vNumber, num{f: float64(t)}, true
	case []any:
		x.kind = vArray
	case map[string]any:
		x.kind = vObject
	default:
		x.kind = vOther
	}
	return x
}

func boolText(s string, o opts) (bool, bool) {
	if o&optFold != 0 {
		switch {
		case strings.EqualFold(s, "true"):
			return true, true
		case strings.EqualFold(s, "false"):
			return false, true
		}
		return false, false
	}
	switch s {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// text returns the text a string or a number compares as in text operations:
// the string itself, or the number as JSON writes it. Booleans, null, arrays
// and objects have none.
func (x view) text() (string, bool) {
	switch x.kind {
	case vString:
		return x.s, true
	case vNumber:
		if x.n.isDec || !x.isNum {
			return x.s, true
		}
		return formatFloat(x.n.f), true
	}
	return "", false
}

// formatFloat writes f the way encoding/json does.
func formatFloat(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	var buf [32]byte
	b := strconv.AppendFloat(buf[:0], f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return string(b)
}

func (x view) empty() bool {
	switch t := x.v.(type) {
	case nil:
		return true
	case []any:
		return len(t) == 0
	case map[string]any:
		return len(t) == 0
	}
	return x.kind == vString && x.s == ""
}

// equal implements eq: numbers and numeric strings by value, booleans with
// booleans or the strings "true"/"false", strings as text, null with null,
// arrays element by element and objects key by key with these same rules.
func equal(a, b view, o opts) bool {
	if a.isNum && b.isNum {
		return cmpNum(a.n, b.n) == 0
	}
	if a.isBool && b.isBool && (a.kind == vBool || b.kind == vBool) {
		return a.b == b.b
	}
	switch {
	case a.kind == vString && b.kind == vString:
		return textEqual(a.s, b.s, o)
	case a.kind == vNull && b.kind == vNull:
		return true
	case a.kind == vArray && b.kind == vArray:
		x, y := a.v.([]any), b.v.([]any)
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(viewOf(x[i], o), viewOf(y[i], o), o) {
				return false
			}
		}
		return true
	case a.kind == vObject && b.kind == vObject:
		x, y := a.v.(map[string]any), b.v.(map[string]any)
		if len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equal(viewOf(xv, o), viewOf(yv, o), o) {
				return false
			}
		}
		return true
	}
	return false
}

// order compares for gt/ge/lt/le: by value when both sides are numbers or
// numeric strings, else by text when both are strings or numbers. Anything
// else is not ordered.
func order(a, b view, o opts) (int, bool) {
	if a.isNum && b.isNum {
		return cmpNum(a.n, b.n), true
	}
	at, ok1 := a.text()
	bt, ok2 := b.text()
	if !ok1 || !ok2 {
		return 0, false
	}
	if o&optFold != 0 {
		return compareFold(at, bt), true
	}
	return strings.Compare(at, bt), true
}

func textEqual(a, b string, o opts) bool {
	if o&optFold != 0 {
		return strings.EqualFold(a, b)
	}
	return a == b
}

func hasPrefix(s, prefix string, o opts) bool {
	if o&optFold == 0 {
		return strings.HasPrefix(s, prefix)
	}
	_, ok := trimPrefixFold(s, prefix)
	return ok
}

func hasSuffix(s, suffix string, o opts) bool {
	if o&optFold == 0 {
		return strings.HasSuffix(s, suffix)
	}
	for suffix != "" {
		if s == "" {
			return false
		}
		r1, n1 := utf8.DecodeLastRuneInString(s)
		r2, n2 := utf8.DecodeLastRuneInString(suffix)
		if !equalFoldRune(r1, r2) {
			return false
		}
		s, suffix = s[:len(s)-n1], suffix[:len(suffix)-n2]
	}
	return true
}

func containsText(s, sub string, o opts) bool {
	if o&optFold == 0 {
		return strings.Contains(s, sub)
	}
	for {
		if _, ok := trimPrefixFold(s, sub); ok {
			return true
		}
		if s == "" {
			return false
		}
		_, n := utf8.DecodeRuneInString(s)
		s = s[n:]
	}
}

// trimPrefixFold reports whether s starts with prefix under simple Unicode
// case folding, and what follows it.
func trimPrefixFold(s, prefix string) (string, bool) {
	for prefix != "" {
		if s == "" {
			return s, false
		}
		r1, n1 := utf8.DecodeRuneInString(s)
		r2, n2 := utf8.DecodeRuneInString(prefix)
		if !equalFoldRune(r1, r2) {
			return s, false
		}
		s, prefix = s[n1:], prefix[n2:]
	}
	return s, true
}

// equalFoldRune is the rune test of strings.EqualFold.
func equalFoldRune(a, b rune) bool {
	if a == b {
		return true
	}
	if a < utf8.RuneSelf && b < utf8.RuneSelf {
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		return a == b
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

// compareFold orders two strings by their lower-case runes.
func compareFold(a, b string) int {
	for a != "" && b != "" {
		r1, n1 := utf8.DecodeRuneInString(a)
		r2, n2 := utf8.DecodeRuneInString(b)
		if r1 != r2 {
			l1, l2 := unicode.ToLower(r1), unicode.ToLower(r2)
			if l1 != l2 {
				if l1 < l2 {
					return -1
				}
				return 1
			}
		}
		a, b = a[n1:], b[n2:]
	}
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	}
	return 1
}
