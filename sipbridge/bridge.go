package sipbridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/internal/outage"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge/sipcodec"
)

// Mode says what the bridge does with an inbound INVITE once the call and its session exist.
type Mode string

// Modes of the bridge.
const (
	// ModeAnswer answers with 200 OK (signalling only: callctx sends no media) and parks the call
	// with callctx until it is transferred or hung up.
	ModeAnswer Mode = "answer"
	// ModeRedirect answers with 302 and a Contact that carries the context to the target.
	ModeRedirect Mode = "redirect"
	// ModeBridge places a new call to the target with the context headers and the caller's
	// SDP, relays its responses, and relays BYE and CANCEL both ways (a B2BUA).
	ModeBridge Mode = "bridge"
)

// Defaults of a Config.
const (
	DefaultListen          = "127.0.0.1:5060"
	DefaultTransferTimeout = 60 * time.Second
	DefaultUserAgent       = "callctx"
	DefaultMaxCalls        = 10000
	// DefaultUDPReceiveBuffer is the receive buffer asked for the UDP socket: at thousands of
	// calls a second a burst of requests outgrows the system's default (208 KiB on Linux)
	// while the process is busy, and what overflows it is lost.
	DefaultUDPReceiveBuffer = 4 << 20
)

// Actor is the actor the bridge writes sessions as.
const Actor = "sip"

// allowed is the Allow header of the bridge's responses.
const allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, NOTIFY, REFER"

// Config configures a Bridge. Zero values take defaults.
type Config struct {
	// Listen is the host:port of the UDP and TCP listeners (one port for both; port 0 picks
	// a free one). DefaultListen when "".
	Listen string
	// TLSListen is the host:port of the TLS listener; TLS is off when "". TLSConfig must then
	// hold the certificate.
	TLSListen string
	TLSConfig *tls.Config
	// Advertise is the host written in Contact headers and SDP. The listen host when "";
	// required when listening on a wildcard address (0.0.0.0, ::).
	Advertise string
	// Mode is what happens to an inbound INVITE (ModeAnswer when "").
	Mode Mode
	// Target is where ModeRedirect and ModeBridge send calls (a sip:, sips: or tel: URI).
	Target string
	// SBC is the host[:port] that tel: targets are sent to, as sip:<number>@SBC;user=phone.
	SBC string
	// TransferTarget is where a transfer goes that names no target, when the call's flow
	// names none either (its transfer_target): Live Hub's per-bot transfer number.
	TransferTarget string
	// Carry says which variables travel with redirects, bridged calls, and transfers that do
	// not say otherwise. With no Variables, only the X-Callctx-Call-Id header travels.
	Carry session.TransferContext
	// Map renames inbound headers and UUI keys and types their values (see
	// sipcodec.NewMapper).
	Map map[string]sipcodec.Rule
	// TransferTimeout bounds the wait for a transfer's outcome (DefaultTransferTimeout).
	TransferTimeout time.Duration
	// UserAgent is the User-Agent and Server header value (DefaultUserAgent).
	UserAgent string
	// Observer hears of the requests and transfers on the wire, for
	// metrics; nothing is reported when nil.
	Observer Observer
	// MaxCalls bounds the inbound calls the bridge handles at once (being set up, parked or
	// bridged); more are refused with 503 and Retry-After. DefaultMaxCalls when 0.
	MaxCalls int
	// UDPReceiveBuffer is the size in bytes asked for the UDP socket's receive buffer; the
	// system grants at most its limit (net.core.rmem_max on Linux). DefaultUDPReceiveBuffer
	// when 0.
	UDPReceiveBuffer int
	// Flow names the flow every inbound call gets; the bridge then drives it (see flows.go)
	// and the flow's first actions decide what happens to the INVITE, instead of Mode. It
	// takes effect with Flows, the engine that runs flows, and while that flow is loaded.
	Flow  string
	Flows *flow.Engine
	// KeepUnrouted gives a call to a number the routing table does not serve (when it has no
	// default and Flow is empty) Mode instead of refusing it with 404 Not Found: for a
	// deployment moving its numbers to the table one by one.
	KeepUnrouted bool
	// ContextLink mints the link of context by reference (Carry.As "reference"): a URL that
	// reads the session of callID; nil: that carry is refused.
	ContextLink func(callID string) (string, error)
	// Refer says what the bridge does with a REFER on a call it holds.
	Refer ReferConfig
	// Keepalive says how the bridge checks its targets and SBC with OPTIONS.
	Keepalive KeepaliveConfig
	// Allow lists the networks that may start calls (an INVITE outside a dialog): the
	// IVRs and SBCs in front of callctx. An INVITE from anywhere else is challenged when
	// Auth has users, else gets 403 and creates nothing. Empty allows every source (or,
	// with Auth, every source that authenticates).
	Allow []netip.Prefix
	// Auth turns on digest authentication for sources Allow does not list (see admit).
	Auth AuthConfig
	// RateLimit bounds the calls one source address may start per second.
	RateLimit RateLimit
}

