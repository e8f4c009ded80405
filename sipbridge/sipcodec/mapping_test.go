package sipcodec_test

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/callctx/callctx/internal/jsontest"
	"github.com/callctx/callctx/sipbridge/sipcodec"
)

func TestCheckVarName(t *testing.T) {
	for _, ok := range []string{"sip.x-customer-id", "sip.uui.sipkey1", "ivr.customer_id", "sip.x-a.b", "a.B-9_"} {
		if err := sipcodec.CheckVarName(ok); err != nil {
			t.Errorf("CheckVarName(%q)=%v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "sip", "sip.", ".x", "sip..x", "sip.x!", "sip.a b", "sip.é", "sip." + strings.Repeat("a", 125)} {
		if err := sipcodec.CheckVarName(bad); err == nil {
			t.Errorf("CheckVarName(%q)=nil, want an error", bad)
		}
	}
}

func TestMapper_Map(t *testing.T) {
	h := func(kvs ...string) []sipcodec.Header {
		var out []sipcodec.Header
		for i := 0; i+1 < len(kvs); i += 2 {
			out = append(out, sipcodec.Header{Name: kvs[i], Value: kvs[i+1]})
		}
		return out
	}
	tests := []struct {
		name     string
		renames  map[string]string
		headers  []sipcodec.Header
		want     map[string]string
		skipped  []string // sources, in order
		uuiError bool
	}{
		{
			name: "XHeadersAndHexUUI",
			headers: h("Via", "SIP/2.0/UDP x", "X-Customer-ID", "12345", "x-transfer-reason", "BillingInquiry",
				"User-to-User", "7369706B6579313D73697076616C313B7369706B6579323D73697076616C32;encoding=hex", "Subject", "hi"),
			want: map[string]string{"sip.x-customer-id": "12345", "sip.x-transfer-reason": "BillingInquiry",
				"sip.uui.sipkey1": "sipval1", "sip.uui.sipkey2": "sipval2"},
		},
		{
			name:    "Renames",
			renames: map[string]string{"X-Customer-ID": "ivr.customer_id", "sip.uui.sipkey1": "ivr.key1", "Diversion": "ivr.diversion"},
			headers: h("X-CUSTOMER-ID", "12345", "User-to-User", "sipkey1=a;sipkey2=b", "Diversion", "<sip:1@x>", "Subject", "s"),
			want:    map[string]string{"ivr.customer_id": "12345", "ivr.key1": "a", "sip.uui.sipkey2": "b", "ivr.diversion": "<sip:1@x>"},
		},
		{
			name:    "RepeatedHeadersJoined",
			headers: h("X-Tag", "a", "X-Other", "o", "x-tag", "b"),
			want:    map[string]string{"sip.x-tag": "a, b", "sip.x-other": "o"},
		},
		{
			name:     "UndecodableUUIKeptRaw",
			headers:  h("User-to-User", "00C8;encoding=hex", "X-A", "1"),
			want:     map[string]string{"sip.uui.raw": "00C8;encoding=hex", "sip.x-a": "1"},
			uuiError: true,
		},
		{
			name:    "BadNamesSkipped",
			headers: h("X-A!b", "1", "X-a..b", "2", "X-"+strings.Repeat("z", 130), "3", "X-Ok.Sub", "4", "X-Bad-Value", "a\x01b", "User-to-User", "good=1;bad key=2;raw=3;ünï=4"),
			want:    map[string]string{"sip.x-ok.sub": "4", "sip.uui.good": "1"},
			skipped: []string{"X-A!b", "X-a..b", "X-" + strings.Repeat("z", 130), "X-Bad-Value", "User-to-User key bad key", "User-to-User key raw", "User-to-User key ünï"},
		},
		{
			name:    "RenameWinsOverDefault",
			renames: map[string]string{"X-A": "sip.x-b"},
			headers: h("X-B", "natural", "X-A", "renamed"),
			want:    map[string]string{"sip.x-b": "renamed"},
			skipped: []string{"X-B"},
		},
		{
			name:    "UUIKeyCaseKept",
			headers: h("User-to-User", "CustomerID=7"),
			want:    map[string]string{"sip.uui.CustomerID": "7"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := sipcodec.NewMapper(sipcodec.Renames(tt.renames))
			if err != nil {
				t.Fatal(err)
			}
			got := m.Map(tt.headers)
			if !reflect.DeepEqual(got.Vars, tt.want) {
				t.Fatalf("Vars=%v, want %v", got.Vars, tt.want)
			}
			var skipped []string
			for _, s := range got.Skipped {
				if s.Reason == "" {
					t.Errorf("skip %q has no reason", s.Source)
				}
				skipped = append(skipped, s.Source)
			}
			if !reflect.DeepEqual(skipped, tt.skipped) {
				t.Fatalf("Skipped=%q, want %q", skipped, tt.skipped)
			}
			if got, want := got.UUIErr != nil, tt.uuiError; got != want {
				t.Fatalf("UUIErr=%v, want an error: %v", got, want)
			}
			if got.UUIErr != nil && !errors.Is(got.UUIErr, sipcodec.ErrUUI) {
				t.Fatalf("UUIErr=%v does not wrap ErrUUI", got.UUIErr)
			}
		})
	}
}

func TestNewMapper_Refused(t *testing.T) {
	tests := []struct {
		name    string
		renames map[string]string
	}{
		{"TargetNotAName", map[string]string{"X-A": "ivr.a b"}},
		{"TargetNoNamespace", map[string]string{"X-A": "customer"}},
		{"TargetUnknownNamespace", map[string]string{"X-A": "crm.customer"}},
		{"TargetCallNamespace", map[string]string{"X-A": "call.from"}},
		{"SourceNotAHeader", map[string]string{"X A": "ivr.a"}},
		{"SourceUUIHeader", map[string]string{"User-to-User": "ivr.a"}},
		{"SourceBadVar", map[string]string{"sip.uui.a b": "ivr.a"}},
		{"SameSourceTwice", map[string]string{"X-A": "ivr.a", "sip.x-a": "ivr.b"}},
		{"SameTargetTwice", map[string]string{"X-A": "ivr.a", "X-B": "ivr.a"}},
		{"TargetReservedTransfer", map[string]string{"X-A": "sip.transfer.status"}},
		{"TargetReservedLegs", map[string]string{"X-A": "sip.legs"}},
		{"TargetReservedRaw", map[string]string{"X-A": "sip.uui.raw"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := sipcodec.NewMapper(sipcodec.Renames(tt.renames)); err == nil {
				t.Fatalf("NewMapper(%v)=nil error, want one", tt.renames)
			}
		})
	}
}

// FuzzMapper_Map feeds arbitrary header names and values: every variable produced must be a
// valid name holding clean text, and nothing may panic.
func FuzzMapper_Map(f *testing.F) {
	f.Add("X-Customer-ID", "123", "sipkey1=a;sipkey2=b")
	f.Add("X-a..b", "\x00", "7369706B6579313D73697076616C31;encoding=hex")
	f.Add("x-", "", "raw=1")
	f.Add("X-Name", "M\xfcller 100%", "name=M\xfcller")
	m, err := sipcodec.NewMapper(sipcodec.Renames(map[string]string{"X-Customer-ID": "ivr.customer_id"}))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, value, uui string) {
		got := m.Map([]sipcodec.Header{{Name: name, Value: value}, {Name: "User-to-User", Value: uui}})
		for k, v := range got.Vars {
			if err := sipcodec.CheckVarName(k); err != nil {
				t.Fatalf("variable %q: %v", k, err)
			}
			if strings.ContainsAny(v, "\r\n\x00") {
				t.Fatalf("variable %q=%q holds CR, LF or NUL", k, v)
			}
			if !utf8.ValidString(v) {
				t.Fatalf("variable %q=%q is not UTF-8", k, v)
			}
		}
		// A value that was not UTF-8 is kept escaped, and the escape gives back its bytes.
		if def := sipcodec.HeaderVar(name); got.Vars[def] != "" && !utf8.ValidString(value) {
			if back, err := url.PathUnescape(got.Vars[def]); err != nil || back != value {
				t.Fatalf("%q kept as %q, which unescapes to %q (%v)", value, got.Vars[def], back, err)
			}
		}
	})
}

