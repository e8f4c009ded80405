package sipbridge_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/callctx/callctx/internal/sipptest"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge"
)

// peer is a SIP user agent of the test's own (sipgo), calling the bridge from a loopback
// address of its choice.
type peer struct {
	client *sipgo.Client
	dua    *sipgo.DialogUA
	bridge sip.Uri // the number the bridge serves, at its address
}

// newPeer returns a peer that sends from ip (127.0.0.1, 127.0.0.2, …) over UDP.
func newPeer(tb testing.TB, ip, bridgeAddr string) *peer {
	tb.Helper()
	port := freePortOn(tb, ip)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-peer"), sipgo.WithUserAgentHostname(ip))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ua.Close() })
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	client, err := sipgo.NewClient(ua, sipgo.WithClientConnectionAddr(addr), sipgo.WithClientAddr(addr))
	if err != nil {
		tb.Fatal(err)
	}
	host, portText, _ := net.SplitHostPort(bridgeAddr)
	bport, _ := strconv.Atoi(portText)
	return &peer{
		client: client,
		dua:    &sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "sbc", Host: ip, Port: port}}},
		bridge: sip.Uri{Scheme: "sip", User: "+4930555", Host: host, Port: bport},
	}
}

func freePortOn(tb testing.TB, ip string) int {
	tb.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		tb.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

const peerSDP = "v=0\r\no=sbc 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"

// invite sends an INVITE with the headers hs and returns the final response (sipgo ACKs a
// non-2xx one itself).
func (p *peer) invite(tb testing.TB, hs ...sip.Header) *sip.Response {
	tb.Helper()
	req := p.request(hs...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := p.client.Do(ctx, req)
	if err != nil {
		tb.Fatalf("INVITE: %v", err)
	}
	return res
}

func (p *peer) request(hs ...sip.Header) *sip.Request {
	req := sip.NewRequest(sip.INVITE, p.bridge)
	req.AppendHeader(&p.dua.ContactHDR)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	for _, h := range hs {
		req.AppendHeader(h)
	}
	req.SetBody([]byte(peerSDP))
	return req
}

// call places a call with credentials, as an SBC does (sipgo answers the challenge), and
// hangs it up once answered. It returns the final status of the INVITE.
func (p *peer) call(tb testing.TB, user, password string) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := p.dua.Invite(ctx, p.bridge, []byte(peerSDP), sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		tb.Fatalf("INVITE: %v", err)
	}
	defer sess.Close()
	err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{Username: user, Password: password})
	var refused *sipgo.ErrDialogResponse
	if errors.As(err, &refused) {
		return refused.Res.StatusCode
	}
	if err != nil {
		tb.Fatalf("INVITE: %v", err)
	}
	if err := sess.Ack(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := sess.Bye(ctx); err != nil {
		tb.Fatal(err)
	}
	return sess.InviteResponse.StatusCode
}

// callCount returns the number of calls the bridge created.
func (e *testEnv) callCount(tb testing.TB) int {
	tb.Helper()
	page, err := e.svc.ListCalls(context.Background(), session.ListOptions{State: session.FilterAll})
	if err != nil {
		tb.Fatal(err)
	}
	return len(page.Items)
}

// TestBridge_Auth: with users configured, an INVITE from a source sip.allow does not pin is
// challenged with 407 (SHA-256 first, then MD5); the same INVITE with the right credentials
// starts a call, with wrong ones it gets 403; pinned sources are not challenged.
func TestBridge_Auth(t *testing.T) {
	users := []sipbridge.AuthUser{{Name: "sbc-east", Password: "s3cret"}}
	t.Run("Challenge", func(t *testing.T) {
		e := startBridge(t, sipbridge.Config{Auth: sipbridge.AuthConfig{Realm: "calls.example", Users: users}})
		res := newPeer(t, "127.0.0.1", e.bridge.Addr()).invite(t)
		if got, want := res.StatusCode, 407; got != want {
			t.Fatalf("status=%d, want %d", got, want)
		}
		hs := res.GetHeaders("Proxy-Authenticate")
		if len(hs) != 2 {
			t.Fatalf("Proxy-Authenticate headers=%v, want two", hs)
		}
		for i, alg := range []string{"SHA-256", "MD5"} {
			c, err := digest.ParseChallenge(hs[i].Value())
			if err != nil {
				t.Fatal(err)
			}
			if c.Realm != "calls.example" || c.Algorithm != alg || !c.SupportsQOP("auth") || c.Nonce == "" || c.Stale {
				t.Errorf("challenge %d=%q, want realm calls.example, %s, qop auth, a nonce", i, hs[i].Value(), alg)
			}
		}
		if n := e.callCount(t); n != 0 {
			t.Errorf("%d calls, want none", n)
		}
	})
	t.Run("SHA256", func(t *testing.T) {
		e := startBridge(t, sipbridge.Config{Auth: sipbridge.AuthConfig{Users: users}})
		if got := newPeer(t, "127.0.0.1", e.bridge.Addr()).call(t, "sbc-east", "s3cret"); got != 200 {
			t.Fatalf("status=%d, want 200", got)
		}
		e.lastCall(t)
	})
	t.Run("HA1", func(t *testing.T) {
		// The configuration holds H(name:realm:password), not the password.
		ha1, _ := sipbridge.HA1("SHA-256", "sbc-east", "callctx", "s3cret")
		e := startBridge(t, sipbridge.Config{Auth: sipbridge.AuthConfig{
			Algorithms: []string{"SHA-256"}, Users: []sipbridge.AuthUser{{Name: "sbc-east", HA1: map[string]string{"SHA-256": ha1}}}}})
		if got := newPeer(t, "127.0.0.1", e.bridge.Addr()).call(t, "sbc-east", "s3cret"); got != 200 {
			t.Fatalf("status=%d, want 200", got)
		}
		e.lastCall(t)
	})
	t.Run("MD5", func(t *testing.T) {
		// sipp, a real peer, speaks MD5 only, and takes the first challenge.
		e := startBridge(t, sipbridge.Config{Auth: sipbridge.AuthConfig{Algorithms: []string{"MD5"}, Users: users}})
		sipptest.Start(t, "uac_auth.xml", e.bridge.Addr(), 0, "-au", "sbc-east", "-ap", "s3cret").Wait(t)
		e.lastCall(t)
	})
	t.Run("WrongPassword", func(t *testing.T) {
		e := startBridge(t, sipbridge.Config{Auth: sipbridge.AuthConfig{Users: users}})
		p := newPeer(t, "127.0.0.1", e.bridge.Addr())
		for _, cred := range [][2]string{{"sbc-east", "guess"}, {"nobody", "s3cret"}} {
			if got := p.call(t, cred[0], cred[1]); got != 403 {
				t.Errorf("%s/%s: status=%d, want 403", cred[0], cred[1], got)
			}
		}
		if n := e.callCount(t); n != 0 {
			t.Errorf("%d calls, want none", n)
		}
		if !strings.Contains(e.logs.String(), "wrong credentials") {
			t.Errorf("the refusal is not logged:\n%s", e.logs.String())
		}
	})
	t.Run("Pinned", func(t *testing.T) {
		e := startBridge(t, sipbridge.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Auth: sipbridge.AuthConfig{Users: users}})
		if got := newPeer(t, "127.0.0.1", e.bridge.Addr()).call(t, "", ""); got != 200 {
			t.Fatalf("status=%d, want 200 without credentials", got)
		}
		e.lastCall(t)
	})
	t.Run("Stale", func(t *testing.T) {
		e := startBridge(t, sipbridge.Config{Auth: sipbridge.AuthConfig{Users: users, NonceTTL: time.Millisecond}})
		p := newPeer(t, "127.0.0.1", e.bridge.Addr())
		res := p.invite(t)
		time.Sleep(20 * time.Millisecond)
		res = p.invite(t, answer(t, p, res, "sbc-east", "s3cret"))
		c, err := digest.ParseChallenge(res.GetHeader("Proxy-Authenticate").Value())
		if res.StatusCode != 407 || err != nil || !c.Stale {
			t.Fatalf("status=%d, challenge %v %v, want 407 stale=true", res.StatusCode, c, err)
		}
	})
	t.Run("OtherSource", func(t *testing.T) {
		// A nonce sent to one address does not work from another: credentials seen on the
		// wire are no use elsewhere.
		e := startBridge(t, sipbridge.Config{Auth: sipbridge.AuthConfig{Users: users}})
		p, q := newPeer(t, "127.0.0.1", e.bridge.Addr()), newPeer(t, "127.0.0.2", e.bridge.Addr())
		res := p.invite(t)
		if got := q.invite(t, answer(t, p, res, "sbc-east", "s3cret")).StatusCode; got != 403 {
			t.Fatalf("status=%d, want 403", got)
		}
	})
}