// Bridge is callctx's SIP endpoint. Create it with New, start it with Start, stop it with
// Shutdown. It implements session.Transferer.
type Bridge struct {
	cfg Config
	svc *session.Service
	log *slog.Logger
	// storeLog logs the store's failures to take a new call once per change of state, not
	// once per INVITE, which an SBC retrying through an outage sends by the thousand.
	storeLog *outage.Log
	mapper   *sipcodec.Mapper
	target   *target        // the parsed Config.Target, nil when there is none
	auth     *authenticator // nil without Config.Auth users
	limit    *limiter       // nil without Config.RateLimit

	watch watcher // the states of the targets keepalive probes

	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	dua    map[string]*sipgo.DialogUA // by lower-case transport

	addr, tlsAddr, host string
	udpBuffer           int // the UDP socket's receive buffer, as granted

	ctx     context.Context // lives until Shutdown
	cancel  context.CancelFunc
	wg      sync.WaitGroup // calls and transfers in progress
	serves  sync.WaitGroup // listeners
	invites atomic.Int64   // new INVITEs being handled: calls set up, parked or bridged
	settled *settled       // requests whose transaction settle ended early

	// Stateless redirects (stateless.go).
	udp         net.PacketConn       // the UDP socket, which stateless answers are written to
	parser      *sip.Parser          // for the INVITEs readFilter takes
	ackParser   *sip.Parser          // for the ACKs (newACKParser)
	answered    *answered            // the INVITEs answered statelessly
	queue       *inviteQueue         // the INVITEs readFilter took, for its workers
	lateLog     *outage.Log          // the calls refused or dropped for taking too long
	onNewInvite sipgo.RequestHandler // what sipgo calls for an INVITE, for those readFilter takes

	stopping chan struct{} // closed when Shutdown starts

	mu       sync.Mutex
	closing  bool
	calls    map[string]*inCall // by callctx call ID
	expected map[string]string  // call IDs being created → end reason if ended meanwhile
	inbound  map[string]*inCall // by dialog ID (UAS)
	outbound map[string]*outLeg // by dialog ID (UAC)
}

var _ session.Transferer = (*Bridge)(nil)

// New checks cfg and returns a Bridge that writes to svc. It does not listen yet.
func New(svc *session.Service, cfg Config, log *slog.Logger) (*Bridge, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	if cfg.TLSListen != "" && (cfg.TLSConfig == nil || len(cfg.TLSConfig.Certificates) == 0 && cfg.TLSConfig.GetCertificate == nil) {
		return nil, fmt.Errorf("sip tls listen %s needs a certificate", cfg.TLSListen)
	}
	b := &Bridge{cfg: p.cfg, svc: svc, log: log, storeLog: outage.New(log, "the session store (new calls)", 0), settled: newSettled(), answered: newAnswered(), parser: sip.NewParser(), ackParser: newACKParser(), mapper: p.mapper, target: p.target, host: p.host, stopping: make(chan struct{}),
		lateLog: outage.New(log, "answering new SIP calls in time (while answers take longer than "+DefaultLateAfter.String()+", new calls are refused 503)", 0),
		auth:    p.auth, limit: newLimiter(p.cfg.RateLimit),
		watch: watcher{states: map[string]*TargetState{}},
		calls: map[string]*inCall{}, expected: map[string]string{}, inbound: map[string]*inCall{}, outbound: map[string]*outLeg{}}
	b.queue = newInviteQueue(b)
	return b, nil
}

