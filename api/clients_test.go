package api_test

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/api"
	"github.com/callctx/callctx/session"
)

// behindProxy: the test server's peer, 127.0.0.1, is a trusted proxy, so
// that each test client is the X-Forwarded-For it sends.
var behindProxy = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

func limitedServer(t *testing.T, lim api.ClientLimits) *testServer {
	t.Helper()
	tokens := []api.Token{{Name: "crm", SHA256: sha256.Sum256([]byte("right")), Scopes: []api.Scope{api.ScopeAdmin}}}
	_, s := serve(t, api.Config{Service: session.NewService(openStore(t), session.Options{}), Tokens: tokens, Clients: lim})
	return s
}

// TestClients_AuthFailures: a client that guesses tokens gets 401 for its
// first few failures and then 429 with Retry-After for every request that
// needs a token, the right one included, until its bucket refills; other
// clients are not affected.
func TestClients_AuthFailures(t *testing.T) {
	s := limitedServer(t, api.ClientLimits{AuthFailuresPerMinute: 120, AuthFailureBurst: 5, TrustedProxies: behindProxy})
	statuses := map[int]int{}
	for i := 0; i < 200; i++ {
		res := s.do("GET", "/v1/calls", nil, "Authorization", "Bearer guess-"+strconv.Itoa(i), "X-Forwarded-For", "198.51.100.7")
		statuses[res.Status]++
		if res.Status == http.StatusTooManyRequests {
			wantProblem(t, res, http.StatusTooManyRequests, "failed authentications")
			if res.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		}
	}
	if statuses[http.StatusUnauthorized] > 6 || statuses[http.StatusTooManyRequests] < 190 {
		t.Fatalf("200 wrong tokens: %v; want 5 (or 6) 401s and 429s after", statuses)
	}
	// The right token from the guessing client: refused too, or guessing
	// would tell which token is right.
	res := s.do("GET", "/v1/calls", nil, "Authorization", "Bearer right", "X-Forwarded-For", "198.51.100.7")
	wantProblem(t, res, http.StatusTooManyRequests, "failed authentications")
	// OAuth2 password guesses are refused the same way.
	if r := tokenRequest(t, s, "grant_type=password&username=a&password=b", "198.51.100.7"); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("oauth from the locked client: %d", r.StatusCode)
	}
	// Another client is not affected.
	if res := s.do("GET", "/v1/calls", nil, "Authorization", "Bearer right", "X-Forwarded-For", "198.51.100.8"); res.Status != http.StatusOK {
		t.Fatalf("another client: %d %s", res.Status, res.Body)
	}
	// Two failures a second refill: after Retry-After the client may try again.
	time.Sleep(1100 * time.Millisecond)
	if res := s.do("GET", "/v1/calls", nil, "Authorization", "Bearer right", "X-Forwarded-For", "198.51.100.7"); res.Status != http.StatusOK {
		t.Fatalf("after the wait: %d %s", res.Status, res.Body)
	}
}

