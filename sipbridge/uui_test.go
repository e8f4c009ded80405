package sipbridge_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/callctx/callctx/sipbridge"
)

func TestParseUUI(t *testing.T) {
	kv := func(kvs ...string) []sipbridge.KV {
		var out []sipbridge.KV
		for i := 0; i+1 < len(kvs); i += 2 {
			out = append(out, sipbridge.KV{Key: kvs[i], Value: kvs[i+1]})
		}
		return out
	}
	tests := []struct {
		name string
		in   string
		want sipbridge.UUI
	}{
		{"D365Plain", "sipkey1=sipval1;sipkey2=sipval2",
			sipbridge.UUI{Pairs: kv("sipkey1", "sipval1", "sipkey2", "sipval2"), Encoding: "plain"}},
		{"D365Hex", "7369706B6579313D73697076616C313B7369706B6579323D73697076616C32;encoding=hex",
			sipbridge.UUI{Pairs: kv("sipkey1", "sipval1", "sipkey2", "sipval2"), Encoding: "hex"}},
		{"HexLowerCaseAndParamCase", "7369706b6579313d73697076616c31;Encoding=HEX",
			sipbridge.UUI{Pairs: kv("sipkey1", "sipval1"), Encoding: "hex"}},
		{"HexWithISDNDiscriminatorIA5", "04616363743D3132333B6C616E673D6465;encoding=hex;purpose=isdn-interwork;content=isdn-uui",
			sipbridge.UUI{Pairs: kv("acct", "123", "lang", "de"), Encoding: "hex", Purpose: "isdn-interwork", Content: "isdn-uui"}},
		{"HexWithUserSpecificDiscriminator", "00613D31;encoding=hex",
			sipbridge.UUI{Pairs: kv("a", "1"), Encoding: "hex"}},
		{"HexCarriesReservedKeys", "656E636F64696E673D7574663B636F6E74656E743D78;encoding=hex",
			sipbridge.UUI{Pairs: kv("encoding", "utf", "content", "x"), Encoding: "hex"}},
		{"HexQuoted", `"613D31";encoding=hex`,
			sipbridge.UUI{Pairs: kv("a", "1"), Encoding: "hex"}},
		{"PlainWithRFC7433Params", "a=1;b=2;purpose=foo;content=bar",
			sipbridge.UUI{Pairs: kv("a", "1", "b", "2"), Encoding: "plain", Purpose: "foo", Content: "bar"}},
		{"PlainFirstItemIsAlwaysData", "content=x;a=1",
			sipbridge.UUI{Pairs: kv("content", "x", "a", "1"), Encoding: "plain"}},
		{"PlainSpacesTrimmed", "  a = 1 ; b=two words ;",
			sipbridge.UUI{Pairs: kv("a", "1", "b", "two words"), Encoding: "plain"}},
		{"PlainEmptyValueAndEqualsInValue", "a=;b=x=y",
			sipbridge.UUI{Pairs: kv("a", "", "b", "x=y"), Encoding: "plain"}},
		{"PlainRepeatedKeyLastWins", "a=1;b=2;a=3",
			sipbridge.UUI{Pairs: kv("a", "3", "b", "2"), Encoding: "plain"}},
		{"PlainQuoted", `"a=1;b=2";purpose=x`,
			sipbridge.UUI{Pairs: kv("a", "1", "b", "2"), Encoding: "plain", Purpose: "x"}},
		{"PlainUnicode", "name=Jürgen;city=Zürich",
			sipbridge.UUI{Pairs: kv("name", "Jürgen", "city", "Zürich"), Encoding: "plain"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sipbridge.ParseUUI(tt.in)
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
			got, err := sipbridge.ParseUUI(tt.in)
			if err == nil {
				t.Fatalf("ParseUUI(%q)=%+v, want an error", tt.in, got)
			}
			if !errors.Is(err, sipbridge.ErrUUI) {
				t.Fatalf("ParseUUI(%q) error %v does not wrap ErrUUI", tt.in, err)
			}
		})
	}
}

