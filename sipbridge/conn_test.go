package sipbridge_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callctx/callctx/internal/peertest"
	"github.com/callctx/callctx/internal/sipptest"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge"
)

// TestBridge_InDialogRequestsReuseTheConnection: a caller over TCP whose Contact cannot be
// reached (a closed port, as behind NAT) still gets callctx's REFER and BYE, over the
// connection its INVITE came in on (RFC 3261 §18, RFC 5923); with a Record-Route naming the
// hop that sent the INVITE, the requests carry the route and take that connection too.
func TestBridge_InDialogRequestsReuseTheConnection(t *testing.T) {
	for _, tc := range []struct {
		name  string
		route bool
	}{{"no route set", false}, {"record-routed by the sender", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := startBridge(t, sipbridge.Config{})
			port := peertest.FreePort(t)
			rr, route := "X-Route-Test: none", ""
			if tc.route {
				route = fmt.Sprintf("<sip:127.0.0.1:%d;transport=tcp;lr>", port)
				rr = "Record-Route: " + route
			}
			uac := sipptest.Start(t, "uac_tcp_contact_unreachable.xml", e.bridge.Addr(), port, "-t", "t1", "-key", "rr", rr)
			call := e.activeCall(t)
			transferWhenAnswered(t, e, call.ID, session.TransferRequest{Target: "sip:agent@192.0.2.20", HangupAfter: ms(0)})
			uac.Wait(t)
			if got, want := e.endedCall(t, call.ID).EndReason, sipbridge.EndTransferred; got != want {
				t.Errorf("EndReason=%q, want %q", got, want)
			}
			if got := uac.Logged(t, "refer-route"); got != route {
				t.Errorf("Route of the REFER %q, want %q", got, route)
			}
		})
	}
}

// rawPeer is a caller that speaks SIP by hand over one TCP or TLS connection, for what sipp
// (Debian's build has no TLS) cannot show: every request callctx sends in the dialog must
// arrive on this connection.
type rawPeer struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func (p *rawPeer) send(msg string) {
	p.t.Helper()
	if _, err := p.conn.Write([]byte(msg)); err != nil {
		p.t.Fatal(err)
	}
}

