package main_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clientsConfig is a node's configuration with a token (its secret is
// "right") and http.clients set by extra.
func clientsConfig(t *testing.T, extra string) string {
	return fmt.Sprintf(`data:
  dir: %s
flows:
  dir: %s
sip:
  listen: ""
auth:
  tokens:
    - {name: crm, token: right, scopes: [sessions:read, sessions:write, calls:write]}
http:
  access_log: false
  clients:
%s
log:
  format: json
`, t.TempDir(), t.TempDir(), extra)
}

// TestServe_ClientLimits: callctx serve, with the default client limits and
// a proxy in front (so that each test client is its X-Forwarded-For),
// answers a client guessing tokens 401 for its first 20 guesses and 429
// with Retry-After after, the right token included; and a client faster
// than 200 requests a second 429 once its burst of 400 is spent. Another
// client is served all along.
func TestServe_ClientLimits(t *testing.T) {
	n := startNode(t, buildCallctx(t), "limited", clientsConfig(t, "    trusted_proxies: [127.0.0.1]"))

	statuses := map[int]int{}
	for i := 0; i < 200; i++ {
		r, err := n.do("GET", "/v1/calls", nil, "Authorization", "Bearer guess-"+strconv.Itoa(i), "X-Forwarded-For", "198.51.100.7")
		if err != nil {
			t.Fatal(err)
		}
		statuses[r.Status]++
		if r.Status == http.StatusTooManyRequests {
			if s, _ := strconv.Atoi(r.Header.Get("Retry-After")); s < 1 || s > 6 || r.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("429 with Retry-After %q, %s", r.Header.Get("Retry-After"), r.Body)
			}
		}
	}
	if statuses[http.StatusUnauthorized] < 20 || statuses[http.StatusUnauthorized] > 22 || statuses[http.StatusTooManyRequests] < 178 {
		t.Fatalf("200 wrong tokens: %v; want 20 (a guess or two more as the bucket refills) 401s, then 429s", statuses)
	}
	n.must(http.StatusTooManyRequests, "GET", "/v1/calls", nil, "Authorization", "Bearer right", "X-Forwarded-For", "198.51.100.7")
	n.must(http.StatusOK, "GET", "/v1/calls", nil, "Authorization", "Bearer right", "X-Forwarded-For", "198.51.100.8")

	// 1000 requests as fast as one connection sends them: what is served
	// is the burst and the rate over the time they took.
	start := time.Now()
	served, limited := 0, 0
	for i := 0; i < 1000; i++ {
		r, err := n.do("GET", "/healthz", nil, "X-Forwarded-For", "198.51.100.9")
		if err != nil {
			t.Fatal(err)
		}
		switch r.Status {
		case http.StatusOK:
			served++
		case http.StatusTooManyRequests:
			limited++
		default:
			t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
		}
	}
	took := time.Since(start)
	if most := 400 + int(200*took.Seconds()) + 1; served < 400 || served > most {
		t.Fatalf("1000 requests in %v: %d served, %d limited; want 400 to %d served", took, served, limited, most)
	}
	t.Logf("1000 requests in %v from one client: %d served, %d answered 429", took, served, limited)
	n.must(http.StatusOK, "GET", "/v1/calls", nil, "Authorization", "Bearer right", "X-Forwarded-For", "198.51.100.8")
}

// TestServe_ClientConns: http.clients.max_conns caps a client's connections,
// here on loopback with exempt emptied (loopback is exempt by default).
func TestServe_ClientConns(t *testing.T) {
	n := startNode(t, buildCallctx(t), "conns", clientsConfig(t, "    max_conns: 4\n    exempt: []"))
	addr := strings.TrimPrefix(n.URL, "http://")
	status := func(c net.Conn) string {
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 12)
		if _, err := io.ReadFull(c, b); err != nil {
			return err.Error()
		}
		return string(b[9:12])
	}
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		want := "200"
		if i == 4 {
			want = "429"
		}
		if got := status(c); got != want {
			t.Fatalf("connection %d: %s, want %s", i+1, got, want)
		}
	}
}