func tokenRequest(t *testing.T, s *testServer, form, client string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL+"/oauth/token", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", client)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// TestClients_AuthFailuresCounted: what counts as a failed authentication.
// Wrong OAuth2 passwords and babelforce access tokens do; requests without
// credentials do not (a console asks for its token after one); an IPv6
// client is its /64.
func TestClients_AuthFailuresCounted(t *testing.T) {
	s := limitedServer(t, api.ClientLimits{AuthFailuresPerMinute: 1, AuthFailureBurst: 3, TrustedProxies: behindProxy})
	for i := 0; i < 3; i++ {
		if r := tokenRequest(t, s, "grant_type=password&username=a&password=guess"+strconv.Itoa(i), "198.51.100.9"); r.StatusCode != http.StatusBadRequest {
			t.Fatalf("password guess %d: %d", i, r.StatusCode)
		}
	}
	if res := s.do("GET", "/v1/calls", nil, "Authorization", "Bearer right", "X-Forwarded-For", "198.51.100.9"); res.Status != http.StatusTooManyRequests {
		t.Fatalf("a static token after 3 password guesses: %d", res.Status)
	}

	for i := 0; i < 3; i++ {
		res := s.do("GET", "/api/v2/sessions/x", nil, "X-Auth-Access-Id", "crm", "X-Auth-Access-Token", "guess", "X-Forwarded-For", "198.51.100.10")
		if res.Status != http.StatusUnauthorized {
			t.Fatalf("babelforce guess %d: %d", i, res.Status)
		}
	}
	res := s.do("GET", "/api/v2/sessions/x", nil, "Authorization", "Bearer right", "X-Forwarded-For", "198.51.100.10")
	p := wantProblem(t, res, http.StatusTooManyRequests, "failed authentications")
	if p["success"] != false {
		t.Errorf("a babelforce route's 429 lacks its envelope: %s", res.Body)
	}

	for i := 0; i < 20; i++ {
		if res := s.do("GET", "/v1/calls", nil, "X-Forwarded-For", "198.51.100.11"); res.Status != http.StatusUnauthorized {
			t.Fatalf("request %d without a token: %d", i, res.Status)
		}
	}
	if res := s.do("GET", "/v1/calls", nil, "Authorization", "Bearer right", "X-Forwarded-For", "198.51.100.11"); res.Status != http.StatusOK {
		t.Fatalf("the right token after 20 requests without one: %d", res.Status)
	}

	for i := 0; i < 3; i++ {
		s.do("GET", "/v1/calls", nil, "Authorization", "Bearer guess", "X-Forwarded-For", fmt.Sprintf("2001:db8:1:2::%x", i+1))
	}
	if res := s.do("GET", "/v1/calls", nil, "Authorization", "Bearer right", "X-Forwarded-For", "2001:db8:1:2:ffff::1"); res.Status != http.StatusTooManyRequests {
		t.Fatalf("another address of the guessing /64: %d", res.Status)
	}
	if res := s.do("GET", "/v1/calls", nil, "Authorization", "Bearer right", "X-Forwarded-For", "2001:db8:1:3::1"); res.Status != http.StatusOK {
		t.Fatalf("another /64: %d", res.Status)
	}
}

// TestClients_Requests: a client faster than its request rate gets 429 with
// Retry-After, on routes and on what is not a route; what it sent within
// the rate was served. An exempt client is not limited.
func TestClients_Requests(t *testing.T) {
	s := limitedServer(t, api.ClientLimits{RequestsPerSecond: 20, Burst: 10, TrustedProxies: behindProxy,
		Exempt: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	s.token = "right"
	for _, path := range []string{"/healthz", "/v1/calls", "/no/such/route"} {
		ok, limited := 0, 0
		for i := 0; i < 50; i++ {
			res := s.do("GET", path, nil, "X-Forwarded-For", "198.51.100.20")
			switch res.Status {
			case http.StatusTooManyRequests:
				limited++
				wantProblem(t, res, http.StatusTooManyRequests, "requests a second")
				if res.Header.Get("Retry-After") != "1" {
					t.Fatalf("429 with Retry-After %q", res.Header.Get("Retry-After"))
				}
			default:
				ok++
			}
		}
		if ok < 10 || ok > 20 || limited < 30 {
			t.Fatalf("%s: 50 requests at once: %d answered, %d limited; want the burst of 10 (and what refilled) answered", path, ok, limited)
		}
		time.Sleep(600 * time.Millisecond) // the bucket refills
	}
	for i := 0; i < 50; i++ {
		if res := s.do("GET", "/healthz", nil, "X-Forwarded-For", "192.0.2.1"); res.Status != http.StatusOK {
			t.Fatalf("exempt client, request %d: %d", i, res.Status)
		}
	}
}

// TestClients_Conns: a client may hold MaxConns connections; a request on
// one more is answered 429 and that connection closed, and once it closes
// one, a new one is served. An exempt client's connections are not counted.
func TestClients_Conns(t *testing.T) {
	for _, exempt := range []bool{false, true} {
		lim := api.ClientLimits{MaxConns: 3}
		if exempt {
			lim.Exempt = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		}
		s := limitedServer(t, lim)
		addr := strings.TrimPrefix(s.URL, "http://")
		get := func(c net.Conn) (int, string) {
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			b := make([]byte, 4096)
			n, _ := io.ReadAtLeast(c, b, 12)
			status, _ := strconv.Atoi(string(b[9:12]))
			return status, string(b[:n])
		}
		dial := func() net.Conn {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		}
		var conns []net.Conn
		for i := 0; i < 4; i++ {
			conns = append(conns, dial())
		}
		for i, c := range conns[:3] {
			if status, _ := get(c); status != http.StatusOK {
				t.Fatalf("connection %d: %d", i, status)
			}
		}
		status, text := get(conns[3])
		if exempt {
			if status != http.StatusOK {
				t.Fatalf("an exempt client's fourth connection: %d\n%s", status, text)
			}
			continue
		}
		if status != http.StatusTooManyRequests || !strings.Contains(text, "Retry-After: 1") || !strings.Contains(text, "application/problem+json") {
			t.Fatalf("a fourth connection: %d\n%s", status, text)
		}
		if n, err := conns[3].Read(make([]byte, 1)); err == nil {
			t.Fatalf("the fourth connection stays open (read %d bytes)", n)
		}
		conns[0].Close()
		time.Sleep(100 * time.Millisecond)
		if status, _ := get(dial()); status != http.StatusOK {
			t.Fatalf("a new connection after one closed: %d", status)
		}
	}
}

// TestClients_Off: without limits, a client may guess, hurry and open
// connections as it likes (the handler's zero configuration).
func TestClients_Off(t *testing.T) {
	s := limitedServer(t, api.ClientLimits{})
	for i := 0; i < 100; i++ {
		if res := s.do("GET", "/v1/calls", nil, "Authorization", "Bearer guess"); res.Status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, res.Status)
		}
	}
}
