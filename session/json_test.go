package session_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
)

// TestSession_AppendJSON: the hand-written encoder produces exactly what
// encoding/json would for the same object, keys sorted.
func TestSession_AppendJSON(t *testing.T) {
	s := &session.Session{
		CallID: "c-1", State: session.StateActive, Version: 42,
		Variables: map[string]json.RawMessage{
			"ivr.email": json.RawMessage(`"a@b.c"`), "app.x": json.RawMessage(`{"k":[1,2]}`),
			"ivr.premium": json.RawMessage(`true`), "call.from": json.RawMessage(`"+49"`),
		},
		CreatedAt: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC),
		UpdatedAt: time.Date(2026, 11, 20, 9, 0, 2, 123456789, time.UTC),
	}
	got := s.AppendJSON(nil)
	want, _ := json.Marshal(struct {
		CallID    string                     `json:"callId"`
		State     session.State              `json:"state"`
		Version   uint64                     `json:"version"`
		Variables map[string]json.RawMessage `json:"variables"`
		CreatedAt time.Time                  `json:"createdAt"`
		UpdatedAt time.Time                  `json:"updatedAt"`
	}{s.CallID, s.State, s.Version, s.Variables, s.CreatedAt, s.UpdatedAt})
	if string(got) != string(want) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"uo\te`, "\x00\x1f\n\r\t", "<a>&", "é€𝄞", "\u2028\u2029", "\xff\xfe", "a\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := session.AppendJSONString(nil, s)
		want, _ := json.Marshal(s)
		if string(got) != string(want) {
			t.Fatalf("AppendJSONString(%q) = %s, encoding/json says %s", s, got, want)
		}
	})
}

// TestHistoryEntry_AppendJSON: the hand-written encoder matches
// encoding/json's output for the same entry.
func TestHistoryEntry_AppendJSON(t *testing.T) {
	h := &session.HistoryEntry{Version: 3, At: time.Date(2026, 11, 20, 9, 0, 2, 5, time.UTC), Actor: "crm \"x\"",
		Changes: map[string]session.Change{"ivr.b": {Old: json.RawMessage(`1`)}, "ivr.a": {New: json.RawMessage(`{"k":true}`)}}}
	type change struct {
		Old json.RawMessage `json:"old"`
		New json.RawMessage `json:"new"`
	}
	want, _ := json.Marshal(struct {
		Version uint64            `json:"version"`
		At      time.Time         `json:"at"`
		Actor   string            `json:"actor"`
		Changes map[string]change `json:"changes"`
	}{h.Version, h.At, h.Actor, map[string]change{"ivr.b": {Old: json.RawMessage(`1`), New: json.RawMessage(`null`)}, "ivr.a": {Old: json.RawMessage(`null`), New: json.RawMessage(`{"k":true}`)}}})
	if got := h.AppendJSON(nil); string(got) != string(want) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	var back session.HistoryEntry
	if err := json.Unmarshal(h.AppendJSON(nil), &back); err != nil || back.Changes["ivr.b"].New != nil || string(back.Changes["ivr.a"].New) != `{"k":true}` {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}

// TestCall_AppendJSON: the hand-written encoder of a call writes what
// encoding/json does, for a call with every field set (by reflection, so
// that a field added to Call and not to the encoder fails here) and one
// with none of the optional ones.
func TestCall_AppendJSON(t *testing.T) {
	at := time.Date(2026, 11, 20, 9, 0, 2, 123456789, time.UTC)
	full := &session.Call{}
	v := reflect.ValueOf(full).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name + ` <&>"\u2028`)
		case reflect.Struct: // time.Time
			f.Set(reflect.ValueOf(at.Add(time.Duration(i) * time.Second)))
		default:
			t.Fatalf("Call.%s: a field of kind %s; teach this test and Call.AppendJSON about it", v.Type().Field(i).Name, f.Kind())
		}
	}
	for _, c := range []*session.Call{
		full,
		{ID: "c-1", State: session.StateActive, From: "+4930", To: "sip:ivr@x", Direction: session.DirectionInbound, StartedAt: at},
	} {
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.AppendJSON(nil); string(got) != string(want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}

// TestSession_AppendJSONAfterWrites: the order of names a session keeps
// from decoding and from each write stays the canonical one through writes
// that change, add and delete variables.
func TestSession_AppendJSONAfterWrites(t *testing.T) {
	base := &session.Session{CallID: "c", State: session.StateActive, Version: 1,
		Variables: map[string]json.RawMessage{"ivr.b": json.RawMessage(`1`), "ivr.d": json.RawMessage(`2`)}}
	var s session.Session
	if err := s.UnmarshalJSON(base.AppendJSON(nil)); err != nil {
		t.Fatal(err)
	}
	cur := &s
	for i, set := range []map[string]json.RawMessage{
		{"ivr.b": json.RawMessage(`3`)},                                // changed
		{"ivr.a": json.RawMessage(`4`), "ivr.e": json.RawMessage(`5`)}, // added before and after
		{"ivr.d": nil}, // deleted
		{"ivr.c": json.RawMessage(`6`)},
	} {
		p := &session.Patch{Set: set, Actor: "t", At: time.Unix(int64(i), 0).UTC()}
		next, h, err := p.Applied(cur)
		if err != nil || h == nil {
			t.Fatalf("write %d: %v", i, err)
		}
		want, _ := json.Marshal(struct {
			CallID    string                     `json:"callId"`
			State     session.State              `json:"state"`
			Version   uint64                     `json:"version"`
			Variables map[string]json.RawMessage `json:"variables"`
			CreatedAt time.Time                  `json:"createdAt"`
			UpdatedAt time.Time                  `json:"updatedAt"`
		}{next.CallID, next.State, next.Version, next.Variables, next.CreatedAt, next.UpdatedAt})
		if got := next.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("after write %d:\ngot  %s\nwant %s", i, got, want)
		}
		cur = next
	}
}
