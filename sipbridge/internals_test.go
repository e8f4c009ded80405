package sipbridge_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge"
	"github.com/callctx/callctx/sipbridge/sipcodec"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in, sbc   string
		preserve  bool
		want      string
		carriesHs bool
	}{
		{"sip:agent@pbx.example.com", "", false, "sip:agent@pbx.example.com", true},
		{"SIP:agent@10.0.0.1:5070;transport=tcp", "", false, "sip:agent@10.0.0.1:5070;transport=tcp", true},
		{"sips:agent@pbx.example.com", "", false, "sips:agent@pbx.example.com", true},
		{"tel:+14077511320", "10.0.0.1:5060", false, "sip:+14077511320@10.0.0.1:5060;user=phone", true},
		{"tel:+1(407)751-1320", "sbc.example", false, "sip:+14077511320@sbc.example;user=phone", true},
		{"tel:+1-407-751-1320", "", true, "tel:+1-407-751-1320", false},
		{"tel:7511320;phone-context=+1407", "10.0.0.1", false, "sip:7511320@10.0.0.1;user=phone", true},
	}
	for _, tt := range tests {
		got, carries, err := sipbridge.ParseTargetForTest(tt.in, tt.sbc, tt.preserve)
		if err != nil || got != tt.want || carries != tt.carriesHs {
			t.Errorf("parseTarget(%q, %q, %v)=%q,%v,%v, want %q,%v", tt.in, tt.sbc, tt.preserve, got, carries, err, tt.want, tt.carriesHs)
		}
	}
	for _, bad := range []struct{ in, sbc string }{
		{"", ""}, {"agent@pbx", ""}, {"mailto:a@b", ""}, {"sip:", ""}, {"sip:a@b?X-A=1", ""},
		{"sip:a@b\r\nVia: x", ""}, {"sip:a@b>;x=<sip:c", ""}, {"sip:a b@c", ""}, {`sip:"a"@b`, ""},
		{"tel:+1407", ""}, {"tel:+14x07", "sbc"}, {"tel:+", "sbc"}, {"tel:", "sbc"}, {"tel:+1407", "a:b:c"},
	} {
		if got, _, err := sipbridge.ParseTargetForTest(bad.in, bad.sbc, false); err == nil {
			t.Errorf("parseTarget(%q, %q)=%q, want an error", bad.in, bad.sbc, got)
		}
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"sip:agent@pbx", "tel:+14077511320", "sips:a@[::1]:5061;transport=tls", "sip:a@b?c=d", "tel:;", "sip:@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, _, err := sipbridge.ParseTargetForTest(s, "sbc.example:5060", false)
		if err != nil {
			return
		}
		// Whatever is accepted must be safe inside <…> of a header.
		if strings.ContainsAny(got, "<>\"\r\n\x00 ") {
			t.Fatalf("parseTarget(%q)=%q holds a character that breaks a header", s, got)
		}
	})
}

func TestParseSipfrag(t *testing.T) {
	tests := []struct {
		in     string
		code   int
		reason string
	}{
		{"SIP/2.0 200 OK\r\n", 200, "OK"},
		{"SIP/2.0 100 Trying", 100, "Trying"},
		{"SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n", 486, "Busy Here"},
		{"sip/2.0 603 Decline", 603, "Decline"},
		{"SIP/2.0 180", 180, ""},
		{"", 0, ""},
		{"HTTP/1.1 200 OK", 0, ""},
		{"SIP/2.0 99 Low", 0, ""},
		{"SIP/2.0 700 High", 0, ""},
		{"SIP/2.0 abc Nope", 0, ""},
		{"SIP/2.0 200 O\x01K", 200, ""},
	}
	for _, tt := range tests {
		code, reason := sipbridge.ParseSipfragForTest([]byte(tt.in))
		if code != tt.code || reason != tt.reason {
			t.Errorf("parseSipfrag(%q)=%d,%q, want %d,%q", tt.in, code, reason, tt.code, tt.reason)
		}
	}
}

func FuzzParseSipfrag(f *testing.F) {
	for _, s := range []string{"SIP/2.0 200 OK\r\n", "SIP/2.0 486 Busy Here", "", "SIP/2.0 ", "\n\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		code, reason := sipbridge.ParseSipfragForTest(b)
		if code != 0 && (code < 100 || code > 699) {
			t.Fatalf("code %d out of range", code)
		}
		if sipcodec.CheckHeaderValue(reason) != nil && strings.ContainsAny(reason, "\r\n\x00") {
			t.Fatalf("reason %q holds control characters", reason)
		}
	})
}

func TestReasonCode(t *testing.T) {
	for code, want := range map[int]string{486: "busy", 600: "busy", 603: "declined", 408: "no-answer", 480: "no-answer", 487: "no-answer", 404: "error", 500: "error", 0: "error"} {
		if got := sipbridge.ReasonCodeForTest(code); got != want {
			t.Errorf("reasonCode(%d)=%q, want %q", code, got, want)
		}
	}
}

