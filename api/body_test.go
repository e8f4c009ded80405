package api_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRequestBody sends a session write's body in each way HTTP/1.1
// allows, over a raw connection: with its length declared (small, and past
// the size read in one allocation), chunked, shorter than declared, past
// the server's limit either way, and with media-type parameters. Each is
// written or refused as a whole, and what is written is what was sent.
func TestRequestBody(t *testing.T) {
	_, s := newTestServer(t, nil) // MaxBodyBytes 64 KiB
	id := s.createCall(nil)
	path := "/v1/sessions/" + id
	long := strings.Repeat("x", 7000) // under the 8 KiB value limit; three of them pass 16 KiB

	chunked := func(body string) string {
		var b strings.Builder
		for len(body) > 0 {
			n := min(len(body), 1000)
			fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
			body = body[n:]
		}
		return b.String() + "0\r\n\r\n"
	}
	for _, tc := range []struct {
		name    string
		headers string // after the request line and Host
		body    string
		status  int
		want    map[string]string // variables the session holds after
	}{
		{name: "declared length", headers: "Content-Type: application/json\r\nContent-Length: 16\r\n", body: `{"ivr.a":"one"}` + "\n", status: 200, want: map[string]string{"ivr.a": "one"}},
		{name: "declared length past the exact read", headers: "Content-Type: application/json\r\nContent-Length: %d\r\n",
			body: `{"ivr.l1":"` + long + `","ivr.l2":"` + long + `","ivr.l3":"` + long + `"}`, status: 200, want: map[string]string{"ivr.l3": long}},
		{name: "chunked", headers: "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", body: chunked(`{"ivr.b":"` + long + `"}`), status: 200, want: map[string]string{"ivr.b": long}},
		{name: "charset parameter", headers: "Content-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\n", body: `{"ivr.c":"three"}`, status: 200, want: map[string]string{"ivr.c": "three"}},
		{name: "upper-case media type", headers: "Content-Type: Application/JSON\r\nContent-Length: %d\r\n", body: `{"ivr.d":"four"}`, status: 200, want: map[string]string{"ivr.d": "four"}},
		{name: "past the limit, declared", headers: "Content-Type: application/json\r\nContent-Length: %d\r\n", body: `{"ivr.e":"` + strings.Repeat("y", 70<<10) + `"}`, status: 413},
		{name: "past the limit, chunked", headers: "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", body: chunked(`{"ivr.e":"` + strings.Repeat("y", 70<<10) + `"}`), status: 413},
		{name: "shorter than declared", headers: "Content-Type: application/json\r\nContent-Length: 40\r\n", body: `{"ivr.f":"five"}`, status: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			headers := tc.headers
			if strings.Contains(headers, "%d") {
				headers = fmt.Sprintf(headers, len(tc.body))
			}
			conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			req := "POST " + path + " HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n" + tc.body
			if _, err := io.WriteString(conn, req); err != nil {
				t.Fatal(err)
			}
			if tc.status == 400 {
				// The body never completes: the server answers once the
				// client gives up sending.
				conn.(*net.TCPConn).CloseWrite()
			}
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %.300s", res.StatusCode, tc.status, body)
			}
			if tc.status != 200 {
				if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Fatalf("Content-Type %q, want a problem: %.300s", ct, body)
				}
				return
			}
			var got struct{ Variables map[string]any }
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if got.Variables[k] != v {
					t.Fatalf("%s = %.40v, want %.40s", k, got.Variables[k], v)
				}
			}
		})
	}
	res := s.do("GET", path, nil)
	var after struct{ Variables map[string]any }
	json.Unmarshal(res.Body, &after)
	if _, ok := after.Variables["ivr.e"]; ok {
		t.Fatal("a body past the limit was written")
	}
	if _, ok := after.Variables["ivr.f"]; ok {
		t.Fatal("a body shorter than declared was written")
	}
}
