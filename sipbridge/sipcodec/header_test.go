package sipcodec_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/callctx/callctx/sipbridge/sipcodec"
)

func TestCheckHeaderName(t *testing.T) {
	ok := []string{"X-Customer-ID", "X-AI-Summary", "User-to-User", "P-Asserted-Identity", "X.y!z%a*b_c+d`e'f~g", "Subject", "X"}
	for _, name := range ok {
		t.Run("OK/"+name, func(t *testing.T) {
			if err := sipcodec.CheckHeaderName(name); err != nil {
				t.Fatalf("CheckHeaderName(%q)=%v, want nil", name, err)
			}
		})
	}
	bad := []string{"", "X Customer", "X-A:", "X-A\r\nX-B", "X-\x00", "X-é", "X-A;b", "X-(a)", "X-A=1", "X-<a>", `X-"a"`, "X-A/B", "X-A?", "X-A@b", "X-A,B", "X-[a]", "X-{a}", "X-A\\B", "X-\t"}
	for _, name := range bad {
		t.Run(fmt.Sprintf("NotToken/%q", name), func(t *testing.T) {
			if err := sipcodec.CheckHeaderName(name); err == nil {
				t.Fatalf("CheckHeaderName(%q)=nil, want an error", name)
			}
		})
	}
	forbidden := []string{"From", "to", "CALL-ID", "CSeq", "Via", "Route", "Record-Route", "Contact", "Max-Forwards", "Content-Length", "Content-Type",
		"f", "t", "i", "v", "m", "l", "c", "F", "T", "I", "V", "M", "L", "C",
		"Refer-To", "r", "Referred-By", "b", "Event", "o", "Subscription-State", "Content-Encoding", "e", "body", "BODY"}
	for _, name := range forbidden {
		t.Run("Forbidden/"+name, func(t *testing.T) {
			err := sipcodec.CheckHeaderName(name)
			if err == nil {
				t.Fatalf("CheckHeaderName(%q)=nil, want an error", name)
			}
			if !strings.Contains(err.Error(), "cannot be set") {
				t.Fatalf("CheckHeaderName(%q)=%v, want a forbidden-header error", name, err)
			}
		})
	}
}

func TestForbiddenHeader(t *testing.T) {
	tests := []struct{ in, want string }{
		{"i", "Call-ID"}, {"m", "Contact"}, {"l", "Content-Length"}, {"c", "Content-Type"},
		{"f", "From"}, {"t", "To"}, {"v", "Via"}, {"record-route", "Record-Route"},
	}
	for _, tt := range tests {
		got, ok := sipcodec.ForbiddenHeader(tt.in)
		if !ok || got != tt.want {
			t.Errorf("ForbiddenHeader(%q)=%q,%v, want %q,true", tt.in, got, ok, tt.want)
		}
	}
	if got, ok := sipcodec.ForbiddenHeader("X-Customer-ID"); ok {
		t.Errorf("ForbiddenHeader(X-Customer-ID)=%q,true, want false", got)
	}
}

func TestCheckHeaderValue(t *testing.T) {
	ok := []string{"", "123", "Customer confirmed identity and wants to dispute a charge.", "+4930123456", "Jürgen 😀",
		"100%", "50% off", "%zz", "a%2Fb", "<sip:a@b>;tag=1", "%C3%BC"}
	for _, v := range ok {
		t.Run(fmt.Sprintf("OK/%q", v), func(t *testing.T) {
			if err := sipcodec.CheckHeaderValue(v); err != nil {
				t.Fatalf("CheckHeaderValue(%q)=%v, want nil", v, err)
			}
		})
	}
	bad := []string{
		"a\r\nX-Injected: 1", "a\rb", "a\nb", "a\x00b", "a\tb", "a\x1bb", "a\x7fb", "a\u0085b", "a\u009fb",
		"\xff", "a\xc3", // invalid UTF-8
		"a%0D%0AX-Injected:%201", "a%0d%0a", "a%00", "%7F", "%C2%85", // after one decode
		"a%250D%250A", "a%25250A", // after several decodes
		"100% %0A", "%%0A", "%zz%0a", // a lenient decoder would find these
		"%FF", "%C3", // not UTF-8 once decoded
	}
	for _, v := range bad {
		t.Run(fmt.Sprintf("Refused/%q", v), func(t *testing.T) {
			if err := sipcodec.CheckHeaderValue(v); err == nil {
				t.Fatalf("CheckHeaderValue(%q)=nil, want an error", v)
			}
		})
	}
}

