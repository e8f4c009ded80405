package sipcodec

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// UUIHeader is the name of the RFC 7433 header that carries User-to-User information.
const UUIHeader = "User-to-User"

// Encodings of UUI data.
const (
	UUIPlain = "plain" // k=v;k=v as text (what Dynamics 365 calls the plain format)
	UUIHex   = "hex"   // the same text hex-encoded, with ;encoding=hex (RFC 7433)
)

// KV is one key/value pair carried in UUI data, in the order it appeared.
type KV struct {
	Key   string
	Value string
}

// UUI is a decoded User-to-User header value.
type UUI struct {
	Pairs    []KV   // the k=v pairs, in order
	Encoding string // UUIPlain or UUIHex
	Purpose  string // RFC 7433 purpose parameter, "" when absent
	Content  string // RFC 7433 content parameter, "" when absent
}

// ErrUUI is wrapped by every error of ParseUUI: the value cannot be read as key/value
// pairs. The caller keeps such a value raw (sip.uui.raw); it never fails the call.
var ErrUUI = errors.New("undecodable User-to-User")

// ParseUUI decodes one User-to-User header value into key/value pairs.
//
// Two forms are accepted, both used by IVRs handing a call to a contact centre:
//
//	User-to-User: acct=123;lang=de
//	User-to-User: 616363743D3132333B6C616E673D6465;encoding=hex;purpose=isdn-interwork
//
// The first ;-separated item is always data. A later item named purpose, content or encoding
// (RFC 7433's parameters, any case) is a parameter, not a pair: those three keys can only be
// carried in hex form. With encoding=hex the data is one hex string (either case, optionally
// quoted); its first byte is dropped when it is below 0x20, the ISDN protocol discriminator
// that some gateways keep in front of the text (0x04 = IA5 characters, 0x00 = user-specific).
// Any other encoding, bad hex, text that is not UTF-8 or holds control characters, and items
// without '=' or with an empty key make the value undecodable: the error wraps ErrUUI. When a
// key repeats, its last value wins.
func ParseUUI(value string) (UUI, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return UUI{}, fmt.Errorf("%w: empty", ErrUUI)
	}
	data, rest, err := splitUUIData(value)
	if err != nil {
		return UUI{}, err
	}
	u := UUI{Encoding: UUIPlain}
	var dataItems []string
	if data != "" {
		dataItems = append(dataItems, data)
	}
	encoding := ""
	for _, item := range splitNonEmpty(rest) {
		k, v, _ := strings.Cut(item, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		v = unquote(strings.TrimSpace(v))
		switch k {
		case "encoding":
			encoding = strings.ToLower(v)
		case "purpose":
			u.Purpose = v
		case "content":
			u.Content = v
		default:
			dataItems = append(dataItems, item)
		}
	}
	var text string
	switch encoding {
	case "":
		text = strings.Join(dataItems, ";")
	case UUIHex:
		if len(dataItems) != 1 {
			return UUI{}, fmt.Errorf("%w: hex data must be a single item", ErrUUI)
		}
		b, err := hex.DecodeString(strings.TrimSpace(dataItems[0]))
		if err != nil {
			return UUI{}, fmt.Errorf("%w: bad hex: %v", ErrUUI, err)
		}
		if len(b) > 0 && b[0] < 0x20 {
			b = b[1:] // ISDN protocol discriminator
		}
		text = string(b)
		u.Encoding = UUIHex
	default:
		return UUI{}, fmt.Errorf("%w: unsupported encoding %q", ErrUUI, encoding)
	}
	if err := CheckText(text); err != nil {
		return UUI{}, fmt.Errorf("%w: %v", ErrUUI, err)
	}
	pairs, err := parsePairs(text)
	if err != nil {
		return UUI{}, err
	}
	u.Pairs = pairs
	return u, nil
}

// splitUUIData separates the first item (the data, possibly a quoted string) from the
// ;-separated rest.
func splitUUIData(value string) (data, rest string, err error) {
	if value[0] != '"' {
		data, rest, _ = strings.Cut(value, ";")
		return strings.TrimSpace(data), rest, nil
	}
	for i := 1; i < len(value); i++ {
		switch value[i] {
		case '\\':
			i++
		case '"':
			rest = strings.TrimSpace(value[i+1:])
			if rest != "" && rest[0] != ';' {
				return "", "", fmt.Errorf("%w: text after quoted data", ErrUUI)
			}
			return unquote(value[:i+1]), strings.TrimPrefix(rest, ";"), nil
		}
	}
	return "", "", fmt.Errorf("%w: unterminated quoted data", ErrUUI)
}

// unquote removes the quotes and backslash escapes of a quoted-string; anything else is
// returned as it is.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	s = s[1 : len(s)-1]
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func splitNonEmpty(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ";") {
		if strings.TrimSpace(item) != "" {
			out = append(out, item)
		}
	}
	return out
}