func TestContextHeaders(t *testing.T) {
	vars := map[string]json.RawMessage{
		"sip.x-customer-id": json.RawMessage(`"12345"`),
		"sip.uui.acct":      json.RawMessage(`"A-1"`),
		"ivr.email":         json.RawMessage(`"jane@example.com"`),
		"ivr.premium":       json.RawMessage(`true`),
		"ivr.score":         json.RawMessage(`4.5`),
		"ivr.tags":          json.RawMessage(`["a", "b"]`),
		"app.other":         json.RawMessage(`"x"`),
	}
	tests := []struct {
		name string
		ctx  session.TransferContext
		want string
	}{
		{"HeadersDefault", session.TransferContext{Variables: []string{"ivr.*", "sip.x-customer-id"}},
			`[{X-Ivr-Email jane@example.com} {X-Ivr-Premium true} {X-Ivr-Score 4.5} {X-Ivr-Tags ["a","b"]} {X-Customer-Id 12345}]`},
		{"UUIHex", session.TransferContext{Variables: []string{"sip.uui.acct", "ivr.email"}, As: "uui"},
			`[{User-to-User 6976722E656D61696C3D6A616E65406578616D706C652E636F6D3B616363743D412D31;encoding=hex}]`},
		{"UUIPlainWithNames", session.TransferContext{Variables: []string{"sip.uui.acct", "ivr.email"}, As: "uui", UUIEncoding: "plain", Names: map[string]string{"ivr.email": "email"}},
			`[{User-to-User email=jane@example.com;acct=A-1}]`},
		{"BothWithNames", session.TransferContext{Variables: []string{"sip.x-customer-id"}, As: "both", Names: map[string]string{"sip.x-customer-id": "X-Customer-ID"}},
			`[{X-Customer-ID 12345} {User-to-User 582D437573746F6D65722D49443D3132333435;encoding=hex}]`},
		{"Nothing", session.TransferContext{}, `[]`},
		{"Missing", session.TransferContext{Variables: []string{"ivr.nope"}}, `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, err := sipbridge.ContextHeadersForTest(vars, tt.ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprint(hs)
			if hs == nil {
				got = "[]"
			}
			if got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
	t.Run("Refused", func(t *testing.T) {
		bad := map[string]json.RawMessage{"ivr.evil": json.RawMessage(`"a\r\nVia: x"`), "ivr.semi": json.RawMessage(`"a;b"`)}
		if _, err := sipbridge.ContextHeadersForTest(bad, session.TransferContext{Variables: []string{"ivr.evil"}}); err == nil || !strings.Contains(err.Error(), "ivr.evil") {
			t.Errorf("control character: %v, want an error naming ivr.evil", err)
		}
		if _, err := sipbridge.ContextHeadersForTest(bad, session.TransferContext{Variables: []string{"ivr.semi"}, As: "uui"}); err == nil || !strings.Contains(err.Error(), "ivr.semi") {
			t.Errorf("';' in a UUI value: %v, want an error naming ivr.semi", err)
		}
		// Plain UUI goes into the header as it is: a receiver that percent-decodes it must not
		// find a line break. Hex hides it, so there the same value travels.
		pct := map[string]json.RawMessage{"ivr.pct": json.RawMessage(`"a%0D%0AVia:%20x"`)}
		if _, err := sipbridge.ContextHeadersForTest(pct, session.TransferContext{Variables: []string{"ivr.pct"}, As: "uui", UUIEncoding: "plain"}); err == nil || !strings.Contains(err.Error(), "ivr.pct") {
			t.Errorf("percent-encoded CR/LF in a plain UUI value: %v, want an error naming ivr.pct", err)
		}
		if _, err := sipbridge.ContextHeadersForTest(pct, session.TransferContext{Variables: []string{"ivr.pct"}}); err == nil || !strings.Contains(err.Error(), "ivr.pct") {
			t.Errorf("percent-encoded CR/LF in a header value: %v, want an error naming ivr.pct", err)
		}
		if _, err := sipbridge.ContextHeadersForTest(pct, session.TransferContext{Variables: []string{"ivr.pct"}, As: "uui", UUIEncoding: "hex"}); err != nil {
			t.Errorf("the same value in hex UUI: %v, want it carried", err)
		}
	})
}

func TestReusable(t *testing.T) {
	invite := func(transport, via, rr string) *sip.Request {
		raw := "INVITE sip:callctx@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/" + transport + " " + via + ";branch=z9hG4bK-1\r\n"
		if rr != "" {
			raw += "Record-Route: " + rr + "\r\n"
		}
		raw += "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:callctx@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContact: <sip:a@10.0.0.5>\r\nContent-Length: 0\r\n\r\n"
		msg, err := sip.ParseMessage([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		return msg.(*sip.Request)
	}
	for _, tc := range []struct {
		name, transport, via, rr string
		want                     bool
	}{
		{"no route set", "TCP", "10.0.0.5:5060", "", true},
		{"route set from the sender", "TCP", "192.0.2.7:5060", "<sip:192.0.2.7;transport=tcp;lr>", true},
		{"default ports", "TLS", "sbc.example.com", "<sip:SBC.example.com:5061;transport=tls;lr>", true},
		{"IPv6", "TCP", "[2001:db8::1]:5060", "<sip:[2001:db8::1]:5060;lr>", true},
		{"route set to another hop", "TCP", "192.0.2.7:5060", "<sip:192.0.2.8:5060;lr>", false},
		{"another port", "TCP", "192.0.2.7:5080", "<sip:192.0.2.7;lr>", false},
		{"TLS default port is 5061", "TLS", "192.0.2.7:5060", "<sip:192.0.2.7;transport=tls;lr>", false},
	} {
		if got := sipbridge.ReusableForTest(invite(tc.transport, tc.via, tc.rr)); got != tc.want {
			t.Errorf("%s: reusable=%v, want %v", tc.name, got, tc.want)
		}
	}
}