// Validate reports every problem of a configuration, as New would, except a missing TLS
// certificate: the certificate is loaded where the bridge runs, the configuration may be
// checked elsewhere.
func (c Config) Validate() error {
	_, err := c.prepare()
	return err
}

// prepared is a checked Config with its defaults and parsed parts.
type prepared struct {
	cfg    Config
	mapper *sipcodec.Mapper
	target *target
	auth   *authenticator
	host   string
}

func (cfg Config) prepare() (prepared, error) {
	cfg = cfg.withDefaults()
	p := prepared{cfg: cfg}
	var errs []error
	switch cfg.Mode {
	case ModeAnswer:
	case ModeRedirect, ModeBridge:
		if cfg.Target == "" {
			errs = append(errs, fmt.Errorf("sip mode %s needs a target", cfg.Mode))
		}
	default:
		errs = append(errs, fmt.Errorf("sip mode %q: use answer, redirect or bridge", cfg.Mode))
	}
	if cfg.Target != "" {
		t, err := parseTarget(cfg.Target, cfg.SBC, false)
		if err != nil {
			errs = append(errs, fmt.Errorf("sip target: %w", err))
		} else {
			p.target = &t
		}
	}
	errs = append(errs, cfg.checkPeers()...)
	if err := p.cfg.Refer.prepare(); err != nil {
		errs = append(errs, err)
	}
	if err := checkContext(cfg.Carry); err != nil {
		errs = append(errs, fmt.Errorf("sip carry: %w", err))
	}
	auth, err := newAuthenticator(cfg.Auth)
	if err != nil {
		errs = append(errs, err)
	}
	p.auth = auth
	if cfg.RateLimit.PerSecond < 0 || cfg.RateLimit.Burst < 0 {
		errs = append(errs, errors.New("sip rate limit: per second and burst must not be negative"))
	}
	m, err := sipcodec.NewMapper(cfg.Map)
	if err != nil {
		errs = append(errs, err)
	}
	p.mapper = m
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		errs = append(errs, fmt.Errorf("sip listen %q: %w", cfg.Listen, err))
	}
	p.host = cfg.Advertise
	if p.host == "" {
		p.host = host
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			errs = append(errs, fmt.Errorf("sip listen %q is a wildcard address: set sip.advertise to the host peers reach", cfg.Listen))
		}
	}
	return p, errors.Join(errs...)
}

// withDefaults fills the zero fields that have a default.
func (cfg Config) withDefaults() Config {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeAnswer
	}
	if cfg.TransferTimeout <= 0 {
		cfg.TransferTimeout = DefaultTransferTimeout
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.MaxCalls <= 0 {
		cfg.MaxCalls = DefaultMaxCalls
	}
	if cfg.UDPReceiveBuffer <= 0 {
		cfg.UDPReceiveBuffer = DefaultUDPReceiveBuffer
	}
	if cfg.Keepalive.Timeout <= 0 {
		cfg.Keepalive.Timeout = DefaultKeepaliveTimeout
	}
	return cfg
}

// checkPeers checks the keep-alive, transfer and SBC addresses.
func (cfg Config) checkPeers() []error {
	var errs []error
	if cfg.Keepalive.Interval < 0 {
		errs = append(errs, errors.New("sip keepalive interval must not be negative"))
	}
	for _, t := range cfg.Keepalive.Targets {
		s := t
		if !strings.Contains(s, ":") || !strings.HasPrefix(strings.ToLower(s), "sip") {
			s = "sip:" + s
		}
		if _, err := parseTarget(s, cfg.SBC, false); err != nil {
			errs = append(errs, fmt.Errorf("sip keepalive target %q: %w", t, err))
		}
	}
	if cfg.TransferTarget != "" {
		if _, err := parseTarget(cfg.TransferTarget, cfg.SBC, true); err != nil {
			errs = append(errs, fmt.Errorf("sip transfer_target: %w", err))
		}
	}
	if cfg.SBC != "" {
		if _, _, err := splitHostPort(cfg.SBC); err != nil {
			errs = append(errs, fmt.Errorf("sip sbc %q: %w", cfg.SBC, err))
		}
	}
	return errs
}

