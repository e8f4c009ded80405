package sipcodec_test

import (
	"strings"
	"testing"

	"github.com/callctx/callctx/sipbridge/sipcodec"
)

func TestParkSDP(t *testing.T) {
	offer := "v=0\r\no=x 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 0\r\nm=video 0 RTP/AVP 96\r\n"
	got := string(sipcodec.ParkSDP([]byte(offer), "127.0.0.1", 7))
	for _, want := range []string{"m=audio 9 RTP/AVP 8\r\na=inactive\r\n", "m=video 0 RTP/AVP 96\r\na=inactive\r\n", "c=IN IP4 127.0.0.1\r\n", "o=callctx 7 7 IN IP4 127.0.0.1\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("answer %q lacks %q", got, want)
		}
	}
	if got := string(sipcodec.ParkSDP(nil, "127.0.0.1", 7)); !strings.Contains(got, "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=inactive\r\n") {
		t.Errorf("offer without SDP: %q", got)
	}
}

func TestSDPOrigin(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"v=0\r\no=ivr 1 2 IN IP4 10.0.0.1\r\ns=-\r\n", "o=ivr 1 2 IN IP4 10.0.0.1"},
		{"v=0\no=agent 7 7 IN IP6 ::1\ns=-\n", "o=agent 7 7 IN IP6 ::1"},
		{"v=0\r\ns=-\r\n", ""},
		{"", ""},
		{"o=last 1 1 IN IP4 10.0.0.1", "o=last 1 1 IN IP4 10.0.0.1"},
	} {
		if got := sipcodec.SDPOrigin([]byte(tc.body)); got != tc.want {
			t.Errorf("SDPOrigin(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}
