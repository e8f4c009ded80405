package sipcodec

import (
	"fmt"
	"net/url"
	"strings"
)

// EscapeURIHeader percent-encodes s for use as the name or value of a SIP URI header
// (`sip:bob@example.com?X-Customer-ID=123`). RFC 3261 §19.1.1 allows, unescaped, only
// unreserved characters (alphanumerics and -_.!~*'()) and the hnv-unreserved ones []/?:+$;
// everything else, including '%', '&', '=', ';', '@', space and every byte of a non-ASCII
// character, becomes an upper-case %XX. sipgo writes URI headers as they are, so this must be
// done before a value is handed to it.
func EscapeURIHeader(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !uriHeaderSafe(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hexdigits = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if uriHeaderSafe(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexdigits[c>>4], hexdigits[c&15])
	}
	return string(b)
}

func uriHeaderSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-_.!~*'()[]/?:+$", c) >= 0
}

// UnescapeURIHeader decodes a percent-encoded URI header name or value. It uses
// url.PathUnescape, not QueryUnescape: a '+' in a URI header is a plus sign (E.164 numbers
// such as +4930123), never a space.
func UnescapeURIHeader(s string) (string, error) {
	d, err := url.PathUnescape(s)
	if err != nil {
		return "", fmt.Errorf("decode uri header: %w", err)
	}
	return d, nil
}

// EncodeURIHeaders checks hs with CheckHeaders and renders them as the header part of a SIP
// URI (without the leading '?'): name=value pairs, each side percent-encoded, joined by '&'.
func EncodeURIHeaders(hs []Header) (string, error) {
	if err := CheckHeaders(hs); err != nil {
		return "", err
	}
	var b strings.Builder
	for i, h := range hs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(EscapeURIHeader(h.Name))
		b.WriteByte('=')
		b.WriteString(EscapeURIHeader(h.Value))
	}
	return b.String(), nil
}

// DecodeURIHeaders parses the header part of a SIP URI (what follows '?') into headers,
// decoding each name and value. Every decoded header must pass CheckHeaderName's token rule
// and CheckHeaderValue; forbidden names are reported too, so a caller can never be tricked
// into copying a Via or Call-ID out of a URI.
func DecodeURIHeaders(s string) ([]Header, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, "&")
	hs := make([]Header, 0, len(parts))
	for _, p := range parts {
		rawName, rawValue, _ := strings.Cut(p, "=")
		name, err := UnescapeURIHeader(rawName)
		if err != nil {
			return nil, err
		}
		value, err := UnescapeURIHeader(rawValue)
		if err != nil {
			return nil, err
		}
		hs = append(hs, Header{Name: name, Value: value})
	}
	if err := CheckHeaders(hs); err != nil {
		return nil, err
	}
	return hs, nil
}