func TestCheckHeaders(t *testing.T) {
	many := func(n int) []sipcodec.Header {
		hs := make([]sipcodec.Header, n)
		for i := range hs {
			hs[i] = sipcodec.Header{Name: fmt.Sprintf("X-H%d", i), Value: "v"}
		}
		return hs
	}
	t.Run("OK", func(t *testing.T) {
		if err := sipcodec.CheckHeaders(many(100)); err != nil {
			t.Fatalf("CheckHeaders(100 headers)=%v, want nil", err)
		}
		if err := sipcodec.CheckHeaders(nil); err != nil {
			t.Fatalf("CheckHeaders(nil)=%v, want nil", err)
		}
		exact := []sipcodec.Header{{Name: "X-A", Value: strings.Repeat("é", 12000-3)}}
		if err := sipcodec.CheckHeaders(exact); err != nil {
			t.Fatalf("CheckHeaders(12000 chars)=%v, want nil", err)
		}
	})
	tests := []struct {
		name string
		in   []sipcodec.Header
		want []sipcodec.HeaderError
	}{
		{"TooMany", many(101), []sipcodec.HeaderError{{Index: -1}}},
		{"TooLong", []sipcodec.Header{{Name: "X-A", Value: strings.Repeat("a", 11000)}, {Name: "X-B", Value: strings.Repeat("b", 995)}},
			[]sipcodec.HeaderError{{Index: -1}}},
		{"EachProblemNamed", []sipcodec.Header{
			{Name: "X-Ok", Value: "fine"},
			{Name: "Via", Value: "SIP/2.0/UDP evil"},
			{Name: "X-Evil", Value: "a\r\nX-Injected: 1"},
			{Name: "X Bad", Value: "%0a"},
		}, []sipcodec.HeaderError{{Index: 1, Field: "name"}, {Index: 2, Field: "value"}, {Index: 3, Field: "name"}, {Index: 3, Field: "value"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sipcodec.CheckHeaders(tt.in)
			var herrs sipcodec.HeaderErrors
			if !errors.As(err, &herrs) {
				t.Fatalf("CheckHeaders error %v is not HeaderErrors", err)
			}
			if got, want := len(herrs), len(tt.want); got != want {
				t.Fatalf("got %d errors (%v), want %d", got, herrs, want)
			}
			for i, w := range tt.want {
				if herrs[i].Index != w.Index || herrs[i].Field != w.Field || herrs[i].Reason == "" {
					t.Errorf("error %d=%+v, want index %d field %q and a reason", i, herrs[i], w.Index, w.Field)
				}
			}
		})
	}
}

func TestCheckHeaderLimits(t *testing.T) {
	// Only the count and the length: the headers themselves were checked one by one before.
	if err := sipcodec.CheckHeaderLimits([]sipcodec.Header{{Name: "Via", Value: "a\r\nb"}}); err != nil {
		t.Fatalf("CheckHeaderLimits(one bad header)=%v, want nil", err)
	}
	hs := []sipcodec.Header{{Name: "X-A", Value: strings.Repeat("a", 11998)}}
	if err := sipcodec.CheckHeaderLimits(hs); err == nil {
		t.Fatal("CheckHeaderLimits(12001 characters)=nil, want an error")
	}
}

// FuzzCheckHeaderValue checks the one promise that matters: a value that passes can never
// end or add a header line, as written or after any percent-decoding.
func FuzzCheckHeaderValue(f *testing.F) {
	for _, s := range []string{"abc", "a\r\nb", "%0d%0a", "%250A", "100% %0a", "é", "\xff", "%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if sipcodec.CheckHeaderValue(v) != nil {
			return
		}
		for s, i := v, 0; i < 10; i++ {
			if strings.ContainsAny(s, "\r\n\x00") {
				t.Fatalf("accepted %q, which holds CR, LF or NUL after %d decodes", v, i)
			}
			d, err := sipcodec.UnescapeURIHeader(s)
			if err != nil || d == s {
				break
			}
			s = d
		}
	})
}

func FuzzCheckHeaderName(f *testing.F) {
	for _, s := range []string{"X-Customer-ID", "Via", "i", "X A", "X-A\r\n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if sipcodec.CheckHeaderName(name) != nil {
			return
		}
		if name == "" || strings.ContainsAny(name, " \t\r\n:;,=\x00\"<>()@[]{}?/\\") {
			t.Fatalf("accepted %q as a header name", name)
		}
		if _, bad := sipcodec.ForbiddenHeader(name); bad {
			t.Fatalf("accepted forbidden header %q", name)
		}
	})
}
