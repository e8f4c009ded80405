package sipbridge

import (
	"context"
	"net"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Connection reuse (RFC 3261 §18, RFC 5923). sipgo v1.7.2 sends an in-dialog request to the
// first Route of the dialog (the INVITE's Record-Route) or else to the caller's Contact, and
// looks for a connection in its pool by that address. The connection the INVITE came in on
// is pooled by its source address, the peer's ephemeral port, so over TCP and TLS every BYE,
// REFER and re-INVITE opened a new connection to the Contact: fatal behind NAT, and for
// peers that only take connections from their proxy. A dialog of an INVITE over TCP or TLS
// therefore gets a dialog user agent of its own whose requests go back over the INVITE's
// connection while it is open, unless the route set sends them elsewhere: with a
// Record-Route, only when its first entry is the hop that sent the INVITE (its top Via's
// sent-by, as RFC 5923 aliases a connection to it). sipgo stays as it is; the hook is the
// client's TxRequester, which sees each request after the dialog has built it.

// dialogUA returns the dialog user agent for an inbound INVITE: for TCP and TLS one that
// reuses the INVITE's connection (see reuseConn), else the shared one of its transport.
func (b *Bridge) dialogUA(req *sip.Request) *sipgo.DialogUA {
	shared := b.duaFor(req)
	network := transportOf(req)
	if network != "tcp" && network != "tls" || !reusable(req) {
		return shared
	}
	client := *b.client // a shallow copy: the same user agent, host and logger
	client.TxRequester = reuseConn{ua: b.ua, network: network, source: req.Source()}
	return &sipgo.DialogUA{Client: &client, ContactHDR: shared.ContactHDR}
}

// reusable reports whether the requests of req's dialog go to the hop req came from: there
// is no route set, or its first entry is the top Via's sent-by.
func reusable(req *sip.Request) bool {
	rr := req.RecordRoute()
	if rr == nil {
		return true
	}
	via := req.Via()
	if via == nil {
		return false
	}
	tls := transportOf(req) == "tls"
	return sameHop(rr.Address.Host, rr.Address.Port, via.Host, via.Port, tls)
}

// sameHop compares two host:port pairs, a zero port being SIP's default.
func sameHop(h1 string, p1 int, h2 string, p2 int, tls bool) bool {
	def := 5060
	if tls {
		def = 5061
	}
	if p1 == 0 {
		p1 = def
	}
	if p2 == 0 {
		p2 = def
	}
	h1, h2 = strings.Trim(h1, "[]"), strings.Trim(h2, "[]")
	if ip1, ip2 := net.ParseIP(h1), net.ParseIP(h2); ip1 != nil && ip2 != nil {
		return ip1.Equal(ip2) && p1 == p2
	}
	return strings.EqualFold(h1, h2) && p1 == p2
}

// reuseConn sends the requests of one dialog over the connection its INVITE came in on
// (source, over network) while that connection is open; otherwise where the dialog routes
// them. It implements sipgo.ClientTransactionRequester.
type reuseConn struct {
	ua      *sipgo.UserAgent
	network string
	source  string
}

var _ sipgo.ClientTransactionRequester = reuseConn{}

func (r reuseConn) Request(ctx context.Context, req *sip.Request) (sip.ClientTransaction, error) {
	tp := r.ua.TransportLayer()
	if strings.EqualFold(req.Transport(), r.network) {
		if c, err := tp.GetConnection(r.network, r.source); err == nil {
			_, _ = c.TryClose() // GetConnection took a reference
			req.SetDestination(r.source)
		}
	}
	if req.IsAck() { // sipgo writes an ACK of a 2xx without a transaction
		return nil, tp.WriteMsg(req)
	}
	return r.ua.TransactionLayer().Request(ctx, req)
}