// parsePairs reads k=v;k=v text. Empty items are skipped; the last value of a repeated key
// wins.
func parsePairs(text string) ([]KV, error) {
	items := splitNonEmpty(text)
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: no key=value pairs", ErrUUI)
	}
	pairs := make([]KV, 0, len(items))
	index := make(map[string]int, len(items))
	for _, item := range items {
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok {
			return nil, fmt.Errorf("%w: item %q is not key=value", ErrUUI, truncate(item, 40))
		}
		if k == "" {
			return nil, fmt.Errorf("%w: item %q has an empty key", ErrUUI, truncate(item, 40))
		}
		if i, seen := index[k]; seen {
			pairs[i].Value = v
			continue
		}
		index[k] = len(pairs)
		pairs = append(pairs, KV{Key: k, Value: v})
	}
	return pairs, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// UUIOptions say how EncodeUUI writes UUI data.
type UUIOptions struct {
	Encoding string // UUIPlain (default when "") or UUIHex
	Purpose  string // optional RFC 7433 purpose parameter, a token
	Content  string // optional RFC 7433 content parameter, a token
}

// EncodeUUI renders pairs as a User-to-User header value: `k=v;k=v` in plain form or
// `<HEX>;encoding=hex` in hex form, followed by the purpose and content parameters when set.
//
// A pair that could not be read back the same way is refused, never altered: keys must be
// non-empty and free of '=', ';', ',' and whitespace; values must not hold ';'; in plain
// form they must not hold ',' either (it separates UUI values, RFC 7433) nor start or end with
// whitespace. Control characters are refused in both forms; use hex for anything else.
func EncodeUUI(pairs []KV, opts UUIOptions) (string, error) {
	enc := opts.Encoding
	if enc == "" {
		enc = UUIPlain
	}
	if enc != UUIPlain && enc != UUIHex {
		return "", fmt.Errorf("unsupported uui encoding %q (use %q or %q)", enc, UUIPlain, UUIHex)
	}
	if len(pairs) == 0 {
		return "", fmt.Errorf("uui needs at least one key=value pair")
	}
	for _, p := range []struct{ name, v string }{{"purpose", opts.Purpose}, {"content", opts.Content}} {
		if p.v != "" && !IsToken(p.v) {
			return "", fmt.Errorf("uui %s %q is not a token", p.name, p.v)
		}
	}
	var b strings.Builder
	for i, p := range pairs {
		if err := CheckUUIPair(p, enc); err != nil {
			return "", err
		}
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(p.Key)
		b.WriteByte('=')
		b.WriteString(p.Value)
	}
	text := b.String()
	if enc == UUIPlain {
		// A plain first key named like an RFC 7433 parameter would still read back (the first
		// item is always data), but a later one would not.
		for _, p := range pairs[1:] {
			switch strings.ToLower(p.Key) {
			case "encoding", "purpose", "content":
				return "", fmt.Errorf("uui key %q is an RFC 7433 parameter name; use hex encoding to carry it", p.Key)
			}
		}
	} else {
		text = strings.ToUpper(hex.EncodeToString([]byte(text))) + ";encoding=hex"
	}
	if opts.Purpose != "" {
		text += ";purpose=" + opts.Purpose
	}
	if opts.Content != "" {
		text += ";content=" + opts.Content
	}
	return text, nil
}

// CheckUUIPair returns an error unless p can be written as one pair of UUI data in encoding
// enc (UUIPlain or UUIHex) and read back the same way; EncodeUUI applies it to every pair.
// In plain form the key and value go into the header as they are, so they are held to
// CheckHeaderValue (no control character even after percent-decoding: a receiver that
// decodes "%0D%0A" must not find a line break); in hex form any text without control
// characters is safe.
func CheckUUIPair(p KV, enc string) error {
	if p.Key == "" {
		return fmt.Errorf("uui key is empty")
	}
	if strings.ContainsAny(p.Key, "=;, \t\"") {
		return fmt.Errorf("uui key %q holds one of = ; , \" or whitespace", p.Key)
	}
	check := CheckText
	if enc == UUIPlain {
		check = CheckHeaderValue
	}
	if err := check(p.Key); err != nil {
		return fmt.Errorf("uui key %q: %w", p.Key, err)
	}
	if strings.Contains(p.Value, ";") {
		return fmt.Errorf("uui value of %q holds ';', which separates pairs", p.Key)
	}
	if err := check(p.Value); err != nil {
		return fmt.Errorf("uui value of %q: %w", p.Key, err)
	}
	if p.Value != strings.TrimSpace(p.Value) {
		return fmt.Errorf("uui value of %q starts or ends with whitespace", p.Key)
	}
	if enc == UUIPlain {
		if strings.ContainsAny(p.Value, ",\"") {
			return fmt.Errorf("uui value of %q holds ',' or '\"'; use hex encoding", p.Key)
		}
	}
	return nil
}