func TestEncodeUUI(t *testing.T) {
	pairs := []sipbridge.KV{{Key: "sipkey1", Value: "sipval1"}, {Key: "sipkey2", Value: "sipval2"}}
	tests := []struct {
		name  string
		pairs []sipbridge.KV
		opts  sipbridge.UUIOptions
		want  string
	}{
		{"PlainDefault", pairs, sipbridge.UUIOptions{}, "sipkey1=sipval1;sipkey2=sipval2"},
		{"Hex", pairs, sipbridge.UUIOptions{Encoding: "hex"},
			"7369706B6579313D73697076616C313B7369706B6579323D73697076616C32;encoding=hex"},
		{"HexWithParams", []sipbridge.KV{{Key: "a", Value: "1"}}, sipbridge.UUIOptions{Encoding: "hex", Purpose: "isdn-interwork", Content: "isdn-uui"},
			"613D31;encoding=hex;purpose=isdn-interwork;content=isdn-uui"},
		{"HexCarriesCommaAndReservedKey", []sipbridge.KV{{Key: "a", Value: "1"}, {Key: "encoding", Value: "x,y"}}, sipbridge.UUIOptions{Encoding: "hex"},
			"613D313B656E636F64696E673D782C79;encoding=hex"},
		{"PlainEmptyValue", []sipbridge.KV{{Key: "a", Value: ""}}, sipbridge.UUIOptions{Encoding: "plain"}, "a="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sipbridge.EncodeUUI(tt.pairs, tt.opts)
			if err != nil {
				t.Fatalf("EncodeUUI error: %v", err)
			}
			if got != tt.want {
				t.Fatalf("EncodeUUI=%q, want %q", got, tt.want)
			}
			back, err := sipbridge.ParseUUI(got)
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
		pairs []sipbridge.KV
		opts  sipbridge.UUIOptions
	}{
		{"NoPairs", nil, sipbridge.UUIOptions{}},
		{"UnknownEncoding", []sipbridge.KV{{Key: "a", Value: "1"}}, sipbridge.UUIOptions{Encoding: "base64"}},
		{"EmptyKey", []sipbridge.KV{{Key: "", Value: "1"}}, sipbridge.UUIOptions{}},
		{"KeyWithEquals", []sipbridge.KV{{Key: "a=b", Value: "1"}}, sipbridge.UUIOptions{Encoding: "hex"}},
		{"KeyWithSpace", []sipbridge.KV{{Key: "a b", Value: "1"}}, sipbridge.UUIOptions{}},
		{"ValueWithSemicolon", []sipbridge.KV{{Key: "a", Value: "1;b=2"}}, sipbridge.UUIOptions{Encoding: "hex"}},
		{"ValueWithCRLF", []sipbridge.KV{{Key: "a", Value: "1\r\nX-Evil: 1"}}, sipbridge.UUIOptions{Encoding: "hex"}},
		{"ValueWithNUL", []sipbridge.KV{{Key: "a", Value: "1\x00"}}, sipbridge.UUIOptions{}},
		{"PlainValueWithComma", []sipbridge.KV{{Key: "a", Value: "1,2"}}, sipbridge.UUIOptions{}},
		{"PlainReservedLaterKey", []sipbridge.KV{{Key: "a", Value: "1"}, {Key: "Encoding", Value: "hex"}}, sipbridge.UUIOptions{}},
		{"ValueWithOuterSpace", []sipbridge.KV{{Key: "a", Value: " 1"}}, sipbridge.UUIOptions{}},
		{"PurposeNotToken", []sipbridge.KV{{Key: "a", Value: "1"}}, sipbridge.UUIOptions{Purpose: "a b"}},
		{"InvalidUTF8", []sipbridge.KV{{Key: "a", Value: "\xff"}}, sipbridge.UUIOptions{Encoding: "hex"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := sipbridge.EncodeUUI(tt.pairs, tt.opts); err == nil {
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
		u, err := sipbridge.ParseUUI(in)
		if err != nil {
			if !errors.Is(err, sipbridge.ErrUUI) {
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
		enc, err := sipbridge.EncodeUUI(u.Pairs, sipbridge.UUIOptions{Encoding: "hex"})
		if err != nil {
			// Keys with '=' ',' '"' or whitespace cannot be written back; that is a refusal,
			// not a loss.
			return
		}
		back, err := sipbridge.ParseUUI(enc)
		if err != nil {
			t.Fatalf("ParseUUI(EncodeUUI(%+v)=%q): %v", u.Pairs, enc, err)
		}
		if !reflect.DeepEqual(back.Pairs, u.Pairs) {
			t.Fatalf("round trip of %q: got %+v, want %+v", in, back.Pairs, u.Pairs)
		}
	})
}