// Start binds the listeners and serves in the background until Shutdown. It returns once
// the bridge accepts requests.
func (b *Bridge) Start(ctx context.Context) error {
	pc, ln, err := listenPair(b.cfg.Listen)
	if err != nil {
		return fmt.Errorf("sip listen %s: %w", b.cfg.Listen, err)
	}
	b.addr = ln.Addr().String()
	b.udp = pc
	b.udpBuffer = setReceiveBuffer(pc, b.cfg.UDPReceiveBuffer)
	var tln net.Listener
	if b.cfg.TLSListen != "" {
		tln, err = tls.Listen("tcp", b.cfg.TLSListen, b.cfg.TLSConfig)
		if err != nil {
			pc.Close()
			ln.Close()
			return fmt.Errorf("sip tls listen %s: %w", b.cfg.TLSListen, err)
		}
		b.tlsAddr = tln.Addr().String()
	}

	if err := b.newUA(); err != nil {
		pc.Close()
		ln.Close()
		if tln != nil {
			tln.Close()
		}
		return fmt.Errorf("sip user agent: %w", err)
	}
	b.dialogUAs(tln != nil)

	b.onNewInvite = b.settling(b.observed(b.guard(b.onInvite)))
	b.srv.OnInvite(b.onNewInvite)
	b.srv.OnAck(b.observed(b.onAck))
	b.srv.OnBye(b.settling(b.observed(b.guard(b.onBye))))
	b.srv.OnCancel(b.observed(b.onCancel))
	b.srv.OnOptions(b.observed(b.onOptions))
	b.srv.OnNotify(b.observed(b.guard(b.onNotify)))
	b.srv.OnRefer(b.observed(b.guard(b.onRefer)))
	b.srv.OnNoRoute(b.observed(b.onNoRoute))

	b.ctx, b.cancel = context.WithCancel(context.Background())
	go b.followEnds()
	go b.keepalive()
	serve := func(name string, f func() error) {
		b.serves.Add(1)
		go func() {
			defer b.serves.Done()
			if err := f(); err != nil && b.ctx.Err() == nil {
				b.log.Error("sip listener stopped", "transport", name, "error", err)
			}
		}()
	}
	serve("udp", func() error { return b.srv.ServeUDP(pc) })
	serve("tcp", func() error { return b.srv.ServeTCP(ln) })
	if tln != nil {
		serve("tls", func() error { return b.srv.ServeTLS(tln) })
	}
	go func() {
		<-b.ctx.Done()
		pc.Close()
		ln.Close()
		if tln != nil {
			tln.Close()
		}
	}()
	attrs := []any{"udp", b.addr, "tcp", b.addr, "mode", string(b.cfg.Mode)}
	if b.tlsAddr != "" {
		attrs = append(attrs, "tls", b.tlsAddr)
	}
	if b.udpBuffer > 0 {
		attrs = append(attrs, "udp_receive_buffer", b.udpBuffer)
	}
	b.log.Info("sip listening", attrs...)
	if b.udpBuffer > 0 && b.udpBuffer < b.cfg.UDPReceiveBuffer {
		b.log.Warn("sip udp receive buffer is smaller than asked: the system's limit caps it; raise net.core.rmem_max to take bursts of requests without loss",
			"asked", b.cfg.UDPReceiveBuffer, "got", b.udpBuffer)
	}
	return nil
}

