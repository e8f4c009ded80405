package sipcodec_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/callctx/callctx/sipbridge/sipcodec"
)

func TestParseUUI(t *testing.T) {
	kv := func(kvs ...string) []sipcodec.KV {
		var out []sipcodec.KV
		for i := 0; i+1 < len(kvs); i += 2 {
			out = append(out, sipcodec.KV{Key: kvs[i], Value: kvs[i+1]})
		}
		return out
	}
	tests := []struct {
		name string
		in   string
		want sipcodec.UUI
	}{
		{"D365Plain", "sipkey1=sipval1;sipkey2=sipval2",
			sipcodec.UUI{Pairs: kv("sipkey1", "sipval1", "sipkey2", "sipval2"), Encoding: "plain"}},
		{"D365Hex", "7369706B6579313D73697076616C313B7369706B6579323D73697076616C32;encoding=hex",
			sipcodec.UUI{Pairs: kv("sipkey1", "sipval1", "sipkey2", "sipval2"), Encoding: "hex"}},
		{"HexLowerCaseAndParamCase", "7369706b6579313d73697076616c31;Encoding=HEX",
			sipcodec.UUI{Pairs: kv("sipkey1", "sipval1"), Encoding: "hex"}},
		{"HexWithISDNDiscriminatorIA5", "04616363743D3132333B6C616E673D6465;encoding=hex;purpose=isdn-interwork;content=isdn-uui",
			sipcodec.UUI{Pairs: kv("acct", "123", "lang", "de"), Encoding: "hex", Purpose: "isdn-interwork", Content: "isdn-uui"}},
		{"HexWithUserSpecificDiscriminator", "00613D31;encoding=hex",
			sipcodec.UUI{Pairs: kv("a", "1"), Encoding: "hex"}},
		{"HexCarriesReservedKeys", "656E636F64696E673D7574663B636F6E74656E743D78;encoding=hex",
			sipcodec.UUI{Pairs: kv("encoding", "utf", "content", "x"), Encoding: "hex"}},
		{"HexQuoted", `"613D31";encoding=hex`,
			sipcodec.UUI{Pairs: kv("a", "1"), Encoding: "hex"}},
		{"PlainWithRFC7433Params", "a=1;b=2;purpose=foo;content=bar",
			sipcodec.UUI{Pairs: kv("a", "1", "b", "2"), Encoding: "plain", Purpose: "foo", Content: "bar"}},
		{"PlainFirstItemIsAlwaysData", "content=x;a=1",
			sipcodec.UUI{Pairs: kv("content", "x", "a", "1"), Encoding: "plain"}},
		{"PlainSpacesTrimmed", "  a = 1 ; b=two words ;",
			sipcodec.UUI{Pairs: kv("a", "1", "b", "two words"), Encoding: "plain"}},
		{"PlainEmptyValueAndEqualsInValue", "a=;b=x=y",
			sipcodec.UUI{Pairs: kv("a", "", "b", "x=y"), Encoding: "plain"}},
		{"PlainRepeatedKeyLastWins", "a=1;b=2;a=3",
			sipcodec.UUI{Pairs: kv("a", "3", "b", "2"), Encoding: "plain"}},
		{"PlainQuoted", `"a=1;b=2";purpose=x`,
			sipcodec.UUI{Pairs: kv("a", "1", "b", "2"), Encoding: "plain", Purpose: "x"}},
		{"PlainUnicode", "name=Jürgen;city=Zürich",
			sipcodec.UUI{Pairs: kv("name", "Jürgen", "city", "Zürich"), Encoding: "plain"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sipcodec.ParseUUI(tt.in)
			if err != nil {
				t.Fatalf("ParseUUI(%q) error: %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseUUI(%q)=%+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseUUI_Undecodable(t *testing.T) {
	tests := []struct{ name, in string }{
		{"Empty", ""},
		{"Blank", "   "},
		{"OpaqueToken", "12345"},
		{"ItemWithoutEquals", "a=1;b"},
		{"EmptyKey", "=1"},
		{"OddHex", "613D3;encoding=hex"},
		{"NotHex", "zz;encoding=hex"},
		{"HexBinary", "613DFF;encoding=hex"},
		{"HexControlChar", "613D0A31;encoding=hex"},
		{"HexTwoDataItems", "613D31;623D32;encoding=hex"},
		{"HexOnlyDiscriminator", "04;encoding=hex"},
		{"UnknownEncoding", "YT0x;encoding=base64"},
		{"UnterminatedQuote", `"a=1;encoding=hex`},
		{"TextAfterQuote", `"a=1"x`},
		{"PlainControlChar", "a=1\x00"},
		{"OnlyParams", ";encoding=hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sipcodec.ParseUUI(tt.in)
			if err == nil {
				t.Fatalf("ParseUUI(%q)=%+v, want an error", tt.in, got)
			}
			if !errors.Is(err, sipcodec.ErrUUI) {
				t.Fatalf("ParseUUI(%q) error %v does not wrap ErrUUI", tt.in, err)
			}
		})
	}
}

func TestEncodeUUI(t *testing.T) {
	pairs := []sipcodec.KV{{Key: "sipkey1", Value: "sipval1"}, {Key: "sipkey2", Value: "sipval2"}}
	tests := []struct {
		name  string
		pairs []sipcodec.KV
		opts  sipcodec.UUIOptions
		want  string
	}{
		{"PlainDefault", pairs, sipcodec.UUIOptions{}, "sipkey1=sipval1;sipkey2=sipval2"},
		{"Hex", pairs, sipcodec.UUIOptions{Encoding: "hex"},
			"7369706B6579313D73697076616C313B7369706B6579323D73697076616C32;encoding=hex"},
		{"HexWithParams", []sipcodec.KV{{Key: "a", Value: "1"}}, sipcodec.UUIOptions{Encoding: "hex", Purpose: "isdn-interwork", Content: "isdn-uui"},
			"613D31;encoding=hex;purpose=isdn-interwork;content=isdn-uui"},
		{"HexCarriesCommaAndReservedKey", []sipcodec.KV{{Key: "a", Value: "1"}, {Key: "encoding", Value: "x,y"}}, sipcodec.UUIOptions{Encoding: "hex"},
			"613D313B656E636F64696E673D782C79;encoding=hex"},
		{"PlainEmptyValue", []sipcodec.KV{{Key: "a", Value: ""}}, sipcodec.UUIOptions{Encoding: "plain"}, "a="},
		// Hex hides the text from every header parser: a percent sequence in it is just text.
		{"HexCarriesEncodedCRLFAsText", []sipcodec.KV{{Key: "a", Value: "1%0D%0A"}}, sipcodec.UUIOptions{Encoding: "hex"}, "613D31253044253041;encoding=hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sipcodec.EncodeUUI(tt.pairs, tt.opts)
			if err != nil {
				t.Fatalf("EncodeUUI error: %v", err)
			}
			if got != tt.want {
				t.Fatalf("EncodeUUI=%q, want %q", got, tt.want)
			}
			back, err := sipcodec.ParseUUI(got)
			if err != nil {
				t.Fatalf("ParseUUI(EncodeUUI)=%v", err)
			}
			if !reflect.DeepEqual(back.Pairs, tt.pairs) {
				t.Fatalf("round trip pairs=%+v, want %+v", back.Pairs, tt.pairs)
			}
		})
	}
}

func TestEncodeUUI_Refused(t *testing.T) {
	tests := []struct {
		name  string
		pairs []sipcodec.KV
		opts  sipcodec.UUIOptions
	}{
		{"NoPairs", nil, sipcodec.UUIOptions{}},
		{"UnknownEncoding", []sipcodec.KV{{Key: "a", Value: "1"}}, sipcodec.UUIOptions{Encoding: "base64"}},
		{"EmptyKey", []sipcodec.KV{{Key: "", Value: "1"}}, sipcodec.UUIOptions{}},
		{"KeyWithEquals", []sipcodec.KV{{Key: "a=b", Value: "1"}}, sipcodec.UUIOptions{Encoding: "hex"}},
		{"KeyWithSpace", []sipcodec.KV{{Key: "a b", Value: "1"}}, sipcodec.UUIOptions{}},
		{"ValueWithSemicolon", []sipcodec.KV{{Key: "a", Value: "1;b=2"}}, sipcodec.UUIOptions{Encoding: "hex"}},
		{"ValueWithCRLF", []sipcodec.KV{{Key: "a", Value: "1\r\nX-Evil: 1"}}, sipcodec.UUIOptions{Encoding: "hex"}},
		{"ValueWithNUL", []sipcodec.KV{{Key: "a", Value: "1\x00"}}, sipcodec.UUIOptions{}},
		{"PlainValueWithComma", []sipcodec.KV{{Key: "a", Value: "1,2"}}, sipcodec.UUIOptions{}},
		{"PlainReservedLaterKey", []sipcodec.KV{{Key: "a", Value: "1"}, {Key: "Encoding", Value: "hex"}}, sipcodec.UUIOptions{}},
		{"ValueWithOuterSpace", []sipcodec.KV{{Key: "a", Value: " 1"}}, sipcodec.UUIOptions{}},
		{"PurposeNotToken", []sipcodec.KV{{Key: "a", Value: "1"}}, sipcodec.UUIOptions{Purpose: "a b"}},
		{"InvalidUTF8", []sipcodec.KV{{Key: "a", Value: "\xff"}}, sipcodec.UUIOptions{Encoding: "hex"}},
		{"PlainValueWithEncodedCRLF", []sipcodec.KV{{Key: "a", Value: "1%0D%0AVia:%20x"}}, sipcodec.UUIOptions{}},
		{"PlainValueWithDoublyEncodedLF", []sipcodec.KV{{Key: "a", Value: "1%250A"}}, sipcodec.UUIOptions{Encoding: "plain"}},
		{"PlainKeyWithEncodedLF", []sipcodec.KV{{Key: "a%0A", Value: "1"}}, sipcodec.UUIOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := sipcodec.EncodeUUI(tt.pairs, tt.opts); err == nil {
				t.Fatalf("EncodeUUI(%+v)=%q, want an error", tt.pairs, got)
			}
		})
	}
}

// FuzzParseUUI checks that ParseUUI never panics, that what it returns is clean text, and
// that whatever it decodes survives a hex round trip.
func FuzzParseUUI(f *testing.F) {
	for _, s := range []string{
		"sipkey1=sipval1;sipkey2=sipval2",
		"7369706B6579313D73697076616C313B7369706B6579323D73697076616C32;encoding=hex",
		"04616363743D3132333B6C616E673D6465;encoding=hex;purpose=isdn-interwork;content=isdn-uui",
		`"a=1;b=2";purpose=x`, "a=;b=x=y", "=", ";", `"`, `"\"`, "00;encoding=hex",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		u, err := sipcodec.ParseUUI(in)
		if err != nil {
			if !errors.Is(err, sipcodec.ErrUUI) {
				t.Fatalf("error %v does not wrap ErrUUI", err)
			}
			return
		}
		if len(u.Pairs) == 0 {
			t.Fatalf("decoded %q to no pairs without an error", in)
		}
		for _, p := range u.Pairs {
			if p.Key == "" || !utf8.ValidString(p.Key) || !utf8.ValidString(p.Value) {
				t.Fatalf("bad pair %+v from %q", p, in)
			}
			if strings.ContainsAny(p.Key+p.Value, "\r\n\x00;") {
				t.Fatalf("pair %+v from %q holds CR, LF, NUL or ';'", p, in)
			}
		}
		enc, err := sipcodec.EncodeUUI(u.Pairs, sipcodec.UUIOptions{Encoding: "hex"})
		if err != nil {
			// Keys with '=' ',' '"' or whitespace cannot be written back; that is a refusal,
			// not a loss.
			return
		}
		back, err := sipcodec.ParseUUI(enc)
		if err != nil {
			t.Fatalf("ParseUUI(EncodeUUI(%+v)=%q): %v", u.Pairs, enc, err)
		}
		if !reflect.DeepEqual(back.Pairs, u.Pairs) {
			t.Fatalf("round trip of %q: got %+v, want %+v", in, back.Pairs, u.Pairs)
		}
	})
}

// FuzzEncodeUUI checks what the bridge relies on when it sends context as User-to-User:
// whatever EncodeUUI accepts is a header value CheckHeaderValue accepts too (no control
// character, even after percent-decoding), and it reads back as the same pairs.
func FuzzEncodeUUI(f *testing.F) {
	for _, s := range [][3]string{
		{"acct", "A-1", "plain"}, {"a", "1%0D%0Ab", "plain"}, {"a", "1%0D%0Ab", "hex"},
		{"k%0A", "v", "plain"}, {"a", "100%", "plain"}, {"a", "x,y", "hex"}, {"é", "ü", "plain"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, key, value, enc string) {
		pairs := []sipcodec.KV{{Key: key, Value: value}}
		out, err := sipcodec.EncodeUUI(pairs, sipcodec.UUIOptions{Encoding: enc})
		if err != nil {
			return
		}
		if err := sipcodec.CheckHeaderValue(out); err != nil {
			t.Fatalf("EncodeUUI(%q=%q, %s)=%q, which CheckHeaderValue refuses: %v", key, value, enc, out, err)
		}
		back, err := sipcodec.ParseUUI(out)
		if err != nil {
			t.Fatalf("ParseUUI(EncodeUUI(%q=%q, %s)=%q): %v", key, value, enc, out, err)
		}
		if !reflect.DeepEqual(back.Pairs, pairs) {
			t.Fatalf("round trip of %q=%q (%s): got %+v", key, value, enc, back.Pairs)
		}
	})
}
