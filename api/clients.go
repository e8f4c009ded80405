package api

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// ClientLimits bound what one client, a source address, may ask of the
// API, so that a flood or a brute force from one place does not cost the
// others. A zero field turns its limit off; callctx serve sets the
// documented defaults (docs/limits.md). An IPv6 client is its /64: one
// host can use every address of its network.
type ClientLimits struct {
	// RequestsPerSecond, with bursts of Burst, is how fast a client may
	// send requests; faster ones are answered 429 with Retry-After.
	RequestsPerSecond float64
	Burst             int
	// MaxConns is how many connections a client may hold open; a request
	// on one more is answered 429 with Retry-After, and that connection
	// closed.
	MaxConns int
	// AuthFailuresPerMinute, with bursts of AuthFailureBurst, is how many
	// failed authentications (a wrong or expired token, password, client
	// secret or refresh token; not a request without credentials) a client
	// may make; past that, every request of it that needs a token, and its
	// token requests, are answered 429 with Retry-After until the bucket
	// refills, whether its credentials are right or not, so that guessing
	// learns nothing.
	AuthFailuresPerMinute float64
	AuthFailureBurst      int
	// TrustedProxies are the load balancers and proxies in front of
	// callctx: for a request from one of them, the client is the last
	// address of X-Forwarded-For that is not a trusted proxy. Their
	// connections are not counted against MaxConns.
	TrustedProxies []netip.Prefix
	// Exempt clients are not held to RequestsPerSecond and MaxConns (the
	// failed-authentication limit holds for every client): the host's own
	// tools and benchmarks, on loopback by default.
	Exempt []netip.Prefix
}

// maxClients bounds the clients tracked: past it, those with nothing to
// remember (no open connection, full buckets) are forgotten.
const maxClients = 10000

// clientsSweepEvery is how often the clients with nothing to remember are
// forgotten, however few they are.
const clientsSweepEvery = time.Minute

// clients tracks the clients against ClientLimits.
type clients struct {
	lim ClientLimits

	mu    sync.Mutex
	m     map[netip.Addr]*client
	swept time.Time
}

// client is one source address: its request and failed-authentication
// buckets (nil when the limit is off) and its open connections.
type client struct {
	requests *rate.Limiter
	auth     *rate.Limiter
	conns    int
}

func newClients(lim ClientLimits) *clients {
	return &clients{lim: lim, m: map[netip.Addr]*client{}, swept: time.Now()}
}

// get returns the client of addr, tracking it from now on.
func (cs *clients) get(addr netip.Addr) *client {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cl := cs.m[addr]
	if cl == nil {
		if now := time.Now(); len(cs.m) >= maxClients && now.Sub(cs.swept) >= time.Second || now.Sub(cs.swept) >= clientsSweepEvery {
			cs.sweep(now)
		}
		cl = &client{}
		if cs.lim.RequestsPerSecond > 0 {
			cl.requests = rate.NewLimiter(rate.Limit(cs.lim.RequestsPerSecond), max(cs.lim.Burst, 1))
		}
		if cs.lim.AuthFailuresPerMinute > 0 {
			cl.auth = rate.NewLimiter(rate.Limit(cs.lim.AuthFailuresPerMinute/60), max(cs.lim.AuthFailureBurst, 1))
		}
		cs.m[addr] = cl
	}
	return cl
}

// sweep forgets the clients that hold no connection and whose buckets are
// full: what they did has no effect any more. Called with mu held.
func (cs *clients) sweep(now time.Time) {
	cs.swept = now
	for addr, cl := range cs.m {
		if cl.conns == 0 && full(cl.requests, now) && full(cl.auth, now) {
			delete(cs.m, addr)
		}
	}
}

func full(l *rate.Limiter, now time.Time) bool {
	return l == nil || l.TokensAt(now) >= float64(l.Burst())
}

// retryAfter is the Retry-After (whole seconds, at least 1) until l has a
// token again.
func retryAfter(l *rate.Limiter, now time.Time) string {
	missing := 1 - l.TokensAt(now)
	secs := 1.0
	if l.Limit() > 0 && missing > 0 {
		secs = math.Max(1, math.Ceil(missing/float64(l.Limit())))
	}
	return strconv.Itoa(int(secs))
}

// key is the address a client is known by: addr, or for IPv6 its /64.
func key(addr netip.Addr) netip.Addr {
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.Addr()
	}
	return addr
}