// newUA makes sipgo's user agent, server and client, logging at warning
// level and above through the bridge's logger.
func (b *Bridge) newUA() error {
	sipLog := slog.New(minLevel{h: b.log.With("component", "sipgo").Handler(), min: slog.LevelWarn})
	var err error
	b.ua, err = sipgo.NewUA(
		sipgo.WithUserAgent(b.cfg.UserAgent),
		sipgo.WithUserAgentHostname(b.host),
		sipgo.WithUserAgenTLSConfig(b.cfg.TLSConfig),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(sipLog), sip.WithTransportLayerReadFilter(b.readFilter)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sipLog)),
	)
	if err == nil {
		b.srv, err = sipgo.NewServer(b.ua, sipgo.WithServerLogger(sipLog))
	}
	if err == nil {
		b.client, err = sipgo.NewClient(b.ua, sipgo.WithClientLogger(sipLog), sipgo.WithClientHostname(b.host))
	}
	return err
}

// dialogUAs sets the dialog user agents, one per transport the bridge
// listens on, each with its Contact.
func (b *Bridge) dialogUAs(withTLS bool) {
	_, portText, _ := net.SplitHostPort(b.addr)
	port, _ := strconv.Atoi(portText)
	b.dua = map[string]*sipgo.DialogUA{
		"udp": {Client: b.client, ContactHDR: b.contact(port, "")},
		"tcp": {Client: b.client, ContactHDR: b.contact(port, "tcp")},
	}
	if withTLS {
		_, tp, _ := net.SplitHostPort(b.tlsAddr)
		tport, _ := strconv.Atoi(tp)
		b.dua["tls"] = &sipgo.DialogUA{Client: b.client, ContactHDR: b.contact(tport, "tls")}
	}
}

func (b *Bridge) contact(port int, transport string) sip.ContactHeader {
	u := sip.Uri{Scheme: "sip", User: "callctx", Host: b.host, Port: port}
	if transport != "" {
		u.UriParams = sip.HeaderParams{{K: "transport", V: transport}}
	}
	return sip.ContactHeader{Address: u}
}

// Addr returns the host:port the bridge listens on for UDP and TCP, once started.
func (b *Bridge) Addr() string { return b.addr }

// UDPReceiveBuffer returns the receive buffer the system granted the UDP socket, in bytes
// (0 when it does not say).
func (b *Bridge) UDPReceiveBuffer() int { return b.udpBuffer }

// TLSAddr returns the host:port of the TLS listener, "" without TLS.
func (b *Bridge) TLSAddr() string { return b.tlsAddr }

// Shutdown stops accepting calls, hangs up the calls the bridge holds (their sessions end
// with reason "shutdown"), waits for them until ctx is done, and closes the listeners.
func (b *Bridge) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		return nil
	}
	b.closing = true
	close(b.stopping)
	b.storeLog.Close()
	b.lateLog.Close()
	calls := make([]*inCall, 0, len(b.calls))
	for _, c := range b.calls {
		calls = append(calls, c)
	}
	b.mu.Unlock()
	for _, c := range calls {
		c.hangup("shutdown")
	}
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("sip shutdown: %w", ctx.Err())
	}
	b.cancel()
	b.ua.Close()
	b.serves.Wait()
	return err
}

// guard answers 503 to a new call once the bridge is shutting down, or when it waited too
// long to be served (waitedTooLong), and counts the handler as work in progress otherwise.
func (b *Bridge) guard(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		newCall := req.IsInvite() && !hasToTag(req)
		if newCall && b.settled.has(req) {
			return // a copy of an INVITE answered already (see settled)
		}
		if st := statelessOf(tx); newCall && st != nil {
			if waited, late := b.queue.waitedTooLong(st); late {
				b.refuseLate(req, tx, waited)
				return
			}
		}
		b.mu.Lock()
		closing := b.closing
		if !closing {
			b.wg.Add(1)
		}
		b.mu.Unlock()
		if closing && newCall {
			b.respond(req, tx, 503, "Service Unavailable", sip.NewHeader("Retry-After", "5"))
			return
		}
		if !closing {
			defer b.wg.Done()
		}
		if newCall {
			defer b.invites.Add(-1)
			if n := b.invites.Add(1); n > int64(b.cfg.MaxCalls) {
				b.log.Warn("sip call refused: too many calls", "calls", n-1, "max", b.cfg.MaxCalls)
				b.respond(req, tx, 503, "Service Unavailable (too many calls)", sip.NewHeader("Retry-After", "5"))
				return
			}
		}
		h(req, tx)
	}
}