func TestMapped_Values(t *testing.T) {
	m, err := sipcodec.NewMapper(map[string]sipcodec.Rule{
		"X-Score":        {Var: "ivr.score", Type: sipcodec.TypeNumber},
		"X-Premium":      {Type: sipcodec.TypeBoolean}, // keeps sip.x-premium
		"X-Profile":      {Var: "ivr.profile", Type: sipcodec.TypeJSON},
		"sip.uui.tier":   {Var: "ivr.tier", Type: sipcodec.TypeString},
		"sip.uui.amount": {Type: sipcodec.TypeNumber},
		"X-Bad-Number":   {Var: "ivr.bad_number", Type: sipcodec.TypeNumber},
		"X-Bad-Bool":     {Type: sipcodec.TypeBoolean},
		"X-Bad-JSON":     {Var: "ivr.bad_json", Type: sipcodec.TypeJSON},
		"X-Null":         {Var: "ivr.null", Type: sipcodec.TypeJSON},
		"X-Deep":         {Var: "ivr.deep", Type: sipcodec.TypeJSON},
		"X-Big":          {Var: "ivr.big", Type: sipcodec.TypeJSON},
	})
	if err != nil {
		t.Fatal(err)
	}
	mapped := m.Map([]sipcodec.Header{
		{Name: "X-Score", Value: " 42.5 "}, {Name: "X-Premium", Value: "TRUE"},
		{Name: "X-Profile", Value: `{"tier": "gold", "orders": [1, 2]}`},
		{Name: "User-to-User", Value: "tier=007;amount=-1e3"},
		{Name: "X-Bad-Number", Value: "+4930"}, {Name: "X-Bad-Bool", Value: "yes"},
		{Name: "X-Bad-JSON", Value: "{tier: gold}"}, {Name: "X-Null", Value: "null"},
		{Name: "X-Deep", Value: strings.Repeat("[", 40) + strings.Repeat("]", 40)},
		{Name: "X-Big", Value: `"` + strings.Repeat("x", 100) + `"`},
		{Name: "X-Plain", Value: "0049"},
	})
	vals, bad := mapped.Values(64)
	want := map[string]string{
		"ivr.score": `42.5`, "sip.x-premium": `true`, "ivr.profile": `{"tier":"gold","orders":[1,2]}`,
		"ivr.tier": `"007"`, "sip.uui.amount": `-1e3`, "sip.x-plain": `"0049"`,
		"sip.raw.ivr.bad_number": `"+4930"`, "sip.raw.sip.x-bad-bool": `"yes"`, "sip.raw.ivr.bad_json": `"{tier: gold}"`,
		"sip.raw.ivr.null": `"null"`, "sip.raw.ivr.deep": `"` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `"`,
		"sip.raw.ivr.big": `"\"` + strings.Repeat("x", 100) + `\""`,
	}
	got := map[string]string{}
	for k, v := range vals {
		got[k] = string(v)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Values:\n got %v\nwant %v", got, want)
	}
	var vars []string
	for _, u := range bad {
		vars = append(vars, u.Var)
		if u.Reason == "" || u.RawVar != sipcodec.RawVar(u.Var) {
			t.Errorf("%+v", u)
		}
	}
	if got, want := strings.Join(vars, " "), "ivr.bad_json ivr.bad_number ivr.big ivr.deep ivr.null sip.x-bad-bool"; got != want {
		t.Fatalf("unconverted %q, want %q", got, want)
	}
}