// peer is the address of a connection's or request's remote end.
func peer(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// clientAddr returns the address of the client that sent r: the peer, or
// for a peer that is a trusted proxy, the last untrusted address of its
// X-Forwarded-For.
func (cs *clients) clientAddr(r *http.Request) netip.Addr {
	addr := peer(r.RemoteAddr)
	if !in(cs.lim.TrustedProxies, addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if addr = hop.Unmap(); !in(cs.lim.TrustedProxies, addr) {
			break
		}
	}
	return addr
}

func in(prefixes []netip.Prefix, addr netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// conn is what the requests of one connection share (ConnContext), found
// once when it is accepted: the connection itself, its count against
// MaxConns, and its peer, so that a request that did not come through a
// trusted proxy finds its client without parsing an address.
type conn struct {
	nc      net.Conn     // as the kernel gave it
	limited *limitedConn // nil: Listener did not count it
	peer    netip.Addr
	proxied bool // the peer is a trusted proxy: each request names its client
}

// describe finds, once, what the requests of c (the connection as Listener
// returned it) share.
func (cs *clients) describe(c net.Conn) *conn {
	cn := &conn{nc: c, peer: peer(c.RemoteAddr().String())}
	if lc, ok := c.(*limitedConn); ok {
		cn.nc, cn.limited = lc.Conn, lc
	}
	cn.proxied = in(cs.lim.TrustedProxies, cn.peer)
	return cn
}

// connOf returns the connection a request arrived on, nil when the server
// was not given ConnContext.
func connOf(c *gin.Context) *conn {
	cn, _ := c.Request.Context().Value(connKey{}).(*conn)
	return cn
}

// ctxClientAddr holds the address of the client of a request that came
// through a trusted proxy.
const ctxClientAddr = "callctx.clientAddr"

// clientOf returns the address of the request's client: its connection's
// peer, or for a trusted proxy's request the address it names, found once.
func (h *Handler) clientOf(c *gin.Context) netip.Addr {
	if cn := connOf(c); cn != nil && !cn.proxied {
		return cn.peer
	}
	if v, ok := c.Get(ctxClientAddr); ok {
		return v.(netip.Addr)
	}
	addr := h.clients.clientAddr(c.Request)
	c.Set(ctxClientAddr, addr)
	return addr
}

// limitRequests is the first handler of every route (after the flags that
// shape its problems): it answers 429 when the request's client holds too
// many connections or sends too fast.
func (h *Handler) limitRequests(c *gin.Context) {
	lim := &h.clients.lim
	if lim.RequestsPerSecond <= 0 && lim.MaxConns <= 0 {
		return
	}
	addr := h.clientOf(c)
	if in(lim.Exempt, addr) {
		return
	}
	if cn := connOf(c); cn != nil && cn.limited != nil && cn.limited.over {
		c.Header("Connection", "close")
		c.Header("Retry-After", "1")
		writeProblem(c, http.StatusTooManyRequests, typeTooMany, "this client has "+strconv.Itoa(lim.MaxConns)+" connections open, its limit; reuse them", nil)
		return
	}
	if lim.RequestsPerSecond <= 0 {
		return
	}
	if cl := h.clients.get(key(addr)); !cl.requests.Allow() {
		c.Header("Retry-After", retryAfter(cl.requests, time.Now()))
		writeProblem(c, http.StatusTooManyRequests, typeTooMany, "this client sends more than "+strconv.FormatFloat(lim.RequestsPerSecond, 'f', -1, 64)+" requests a second, its limit; slow down", nil)
	}
}

// authLimiter is the failed-authentication bucket of the request's client,
// nil when that limit is off.
func (h *Handler) authLimiter(c *gin.Context) *rate.Limiter {
	if h.clients.lim.AuthFailuresPerMinute <= 0 {
		return nil
	}
	return h.clients.get(key(h.clientOf(c))).auth
}

// authLocked answers 429 and reports true when the request's client has
// failed to authenticate too often lately.
func (h *Handler) authLocked(c *gin.Context) bool {
	l := h.authLimiter(c)
	if l == nil {
		return false
	}
	now := time.Now()
	if l.TokensAt(now) >= 1 {
		return false
	}
	c.Header("Retry-After", retryAfter(l, now))
	writeProblem(c, http.StatusTooManyRequests, typeTooMany, "too many failed authentications from this client; try again later", nil)
	return true
}

// authFailed counts a failed authentication of the request's client.
func (h *Handler) authFailed(c *gin.Context) {
	if l := h.authLimiter(c); l != nil {
		l.Allow()
	}
}

// limitedConn is a connection counted against its client's MaxConns.
type limitedConn struct {
	net.Conn
	cs    *clients
	cl    *client // nil: not counted (a trusted proxy, an exempt client)
	over  bool    // it is past the client's MaxConns: its first request is refused
	close sync.Once
}

func (c *limitedConn) Close() error {
	c.close.Do(func() {
		if c.cl != nil {
			c.cs.mu.Lock()
			c.cl.conns--
			c.cs.mu.Unlock()
		}
	})
	return c.Conn.Close()
}

// Listener wraps ln so that the handler counts each client's connections
// against ClientLimits.MaxConns (and answers 429 on one too many). Serve
// the handler on it with ConnContext set.
func (h *Handler) Listener(ln net.Listener) net.Listener {
	if h.clients.lim.MaxConns <= 0 {
		return ln
	}
	return &limitedListener{Listener: ln, cs: h.clients}
}

type limitedListener struct {
	net.Listener
	cs *clients
}

func (l *limitedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	lc := &limitedConn{Conn: c, cs: l.cs}
	addr := peer(c.RemoteAddr().String())
	// A proxy carries many clients' connections; exempt clients are not held to the cap.
	if !in(l.cs.lim.TrustedProxies, addr) && !in(l.cs.lim.Exempt, addr) {
		lc.cl = l.cs.get(key(addr))
		l.cs.mu.Lock()
		lc.cl.conns++
		lc.over = lc.cl.conns > l.cs.lim.MaxConns
		l.cs.mu.Unlock()
	}
	return lc, nil
}

// netConn is the connection a request arrived on, unwrapped; nil when the
// server was not given ConnContext.
func netConn(c *gin.Context) net.Conn {
	if cn := connOf(c); cn != nil {
		return cn.nc
	}
	return nil
}
