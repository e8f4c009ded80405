package sipcodec

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on the custom headers of one outgoing request (the figures AudioCodes Live Hub uses
// for transferSipHeaders).
const (
	// MaxCustomHeaders is the largest number of custom headers on one request.
	MaxCustomHeaders = 100
	// MaxCustomHeaderChars is the largest total length, in characters, of the names and values
	// of the custom headers on one request.
	MaxCustomHeaderChars = 12000
)

// Header is one SIP header as a name and a value, before it is given to sipgo.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// forbidden maps the lower-case name of every header that may never be set as a custom header
// to its canonical name. They carry the protocol itself (routing, dialog identity, framing) or
// are written by the bridge when it builds a transfer; letting a client set them would let it
// hijack or break the dialog. Compact forms (RFC 3261 §7.3.3, RFC 3515, RFC 3892, RFC 6665)
// are listed with their long names.
var forbidden = map[string]string{
	"from": "From", "f": "From",
	"to": "To", "t": "To",
	"call-id": "Call-ID", "i": "Call-ID",
	"cseq": "CSeq",
	"via":  "Via", "v": "Via",
	"route":        "Route",
	"record-route": "Record-Route",
	"contact":      "Contact", "m": "Contact",
	"max-forwards":   "Max-Forwards",
	"content-length": "Content-Length", "l": "Content-Length",
	"content-type": "Content-Type", "c": "Content-Type",
	// Written by the bridge itself for a transfer; a second copy would contradict it.
	"refer-to": "Refer-To", "r": "Refer-To",
	"referred-by": "Referred-By", "b": "Referred-By",
	"content-encoding": "Content-Encoding", "e": "Content-Encoding",
	"event": "Event", "o": "Event",
	"subscription-state": "Subscription-State",
	// Not a header but a URI header name with a meaning: in a Refer-To or Contact URI,
	// ?body=… sets the body of the request the URI produces (RFC 3261 §19.1.1).
	"body": "body",
}

// ForbiddenHeader reports whether name (any case, long or compact form) is a header that can
// never be set as a custom header, and returns its canonical name.
func ForbiddenHeader(name string) (canonical string, ok bool) {
	canonical, ok = forbidden[strings.ToLower(name)]
	return canonical, ok
}

// isTokenChar reports whether c may appear in an RFC 3261 token:
// alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~".
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-.!%*_+`'~", c) >= 0
}

// IsToken reports whether s is a non-empty RFC 3261 token.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

// CheckHeaderName returns an error unless name is an RFC 3261 token that is not a forbidden
// header.
func CheckHeaderName(name string) error {
	if name == "" {
		return fmt.Errorf("header name is empty")
	}
	if !IsToken(name) {
		return fmt.Errorf("header name %q is not an RFC 3261 token", name)
	}
	if c, ok := ForbiddenHeader(name); ok {
		return fmt.Errorf("header %s cannot be set as a custom header", c)
	}
	return nil
}

// CheckHeaderValue returns an error when value holds a control character (CR, LF, NUL, TAB,
// DEL, C1 controls, …) or is not valid UTF-8, either as given or after any number of rounds
// of percent-decoding (so that "%0D%0A", "%250D%250A" and "100% %0A" are refused too).
func CheckHeaderValue(value string) error {
	if err := CheckText(value); err != nil {
		return err
	}
	for s := value; strings.IndexByte(s, '%') >= 0; {
		d := lenientUnescape(s)
		if d == s {
			break
		}
		if err := CheckText(d); err != nil {
			return fmt.Errorf("after percent-decoding: %w", err)
		}
		s = d
	}
	return nil
}

// lenientUnescape decodes every valid %XX escape in s and leaves anything else as it is. It is
// more forgiving than url.PathUnescape on purpose: a receiver that decodes leniently must not
// find a control character that a strict decoder (which gives up at the first bad escape) missed.
func lenientUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// CheckText returns an error when s is not valid UTF-8 or holds a control character.
func CheckText(s string) error {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return fmt.Errorf("value is not valid UTF-8 at byte %d", i)
			}
		}
		if unicode.IsControl(r) {
			return fmt.Errorf("value holds control character %U at byte %d", r, i)
		}
	}
	return nil
}

// EscapeText returns s with each byte that is not part of a valid UTF-8
// sequence written as %XX (upper-case hex) and each '%' as %25, or s itself
// when it is valid UTF-8. It is the form in which the bridge keeps a header
// or User-to-User value that is not UTF-8 (Latin-1 from an older PBX, say):
// the call goes on, the session stays readable by every client, and
// url.PathUnescape gives back the bytes as they arrived.
func EscapeText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+len(s)/2)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1, s[i] == '%':
			b = append(b, '%', hex[s[i]>>4], hex[s[i]&0xf])
			i++
		default:
			b = append(b, s[i:i+size]...)
			i += size
		}
	}
	return string(b)
}

// HeaderError says why one custom header (or the list as a whole, Index -1) was refused.
type HeaderError struct {
	Index  int    // position in the list, -1 for a limit on the whole list
	Field  string // "name", "value" or "" for the whole list
	Reason string
}

func (e HeaderError) Error() string {
	if e.Index < 0 {
		return e.Reason
	}
	return fmt.Sprintf("header %d %s: %s", e.Index, e.Field, e.Reason)
}

// HeaderErrors lists every problem found in a list of custom headers.
type HeaderErrors []HeaderError

func (es HeaderErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return "invalid custom headers: " + strings.Join(parts, "; ")
}

// CheckHeaders checks a list of custom headers against every rule: names, values and the
// limits on count and total length. It returns nil or a HeaderErrors naming each problem.
func CheckHeaders(hs []Header) error {
	var errs HeaderErrors
	if err := CheckHeaderLimits(hs); err != nil {
		errs = err.(HeaderErrors)
	}
	for i, h := range hs {
		if err := CheckHeaderName(h.Name); err != nil {
			errs = append(errs, HeaderError{Index: i, Field: "name", Reason: err.Error()})
		}
		if err := CheckHeaderValue(h.Value); err != nil {
			errs = append(errs, HeaderError{Index: i, Field: "value", Reason: err.Error()})
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// CheckHeaderLimits checks only the limits on the number of custom headers and their total
// length, for a list whose headers were each checked already. It returns nil or a
// HeaderErrors whose entries have Index -1.
func CheckHeaderLimits(hs []Header) error {
	var errs HeaderErrors
	if len(hs) > MaxCustomHeaders {
		errs = append(errs, HeaderError{Index: -1, Reason: fmt.Sprintf("%d custom headers, at most %d allowed", len(hs), MaxCustomHeaders)})
	}
	total := 0
	for _, h := range hs {
		total += utf8.RuneCountInString(h.Name) + utf8.RuneCountInString(h.Value)
	}
	if total > MaxCustomHeaderChars {
		errs = append(errs, HeaderError{Index: -1, Reason: fmt.Sprintf("custom headers hold %d characters, at most %d allowed", total, MaxCustomHeaderChars)})
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}