func TestNewMapper_Types(t *testing.T) {
	if _, err := sipcodec.NewMapper(map[string]sipcodec.Rule{"X-A": {Type: "integer"}}); err == nil {
		t.Error("an unknown type was accepted")
	}
	if _, err := sipcodec.NewMapper(map[string]sipcodec.Rule{"X-A": {Var: "sip.raw.x"}}); err == nil {
		t.Error("a target in sip.raw. was accepted")
	}
}

// FuzzMapped_Values: whatever the text and type, a value either converts to
// JSON the session stores, or is kept as text; nothing is lost or panics.
func FuzzMapped_Values(f *testing.F) {
	for _, s := range []string{"1e400", `"\ud800"`, "[-1e309]", "M\xfcller", "42", "-1.5e3", "007", "true", "0", `{"a":[1]}`, "null", "", " ", "\x00", "1e999999", `"x"`} {
		f.Add(s)
	}
	m, err := sipcodec.NewMapper(map[string]sipcodec.Rule{
		"X-N": {Var: "ivr.n", Type: sipcodec.TypeNumber}, "X-B": {Var: "ivr.b", Type: sipcodec.TypeBoolean},
		"X-J": {Var: "ivr.j", Type: sipcodec.TypeJSON}, "X-S": {Var: "ivr.s"},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v string) {
		mapped := m.Map([]sipcodec.Header{{Name: "X-N", Value: v}, {Name: "X-B", Value: v}, {Name: "X-J", Value: v}, {Name: "X-S", Value: v}})
		vals, _ := mapped.Values(8192)
		for name := range mapped.Vars {
			got, ok := vals[name]
			if !ok {
				got, ok = vals[sipcodec.RawVar(name)]
			}
			if !ok {
				t.Fatalf("%s=%q lost", name, v)
			}
			if err := jsontest.Strict(got); err != nil {
				t.Fatalf("%s: %q, which a strict client cannot read: %v", name, got, err)
			}
		}
	})
}

