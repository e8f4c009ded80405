package sipbridge_test

import (
	"strings"
	"testing"

	"github.com/callctx/callctx/sipbridge"
	"github.com/callctx/callctx/sipbridge/sipcodec"
)

func TestParseReferTo(t *testing.T) {
	for _, tc := range []struct {
		in, uri, headers string
		skipped          int
		err              bool
	}{
		{`<sip:queue@pbx?X-AI-Summary=a%20b&User-to-User=k%3Dv>`, "sip:queue@pbx", "X-AI-Summary=a b|User-to-User=k=v", 0, false},
		{`"Queue" <sip:q@h;transport=tcp>;method=INVITE`, "sip:q@h;transport=tcp", "", 0, false},
		{`sip:q@h;x=y`, "sip:q@h", "", 0, false},
		{`<sip:q@h?X-A=%ZZ&X-B=1>`, "sip:q@h", "X-B=1", 1, false},
		{`<sip:q@h`, "", "", 0, true},
		{"<sip:q@h>\r\nVia: x", "", "", 0, true},
		{`<>`, "", "", 0, true},
	} {
		uri, hs, skipped, err := sipbridge.ParseReferToForTest(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		var got []string
		for _, h := range hs {
			got = append(got, h.Name+"="+h.Value)
		}
		if uri != tc.uri || strings.Join(got, "|") != tc.headers || len(skipped) != tc.skipped {
			t.Errorf("%q: %q %q %v", tc.in, uri, got, skipped)
		}
	}
}

// FuzzParseReferTo: whatever a REFER's Refer-To holds, parsing it never panics, the URI holds
// no control character, and a decoded header that could inject one is caught by the checks
// every outgoing header meets (sipcodec), which the bridge applies before carrying it on.
func FuzzParseReferTo(f *testing.F) {
	for _, s := range []string{`<sip:queue@pbx?X-AI-Summary=a%20b&User-to-User=k%3Dv>`, `sip:q@h;x=y`, `<sip:q@h?X-A=%0D%0AVia:%20x>`, `<`, `?&=`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		uri, hs, _, err := sipbridge.ParseReferToForTest(v)
		if err != nil {
			return
		}
		if strings.ContainsAny(uri, "\r\n\x00") {
			t.Fatalf("URI %q", uri)
		}
		for _, h := range hs {
			if strings.ContainsAny(h.Value, "\r\n") && sipcodec.CheckHeaderValue(h.Value) == nil {
				t.Fatalf("%q passes the header check", h.Value)
			}
		}
	})
}