// answer returns the Proxy-Authorization that answers the first challenge of res.
func answer(tb testing.TB, p *peer, res *sip.Response, user, password string) sip.Header {
	tb.Helper()
	c, err := digest.ParseChallenge(res.GetHeader("Proxy-Authenticate").Value())
	if err != nil {
		tb.Fatal(err)
	}
	cred, err := digest.Digest(c, digest.Options{Method: "INVITE", URI: p.bridge.Addr(), Username: user, Password: password})
	if err != nil {
		tb.Fatal(err)
	}
	return sip.NewHeader("Proxy-Authorization", cred.String())
}

// TestBridge_RateLimit: a source over its rate gets 503 with Retry-After and creates
// nothing, while another source still gets through; an exempt source is not limited.
func TestBridge_RateLimit(t *testing.T) {
	t.Run("Limited", func(t *testing.T) {
		e := startBridge(t, sipbridge.Config{RateLimit: sipbridge.RateLimit{PerSecond: 0.1, Burst: 2}})
		p, q := newPeer(t, "127.0.0.2", e.bridge.Addr()), newPeer(t, "127.0.0.3", e.bridge.Addr())
		for i := 0; i < 2; i++ {
			if got := p.call(t, "", ""); got != 200 {
				t.Fatalf("call %d: status=%d, want 200", i, got)
			}
		}
		res := p.invite(t)
		if got, want := res.StatusCode, 503; got != want {
			t.Fatalf("status=%d, want %d", got, want)
		}
		if ra := res.GetHeader("Retry-After"); ra == nil || ra.Value() != "10" {
			t.Errorf("Retry-After=%v, want 10 (one call per 10 s)", ra)
		}
		if got := q.call(t, "", ""); got != 200 {
			t.Errorf("another source: status=%d, want 200", got)
		}
		if n := e.callCount(t); n != 3 {
			t.Errorf("%d calls, want 3", n)
		}
		if logs := e.logs.String(); strings.Count(logs, "over its rate") != 1 {
			t.Errorf("want the refusal logged once:\n%s", logs)
		}
	})
	t.Run("Exempt", func(t *testing.T) {
		e := startBridge(t, sipbridge.Config{RateLimit: sipbridge.RateLimit{PerSecond: 0.1, Burst: 1,
			Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}})
		p := newPeer(t, "127.0.0.2", e.bridge.Addr())
		for i := 0; i < 3; i++ {
			if got := p.call(t, "", ""); got != 200 {
				t.Fatalf("call %d: status=%d, want 200", i, got)
			}
		}
	})
}