// respond sends a response and logs a failure to send it.
func (b *Bridge) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hs {
		res.AppendHeader(h)
	}
	res.AppendHeader(sip.NewHeader("Server", b.cfg.UserAgent))
	if err := tx.Respond(res); err != nil {
		b.log.Warn("sip respond failed", "method", string(req.Method), "code", code, "sip_call_id", callIDOf(req), "error", err)
	}
}

func (b *Bridge) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	b.respond(req, tx, 200, "OK", sip.NewHeader("Allow", allowed), sip.NewHeader("Accept", "application/sdp"))
}

func (b *Bridge) onNoRoute(req *sip.Request, tx sip.ServerTransaction) {
	if req.IsAck() {
		return
	}
	b.respond(req, tx, 405, "Method Not Allowed", sip.NewHeader("Allow", allowed))
}

func (b *Bridge) onAck(req *sip.Request, tx sip.ServerTransaction) {
	// An ACK that the caller's BYE overtook is too late: sipgo would make the ended dialog
	// confirmed again (see ended).
	if c := b.inboundOf(req); c != nil && !ended(c.dlg) {
		_ = c.dlg.ReadAck(req, tx) // an ACK of a re-INVITE has a later CSeq: nothing to do
	}
}

func (b *Bridge) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	// sipgo answers a CANCEL that matches a pending INVITE itself (200, then 487 to the
	// INVITE); one that reaches this handler matches nothing.
	b.respond(req, tx, 481, "Call/Transaction Does Not Exist")
}

func (b *Bridge) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if b.settled.has(req) {
		// A retransmission of a BYE answered already: the caller missed the 200.
		b.respond(req, tx, 200, "OK")
		return
	}
	if c := b.inboundOf(req); c != nil {
		c.onBye(req, tx)
		return
	}
	if o := b.outboundOf(req); o != nil {
		o.onBye(req, tx)
		return
	}
	b.respond(req, tx, 481, "Call/Transaction Does Not Exist")
}

func (b *Bridge) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	if c := b.inboundOf(req); c != nil {
		c.onNotify(req, tx)
		return
	}
	b.respond(req, tx, 481, "Call/Transaction Does Not Exist")
}

func (b *Bridge) inboundOf(req *sip.Request) *inCall {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inbound[id]
}

func (b *Bridge) outboundOf(req *sip.Request) *outLeg {
	id, err := sip.DialogIDFromRequestUAC(req)
	if err != nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.outbound[id]
}

// setReceiveBuffer asks for a receive buffer of n bytes on pc, a UDP socket, and returns
// what the system granted (0 when it does not say).
func setReceiveBuffer(pc net.PacketConn, n int) int {
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return 0
	}
	_ = uc.SetReadBuffer(n) // refused: the system's default stays, and is what is reported
	return receiveBuffer(uc)
}

// listenPair binds UDP and TCP on the same port. With port 0 it retries until the port the
// system gave UDP is free for TCP too.
func listenPair(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for i := 0; ; i++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		p := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if port != "0" || i >= 20 {
			return nil, nil, err
		}
	}
}

func hasToTag(req *sip.Request) bool {
	to := req.To()
	return to != nil && to.Params.Has("tag")
}

func callIDOf(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

// minLevel drops records below min; sipgo logs every retransmission and parse detail at
// debug and info, which is noise in callctx's log.
type minLevel struct {
	h   slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}
func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }
func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h: m.h.WithAttrs(as), min: m.min}
}
func (m minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h: m.h.WithGroup(name), min: m.min}
}

// transportOf returns the lower-case transport of a request ("udp", "tcp", "tls").
func transportOf(req *sip.Request) string { return strings.ToLower(req.Transport()) }