// read returns the next message callctx sends on the connection.
func (p *rawPeer) read() sip.Message {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var head strings.Builder
	length := 0
	for {
		line, err := p.r.ReadString('\n')
		if err != nil {
			p.t.Fatalf("read: %v (so far %q)", err, head.String())
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
		if name, v, ok := strings.Cut(line, ":"); ok && (strings.EqualFold(name, "Content-Length") || name == "l") {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(p.r, body); err != nil {
		p.t.Fatal(err)
	}
	msg, err := sip.ParseMessage(append([]byte(head.String()), body...))
	if err != nil {
		p.t.Fatal(err)
	}
	return msg
}

// readRequest returns the next request, passing over responses.
func (p *rawPeer) readRequest() *sip.Request {
	p.t.Helper()
	for {
		if req, ok := p.read().(*sip.Request); ok {
			return req
		}
	}
}

// respond answers req with code on the connection.
func (p *rawPeer) respond(req *sip.Request, code int, reason string) {
	p.t.Helper()
	p.send(sip.NewResponseFromRequest(req, code, reason, nil).String())
}

// TestBridge_InDialogRequestsReuseTheConnection_rawTLS: over TLS and TCP, with and
// without a Record-Route that names the hop the INVITE came from (its Via sent-by, here a
// port where nothing listens, as a proxy's or a NATed phone's address may be), the REFER
// and the BYE come back over the connection of the INVITE, carrying the route.
func TestBridge_InDialogRequestsReuseTheConnection_rawTLS(t *testing.T) {
	cert := selfSigned(t)
	for _, tc := range []struct {
		network string
		route   bool
	}{{"tls", false}, {"tls", true}, {"tcp", true}} {
		t.Run(tc.network+" route="+strconv.FormatBool(tc.route), func(t *testing.T) {
			t.Parallel()
			e := startBridge(t, sipbridge.Config{TLSListen: "127.0.0.1:0", TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
			var conn net.Conn
			var err error
			if tc.network == "tls" {
				conn, err = tls.Dial("tcp", e.bridge.TLSAddr(), &tls.Config{InsecureSkipVerify: true})
			} else {
				conn, err = net.Dial("tcp", e.bridge.Addr())
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			p := &rawPeer{t: t, conn: conn, r: bufio.NewReader(conn)}
			hop := fmt.Sprintf("127.0.0.1:%d", peertest.FreePort(t)) // what the caller says it is; unreachable
			route := ""
			if tc.route {
				route = "<sip:" + hop + ";transport=" + tc.network + ";lr>"
			}
			target := e.bridge.Addr()
			if tc.network == "tls" {
				target = e.bridge.TLSAddr()
			}
			sdp := "v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
			invite := "INVITE sip:+4930555@" + target + ";transport=" + tc.network + " SIP/2.0\r\n" +
				"Via: SIP/2.0/" + strings.ToUpper(tc.network) + " " + hop + ";branch=z9hG4bK-raw-1\r\n" +
				"From: <sip:caller@127.0.0.1>;tag=raw1\r\nTo: <sip:+4930555@127.0.0.1>\r\nCall-ID: raw-" + tc.network + strconv.FormatBool(tc.route) + "@127.0.0.1\r\n" +
				"CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:caller@" + hop + ";transport=" + tc.network + ">\r\n"
			if route != "" {
				invite += "Record-Route: " + route + "\r\n"
			}
			invite += "Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp
			p.send(invite)
			var ok *sip.Response
			for ok == nil {
				if res, isRes := p.read().(*sip.Response); isRes && res.StatusCode == 200 {
					ok = res
				}
			}
			toTag, _ := ok.To().Params.Get("tag")
			p.send("ACK sip:callctx@" + target + ";transport=" + tc.network + " SIP/2.0\r\n" +
				"Via: SIP/2.0/" + strings.ToUpper(tc.network) + " " + hop + ";branch=z9hG4bK-raw-2\r\n" +
				"From: <sip:caller@127.0.0.1>;tag=raw1\r\nTo: <sip:+4930555@127.0.0.1>;tag=" + toTag + "\r\n" + ok.CallID().String() + "\r\n" +
				"CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
			call := e.activeCall(t)
			transferWhenAnswered(t, e, call.ID, session.TransferRequest{Target: "sip:agent@192.0.2.20", HangupAfter: ms(0)})

			refer := p.readRequest()
			if refer.Method != sip.REFER {
				t.Fatalf("got %s, want REFER", refer.Method)
			}
			if got := headerValue(refer, "Route"); got != route {
				t.Errorf("Route of the REFER %q, want %q", got, route)
			}
			p.respond(refer, 202, "Accepted")
			p.send("NOTIFY sip:callctx@" + target + ";transport=" + tc.network + " SIP/2.0\r\n" +
				"Via: SIP/2.0/" + strings.ToUpper(tc.network) + " " + hop + ";branch=z9hG4bK-raw-3\r\n" +
				"From: <sip:caller@127.0.0.1>;tag=raw1\r\nTo: <sip:+4930555@127.0.0.1>;tag=" + toTag + "\r\n" + ok.CallID().String() + "\r\n" +
				"CSeq: 2 NOTIFY\r\nMax-Forwards: 70\r\nEvent: refer\r\nSubscription-State: terminated;reason=noresource\r\n" +
				"Content-Type: message/sipfrag;version=2.0\r\nContent-Length: 16\r\n\r\nSIP/2.0 200 OK\r\n")
			bye := p.readRequest()
			if bye.Method != sip.BYE {
				t.Fatalf("got %s, want BYE", bye.Method)
			}
			p.respond(bye, 200, "OK")
			if got, want := e.endedCall(t, call.ID).EndReason, sipbridge.EndTransferred; got != want {
				t.Errorf("EndReason=%q, want %q", got, want)
			}
		})
	}
}

func headerValue(req *sip.Request, name string) string {
	if h := req.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}
