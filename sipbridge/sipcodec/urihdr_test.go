package sipcodec_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/callctx/callctx/sipbridge/sipcodec"
)

func TestEscapeURIHeader(t *testing.T) {
	tests := []struct{ in, want string }{
		{"123", "123"},
		{"+4930123456", "+4930123456"},
		{"a b", "a%20b"},
		{"a&b=c", "a%26b%3Dc"},
		{"a;b", "a%3Bb"},
		{"100%", "100%25"},
		{"user@host", "user%40host"},
		{"<sip:x>", "%3Csip:x%3E"},
		{`"q"`, "%22q%22"},
		{"#,", "%23%2C"},
		{"ü", "%C3%BC"},
		{"-_.!~*'()", "-_.!~*'()"},
		{"[]/?:+$", "[]/?:+$"},
		{"a\r\nb", "a%0D%0Ab"},
		{"Customer confirmed identity.", "Customer%20confirmed%20identity."},
	}
	for _, tt := range tests {
		if got := sipcodec.EscapeURIHeader(tt.in); got != tt.want {
			t.Errorf("EscapeURIHeader(%q)=%q, want %q", tt.in, got, tt.want)
		}
		back, err := sipcodec.UnescapeURIHeader(sipcodec.EscapeURIHeader(tt.in))
		if err != nil || back != tt.in {
			t.Errorf("UnescapeURIHeader(EscapeURIHeader(%q))=%q,%v", tt.in, back, err)
		}
	}
}

func TestUnescapeURIHeader(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+4930123", "+4930123"}, // '+' stays a plus (PathUnescape, not QueryUnescape)
		{"a%20b", "a b"},
		{"%c3%bc", "ü"},
	}
	for _, tt := range tests {
		got, err := sipcodec.UnescapeURIHeader(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("UnescapeURIHeader(%q)=%q,%v, want %q", tt.in, got, err, tt.want)
		}
	}
	if got, err := sipcodec.UnescapeURIHeader("%zz"); err == nil {
		t.Errorf("UnescapeURIHeader(%%zz)=%q, want an error", got)
	}
}

func TestEncodeURIHeaders(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		hs := []sipcodec.Header{
			{Name: "X-Customer-ID", Value: "123"},
			{Name: "X-AI-Summary", Value: "Customer wants a refund & a callback; soon=now"},
			{Name: "User-to-User", Value: "613D31;encoding=hex"},
		}
		got, err := sipcodec.EncodeURIHeaders(hs)
		if err != nil {
			t.Fatal(err)
		}
		want := "X-Customer-ID=123&X-AI-Summary=Customer%20wants%20a%20refund%20%26%20a%20callback%3B%20soon%3Dnow&User-to-User=613D31%3Bencoding%3Dhex"
		if got != want {
			t.Fatalf("EncodeURIHeaders=%q, want %q", got, want)
		}
		back, err := sipcodec.DecodeURIHeaders(got)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, hs) {
			t.Fatalf("DecodeURIHeaders=%+v, want %+v", back, hs)
		}
	})
	for _, hs := range [][]sipcodec.Header{
		{{Name: "X-Evil", Value: "a\r\nVia: x"}},
		{{Name: "Contact", Value: "<sip:evil>"}},
		{{Name: "body", Value: "v=0"}},
		{{Name: "X-Evil", Value: "%0D%0A"}},
	} {
		if got, err := sipcodec.EncodeURIHeaders(hs); err == nil {
			t.Errorf("EncodeURIHeaders(%+v)=%q, want an error", hs, got)
		}
	}
}

func TestDecodeURIHeaders_Refused(t *testing.T) {
	for _, in := range []string{"X-A=%0D%0AVia:%20x", "Call-ID=abc", "X-A=%zz", "X%20A=1", "body=v%3D0"} {
		if got, err := sipcodec.DecodeURIHeaders(in); err == nil {
			t.Errorf("DecodeURIHeaders(%q)=%+v, want an error", in, got)
		}
	}
}

// FuzzURIHeaders checks that escaped text never holds a character RFC 3261 §19.1.1 forbids in
// a URI header and always decodes back to itself.
func FuzzURIHeaders(f *testing.F) {
	for _, s := range []string{"123", "a b&c=d;e", "ü", "%", "+49", "\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := sipcodec.EscapeURIHeader(s)
		for i := 0; i < len(e); i++ {
			c := e[i]
			alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
			if !alnum && !strings.ContainsRune("-_.!~*'()[]/?:+$%", rune(c)) {
				t.Fatalf("EscapeURIHeader(%q)=%q holds %q", s, e, c)
			}
		}
		back, err := sipcodec.UnescapeURIHeader(e)
		if err != nil || back != s {
			t.Fatalf("UnescapeURIHeader(%q)=%q,%v, want %q", e, back, err, s)
		}
		if hs, err := sipcodec.DecodeURIHeaders(s); err == nil {
			if err := sipcodec.CheckHeaders(hs); err != nil {
				t.Fatalf("DecodeURIHeaders(%q) returned headers CheckHeaders refuses: %v", s, err)
			}
		}
	})
}
