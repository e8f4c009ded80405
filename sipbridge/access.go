package sipbridge

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
)

// admit decides whether an INVITE outside a dialog may start a call, and answers it when
// not: 503 with Retry-After when its source is over its rate (RateLimit); then a source in
// Allow is admitted; then, with Auth, one whose credentials prove a user, and one without
// them gets a 407 challenge; everything else gets 403.
func (b *Bridge) admit(req *sip.Request, tx sip.ServerTransaction) bool {
	src := sourceAddr(req)
	if ok, wait, first := b.limit.take(src, time.Now()); !ok {
		if first {
			b.log.Warn("sip calls from a source over its rate refused with 503 until it slows down", "source", src.String(), "per_second", b.cfg.RateLimit.PerSecond, "burst", b.limit.burst)
		}
		b.respond(req, tx, 503, "Service Unavailable (too many calls from this address)", sip.NewHeader("Retry-After", strconv.Itoa(retryAfter(wait))))
		return false
	}
	if len(b.cfg.Allow) > 0 && b.allowed(req) {
		return true
	}
	if b.auth == nil {
		if len(b.cfg.Allow) == 0 {
			return true // open to anyone: cmd refuses that beyond loopback unless asked
		}
		b.log.Warn("sip INVITE from a source not in sip.allow refused", "source", req.Source(), "sip_call_id", callIDOf(req))
		b.respond(req, tx, 403, "Forbidden")
		return false
	}
	user, res := b.auth.check(req, src)
	switch res {
	case authOK:
		b.log.Debug("sip INVITE authenticated", "user", user, "source", req.Source(), "sip_call_id", callIDOf(req))
		return true
	case authMissing, authStale:
		b.respond(req, tx, 407, "Proxy Authentication Required", b.auth.challenges(src, res == authStale)...)
	default:
		b.log.Warn("sip INVITE with wrong credentials refused", "user", user, "source", req.Source(), "sip_call_id", callIDOf(req))
		b.respond(req, tx, 403, "Forbidden (wrong credentials)")
	}
	return false
}

// sourceAddr is the address a request came from; the zero Addr when it cannot be read.
func sourceAddr(req *sip.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// sameSource reports whether two requests came from the same address: a REFER from the
// peer whose INVITE was admitted (by address or credentials) is that peer's.
func sameSource(a, b *sip.Request) bool {
	x := sourceAddr(a)
	return x.IsValid() && x == sourceAddr(b)
}
