package sipcodec_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

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
			m, err := sipcodec.NewMapper(tt.renames)
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
			if _, err := sipcodec.NewMapper(tt.renames); err == nil {
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
	m, err := sipcodec.NewMapper(map[string]string{"X-Customer-ID": "ivr.customer_id"})
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
		}
	})
}
