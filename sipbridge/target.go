package sipbridge

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/callctx/callctx/sipbridge/sipcodec"
)

// target is where a call is sent: a SIP URI, or a tel: URI kept as it is.
type target struct {
	uri sip.Uri // scheme sip or sips, when tel is ""
	tel string  // "tel:+4930…" when a tel: target is preserved
}

func (t target) String() string {
	if t.tel != "" {
		return t.tel
	}
	return t.uri.String()
}

// canCarryHeaders reports whether the target URI can carry headers (`?X-A=1`); a tel: URI
// cannot (RFC 3966 has no headers component).
func (t target) canCarryHeaders() bool { return t.tel == "" }

// parseTarget checks a transfer or redirect target and returns it ready to use. A tel: URI
// becomes sip:<number>@<sbc>;user=phone (AudioCodes Live Hub's default) unless preserveTel
// is set; sbc is "host" or "host:port". Targets that could break out of the <…> of a
// Refer-To or Contact header, or that carry URI headers of their own, are refused: context
// headers are added by the bridge after checking them.
func parseTarget(s, sbc string, preserveTel bool) (target, error) {
	if s == "" {
		return target{}, fmt.Errorf("the target is empty")
	}
	if err := sipcodec.CheckText(s); err != nil {
		return target{}, fmt.Errorf("the target %s", err)
	}
	if i := strings.IndexAny(s, " <>\"\\"); i >= 0 {
		return target{}, fmt.Errorf("the target holds %q; write a bare sip:, sips: or tel: URI", s[i])
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok {
		//lint:ignore ST1005 the message ends with a URI scheme, not punctuation
		return target{}, fmt.Errorf("the target has no scheme; use sip:, sips: or tel:")
	}
	switch strings.ToLower(scheme) {
	case "tel":
		number, err := telNumber(rest)
		if err != nil {
			return target{}, err
		}
		if preserveTel {
			return target{tel: "tel:" + rest}, nil
		}
		if sbc == "" {
			return target{}, fmt.Errorf("a tel: target needs an SBC to route to (sip.sbc) or preserveTelURI")
		}
		host, port, err := splitHostPort(sbc)
		if err != nil {
			return target{}, fmt.Errorf("the configured SBC %q: %w", sbc, err)
		}
		return target{uri: sip.Uri{Scheme: "sip", User: number, Host: host, Port: port,
			UriParams: sip.HeaderParams{{K: "user", V: "phone"}}}}, nil
	case "sip", "sips":
		if strings.Contains(rest, "?") {
			return target{}, fmt.Errorf("the target carries URI headers; pass headers as transferSipHeaders instead")
		}
		var u sip.Uri
		if err := sip.ParseUri(s, &u); err != nil {
			return target{}, fmt.Errorf("the target is not a valid SIP URI: %v", err)
		}
		if u.Host == "" || u.Wildcard {
			return target{}, fmt.Errorf("the target has no host")
		}
		u.Scheme = strings.ToLower(u.Scheme)
		return target{uri: u}, nil
	default:
		//lint:ignore ST1005 the message ends with a URI scheme, not punctuation
		return target{}, fmt.Errorf("the target scheme %q is not supported; use sip:, sips: or tel:", scheme)
	}
}

// telNumber returns the number of a tel: URI's scheme-specific part without its parameters
// and visual separators (RFC 3966: "-", ".", "(", ")").
func telNumber(rest string) (string, error) {
	num, _, _ := strings.Cut(rest, ";")
	var b strings.Builder
	for i := 0; i < len(num); i++ {
		c := num[i]
		switch {
		case c >= '0' && c <= '9', c == '*', c == '#':
			b.WriteByte(c)
		case c == '+' && i == 0:
			b.WriteByte(c)
		case c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", fmt.Errorf("the tel: number %q holds %q", num, c)
		}
	}
	n := b.String()
	if strings.TrimPrefix(n, "+") == "" {
		return "", fmt.Errorf("the tel: target has no number")
	}
	return n, nil
}

// splitHostPort accepts "host" or "host:port" (IPv6 in brackets).
func splitHostPort(s string) (string, int, error) {
	if host, port, err := net.SplitHostPort(s); err == nil {
		p, err := strconv.Atoi(port)
		if err != nil || p <= 0 || p > 65535 {
			return "", 0, fmt.Errorf("bad port %q", port)
		}
		return host, p, nil
	}
	if s == "" || strings.ContainsAny(s, ":/ ") && !strings.HasPrefix(s, "[") {
		return "", 0, fmt.Errorf("want host or host:port")
	}
	return strings.Trim(s, "[]"), 0, nil
}

// userOf returns the user part of a URI: the user of a sip: URI, the number of a tel: URI,
// and for a sip: URI without user its host.
func userOf(u sip.Uri) string {
	switch {
	case u.Scheme == "tel":
		num, _, _ := strings.Cut(u.Raw(), ";")
		return num
	case u.User != "":
		return u.User
	default:
		return u.Host
	}
}