// A REFER's headers go through the INVITE's rules; what no rule names lands under sip.refer.
func TestMapper_MapRefer(t *testing.T) {
	m, err := sipcodec.NewMapper(map[string]sipcodec.Rule{
		"X-Customer-ID": {Var: "ivr.customer_id", Type: sipcodec.TypeNumber},
		"sip.uui.score": {Type: sipcodec.TypeNumber}, // keeps its default name: sip.refer.uui.score in a REFER
	})
	if err != nil {
		t.Fatal(err)
	}
	got := m.MapRefer([]sipcodec.Header{
		{Name: "X-AI-Summary", Value: "wants to dispute a charge"}, {Name: "X-Customer-ID", Value: "77"},
		{Name: "User-to-User", Value: "score=9;topic=billing"}, {Name: "Subject", Value: "x"},
	})
	want := map[string]string{"sip.refer.x-ai-summary": "wants to dispute a charge", "ivr.customer_id": "77",
		"sip.refer.uui.score": "9", "sip.refer.uui.topic": "billing"}
	if !reflect.DeepEqual(got.Vars, want) {
		t.Fatalf("Vars=%v, want %v", got.Vars, want)
	}
	if got.Types["ivr.customer_id"] != sipcodec.TypeNumber || got.Types["sip.refer.uui.score"] != sipcodec.TypeNumber {
		t.Fatalf("Types=%v", got.Types)
	}
	raw := m.MapRefer([]sipcodec.Header{{Name: "User-to-User", Value: "00C8;encoding=hex"}})
	if raw.Vars["sip.refer.uui.raw"] != "00C8;encoding=hex" || raw.UUIErr == nil {
		t.Fatalf("undecodable UUI: %v %v", raw.Vars, raw.UUIErr)
	}
	if _, err := sipcodec.NewMapper(sipcodec.Renames(map[string]string{"X-A": "sip.refer.target"})); err == nil {
		t.Fatal("a rule may target sip.refer.target")
	}
}

// TestMapper_NotUTF8: a header or User-to-User value that is not UTF-8 (or
// a number beyond a float) never fails the call: it is kept in the
// documented escaped form, named for the log.
func TestMapper_NotUTF8(t *testing.T) {
	m, err := sipcodec.NewMapper(map[string]sipcodec.Rule{"X-Score": {Var: "ivr.score", Type: sipcodec.TypeNumber}})
	if err != nil {
		t.Fatal(err)
	}
	got := m.Map([]sipcodec.Header{
		{Name: "X-Name", Value: "M\xfcller 100%"}, {Name: "X-Plain", Value: "100%"},
		{Name: "User-to-User", Value: "name=M\xfcller;x=1"}, {Name: "X-Score", Value: "1e400"},
		{Name: "X-Cesu", Value: "\xed\xa0\x80"}, // a UTF-16 surrogate as bytes: not UTF-8
	})
	want := map[string]string{"sip.x-name": "M%FCller 100%25", "sip.x-plain": "100%", "sip.uui.raw": "name=M%FCller;x=1", "ivr.score": "1e400", "sip.x-cesu": "%ED%A0%80"}
	if !reflect.DeepEqual(got.Vars, want) {
		t.Fatalf("Vars=%q, want %q", got.Vars, want)
	}
	if strings.Join(got.Escaped, " ") != "X-Name X-Cesu User-to-User" {
		t.Fatalf("Escaped=%q", got.Escaped)
	}
	vals, bad := got.Values(8192)
	if _, ok := vals["ivr.score"]; ok || len(bad) != 1 || string(vals["sip.raw.ivr.score"]) != `"1e400"` || !strings.Contains(bad[0].Reason, "64-bit float") {
		t.Fatalf("1e400 as a number: %q %+v", vals, bad)
	}
	for name, v := range vals {
		if err := jsontest.Strict(v); err != nil {
			t.Fatalf("%s=%q: %v", name, v, err)
		}
	}
}
