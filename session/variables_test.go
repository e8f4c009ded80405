package session_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
)

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string // part of the error; "" for a good name
	}{
		{"ivr.email", ""},
		{"app.inputReader.reference", ""},
		{"sip.x-customer-id", ""},
		{"sip.uui.param_1", ""},
		{"call.from", ""},
		{"", "empty"},
		{"email", "no namespace"},
		{"crm.email", "unknown namespace"},
		{"ivr.", "ends with a dot"},
		{"ivr..a", "empty segment"},
		{".ivr", "unknown namespace"},
		{"ivr.my email", "space at position 7"},
		{"ivr.a\tb", "control character U+0009"},
		{"ivr.a\x00", "control character U+0000"},
		{"ivr.a/b", "'/' at position 6"},
		{"ivr.café", "'é' at position 8"},
		{"ivr." + strings.Repeat("x", 125), "129 characters"},
		{"ivr." + strings.Repeat("x", 124), ""},
	} {
		err := session.CheckName(tc.name, 128)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckName(%q) = %v, want nil", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckName(%q) = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

func TestPatch_Apply(t *testing.T) {
	at := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	base := func() *session.Session {
		return &session.Session{CallID: "c", State: session.StateActive, Version: 3, Variables: map[string]json.RawMessage{"ivr.a": json.RawMessage(`1`), "ivr.b": json.RawMessage(`"x"`)}}
	}
	t.Run("OK", func(t *testing.T) {
		s := base()
		h, err := (&session.Patch{Set: map[string]json.RawMessage{"ivr.a": json.RawMessage(`2`), "ivr.b": nil, "ivr.c": json.RawMessage(`true`), "ivr.gone": nil}, Actor: "crm", At: at}).Apply(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.Version, uint64(4); got != want {
			t.Fatalf("Version=%d, want %d", got, want)
		}
		if len(h.Changes) != 3 || h.Version != 4 || h.Actor != "crm" || !s.UpdatedAt.Equal(at) {
			t.Fatalf("entry %+v", h)
		}
		if _, ok := s.Variables["ivr.b"]; ok {
			t.Fatal("null did not delete")
		}
	})
	t.Run("NoChange", func(t *testing.T) {
		s := base()
		h, err := (&session.Patch{Set: map[string]json.RawMessage{"ivr.a": json.RawMessage(`1`), "ivr.zzz": nil}}).Apply(s)
		if err != nil || h != nil || s.Version != 3 {
			t.Fatalf("h=%v err=%v version=%d", h, err, s.Version)
		}
	})
	t.Run("ErrPreconditionFailed", func(t *testing.T) {
		s := base()
		_, err := (&session.Patch{Set: map[string]json.RawMessage{"ivr.a": json.RawMessage(`2`)}, IfMatch: 2}).Apply(s)
		if session.ErrorCode(err) != session.CodePreconditionFailed || s.Version != 3 {
			t.Fatalf("err=%v", err)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		s := base()
		s.State = session.StateEnded
		_, err := (&session.Patch{Set: map[string]json.RawMessage{"ivr.a": json.RawMessage(`2`)}}).Apply(s)
		if session.ErrorCode(err) != session.CodeConflict {
			t.Fatalf("err=%v", err)
		}
	})
	t.Run("ErrLimits", func(t *testing.T) {
		s := base()
		_, err := (&session.Patch{Set: map[string]json.RawMessage{"ivr.c": json.RawMessage(`1`), "ivr.a": nil, "ivr.d": json.RawMessage(`1`)}, Limits: session.Limits{MaxVariables: 2}}).Apply(s)
		fields := session.ErrorFields(err)
		if session.ErrorCode(err) != session.CodeInvalid || len(fields) != 2 || fields[0].Name != "ivr.c" || fields[1].Name != "ivr.d" {
			t.Fatalf("err=%v fields=%v", err, fields)
		}
		if len(s.Variables) != 2 || s.Version != 3 {
			t.Fatal("a refused patch changed the session")
		}
	})
}
