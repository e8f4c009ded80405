package storetest

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/callctx/callctx/session"
)

// TestApply checks Apply (Service.Merge): merge-patch writes, versions, If-Match, limits, exact values, concurrency.
func TestApply(t *testing.T, open Open) {
	ct := contract{open}
	t.Run("Merge", ct.applyMerge)
	t.Run("ErrPreconditionFailed", ct.applyErrPreconditionFailed)
	t.Run("ErrInvalid", ct.applyErrInvalid)
	t.Run("Limits", ct.applyLimits)
	t.Run("ValuesExact", ct.applyValuesExact)
	t.Run("LimitsExact", ct.applyLimitsExact)
	t.Run("NoChange", ct.applyNoChange)
	t.Run("ConcurrentIfMatch", ct.applyConcurrentIfMatch)
}

func (ct contract) applyMerge(t *testing.T) {
	svc, _ := ct.newService(t)
	c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	s, _, err := svc.Merge(ctx, c.ID, vars(`{"ivr.email":"a@b.c","ivr.premium":true,"ivr.track_id":"T-1"}`), client)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Version, uint64(2); got != want {
		t.Fatalf("Version=%d, want %d", got, want)
	}
	// null deletes, absent keys stay, an unchanged value is not a change.
	s, _, err = svc.Merge(ctx, c.ID, vars(`{"ivr.premium":null,"ivr.email":"a@b.c","app.x":{"k": [1, 2]}}`), client)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Variables["ivr.premium"]; ok {
		t.Fatal("ivr.premium not deleted")
	}
	if got, want := string(s.Variables["ivr.track_id"]), `"T-1"`; got != want {
		t.Fatalf("ivr.track_id=%s, want %s", got, want)
	}
	if got, want := string(s.Variables["app.x"]), `{"k":[1,2]}`; got != want {
		t.Fatalf("app.x=%s, want compact %s", got, want)
	}
	js, version, err := svc.SessionJSON(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := svc.Session(ctx, c.ID)
	if want := stored.AppendJSON(nil); string(js) != string(want) || version != stored.Version {
		t.Fatalf("SessionJSON = %s (v%d), want %s (v%d)", js, version, want, stored.Version)
	}
	h, err := svc.History(ctx, c.ID, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || h[0].Version != 3 || h[0].Actor != "crm" {
		t.Fatalf("history after 2 = %+v", h)
	}
	if _, ok := h[0].Changes["ivr.email"]; ok {
		t.Fatal("unchanged ivr.email recorded as a change")
	}
	if ch := h[0].Changes["ivr.premium"]; string(ch.Old) != "true" || ch.New != nil {
		t.Fatalf("ivr.premium change = %s → %s", ch.Old, ch.New)
	}
	// A write that changes nothing makes no version.
	s, _, err = svc.Merge(ctx, c.ID, vars(`{"ivr.email":"a@b.c","ivr.gone":null}`), client)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Version, uint64(3); got != want {
		t.Fatalf("Version after no-op=%d, want %d", got, want)
	}
}

func (ct contract) applyErrPreconditionFailed(t *testing.T) {
	svc, _ := ct.newService(t)
	c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	opts := client
	opts.IfMatch = 1
	if _, _, err := svc.Merge(ctx, c.ID, vars(`{"ivr.a":1}`), opts); err != nil {
		t.Fatal(err)
	}
	_, _, err := svc.Merge(ctx, c.ID, vars(`{"ivr.a":2}`), opts)
	wantCode(t, err, session.CodePreconditionFailed)
	s, _ := svc.Session(ctx, c.ID)
	if string(s.Variables["ivr.a"]) != "1" || s.Version != 2 {
		t.Fatalf("session changed by a failed write: %+v", s)
	}
}

func (ct contract) applyErrInvalid(t *testing.T) {
	svc, _ := ct.newService(t)
	c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	_, _, err := svc.Merge(ctx, c.ID, vars(`{"ivr.ok":1,"call.from":"x","sip.x-a":"y","crm.x":1,"ivr.a b":1,"ivr..a":1}`), client)
	wantCode(t, err, session.CodeInvalid)
	names := map[string]bool{}
	for _, f := range session.ErrorFields(err) {
		names[f.Name] = true
	}
	for _, n := range []string{"call.from", "sip.x-a", "crm.x", "ivr.a b", "ivr..a"} {
		if !names[n] {
			t.Errorf("%s not named in %v", n, session.ErrorFields(err))
		}
	}
	if names["ivr.ok"] {
		t.Error("ivr.ok named although it is fine")
	}
	s, _ := svc.Session(ctx, c.ID)
	if _, ok := s.Variables["ivr.ok"]; ok || s.Version != 1 {
		t.Fatal("a refused write changed the session")
	}
	// The SIP bridge may write sip., a client may not.
	if _, _, err := svc.Merge(ctx, c.ID, vars(`{"sip.x-a":"y"}`), session.WriteOptions{Actor: "sip", Origin: session.OriginSIP}); err != nil {
		t.Fatal(err)
	}
}

func (ct contract) applyLimits(t *testing.T) {
	st := ct.open(t)
	svc := session.NewService(st, session.Options{Limits: session.Limits{MaxVariables: 10, MaxSessionBytes: 400, MaxValueBytes: 100}})
	c, s, err := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	if err != nil {
		t.Fatal(err)
	}
	free := 10 - len(s.Variables)
	batch := map[string]json.RawMessage{}
	for i := 0; i <= free; i++ {
		batch["ivr.v"+strconv.Itoa(i)] = json.RawMessage("1")
	}
	_, _, err = svc.Merge(ctx, c.ID, batch, client)
	wantCode(t, err, session.CodeInvalid)
	if got, want := len(session.ErrorFields(err)), free+1; got != want {
		t.Fatalf("fields=%d, want %d", got, want)
	}
	_, _, err = svc.Merge(ctx, c.ID, vars(`{"ivr.big":"`+string(make100('x'))+`"}`), client)
	wantCode(t, err, session.CodeInvalid)
	_, _, err = svc.Merge(ctx, c.ID, vars(`{"ivr.a":"`+string(make100('x')[:90])+`","ivr.b":"`+string(make100('y')[:90])+`","ivr.c":"`+string(make100('z')[:90])+`"}`), client)
	wantCode(t, err, session.CodeInvalid)
	s2, _ := svc.Session(ctx, c.ID)
	if s2.Version != s.Version {
		t.Fatal("a write over the limits changed the session")
	}
}

func (ct contract) applyValuesExact(t *testing.T) {
	_, svc, _ := ct.fresh(t, session.Options{})
	c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	want := map[string]string{
		"ivr.big":   `123456789012345678901234567890`,
		"ivr.exp":   `1.0e+2`,
		"ivr.neg":   `-0`,
		"ivr.str":   `"ü \"q\" \\ \u2028 <&> 'x' \ud83d\ude00 é"`,
		"ivr.obj":   `{"b":1,"a":[true,false,null],"c":{}}`,
		"ivr.empty": `""`,
		"ivr.arr":   `[]`,
	}
	in := map[string]json.RawMessage{}
	for k, v := range want {
		in[k] = json.RawMessage(" " + v + " ")
	}
	s, _, err := svc.Merge(ctx, c.ID, in, client)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := svc.Session(ctx, c.ID)
	h, _ := svc.History(ctx, c.ID, 1, 0)
	for name, v := range want {
		if g := string(s.Variables[name]); g != v {
			t.Errorf("returned %s=%s, want %s", name, g, v)
		}
		if g := string(got.Variables[name]); g != v {
			t.Errorf("stored %s=%s, want %s", name, g, v)
		}
		if len(h) != 1 {
			t.Fatalf("history entries %d, want 1", len(h))
		}
		if g := string(h[0].Changes[name].New); g != v {
			t.Errorf("history %s=%s, want %s", name, g, v)
		}
	}
}

func (ct contract) applyLimitsExact(t *testing.T) {
	// The limits must hold to the byte after updates and deletes, however
	// a store keeps count.
	st, probe, clock := ct.fresh(t, session.Options{})
	_, s0, _ := probe.CreateCall(ctx, session.NewCall{ID: "probe1", From: "a", To: "b"}, client) // as long as "limits"
	base, baseCount := s0.Size(), len(s0.Variables)
	maxBytes := base + 100
	svc := session.NewService(st, session.Options{Now: clock.Now, Limits: session.Limits{MaxVariables: baseCount + 4, MaxSessionBytes: maxBytes}})
	c, _, err := svc.CreateCall(ctx, session.NewCall{ID: "limits", From: "a", To: "b"}, client)
	if err != nil {
		t.Fatal(err)
	}
	str := func(n int) json.RawMessage { return json.RawMessage(`"` + strings.Repeat("x", n-2) + `"`) }
	steps := []struct {
		name string
		set  map[string]json.RawMessage
		ok   bool
	}{
		{"fill the bytes exactly", map[string]json.RawMessage{"ivr.a": str(100 - len("ivr.a"))}, true},
		{"one byte more", map[string]json.RawMessage{"ivr.b": json.RawMessage("1")}, false},
		{"grow by one byte", map[string]json.RawMessage{"ivr.a": str(101 - len("ivr.a"))}, false},
		{"same size, other value", map[string]json.RawMessage{"ivr.a": json.RawMessage(`"` + strings.Repeat("y", 100-len("ivr.a")-2) + `"`)}, true},
		{"shrink", map[string]json.RawMessage{"ivr.a": str(50)}, true},
		{"fill again exactly", map[string]json.RawMessage{"ivr.b": str(45 - len("ivr.b"))}, true},
		{"delete", map[string]json.RawMessage{"ivr.a": json.RawMessage("null"), "ivr.b": json.RawMessage("null")}, true},
		{"four variables fit", map[string]json.RawMessage{"ivr.c": json.RawMessage("1"), "ivr.d": json.RawMessage("1"), "ivr.e": json.RawMessage("1"), "ivr.f": json.RawMessage("1")}, true},
		{"a fifth does not", map[string]json.RawMessage{"ivr.g": json.RawMessage("1")}, false},
		{"a swap does", map[string]json.RawMessage{"ivr.c": json.RawMessage("null"), "ivr.g": json.RawMessage("1")}, true},
		{"fill the bytes with them", map[string]json.RawMessage{"ivr.d": str(100 - 3*len("ivr.d1") - len("ivr.d"))}, true},
		{"over by one", map[string]json.RawMessage{"ivr.e": json.RawMessage("12")}, false},
	}
	for _, step := range steps {
		before, _ := svc.Session(ctx, c.ID)
		_, _, err := svc.Merge(ctx, c.ID, step.set, client)
		if step.ok && err != nil {
			t.Fatalf("%s: %v (session %d bytes, %d variables)", step.name, err, before.Size(), len(before.Variables))
		}
		if !step.ok {
			wantCode(t, err, session.CodeInvalid)
		}
		after, _ := svc.Session(ctx, c.ID)
		if after.Size() > maxBytes || len(after.Variables) > baseCount+4 {
			t.Fatalf("%s: session holds %d bytes, %d variables", step.name, after.Size(), len(after.Variables))
		}
	}
}

func (ct contract) applyNoChange(t *testing.T) {
	st, svc, _ := ct.fresh(t, session.Options{})
	c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b", Variables: vars(`{"ivr.a":1}`)}, client)
	p := &session.Patch{Set: map[string]json.RawMessage{"ivr.a": json.RawMessage("1"), "ivr.none": nil}, IfMatch: 1, Actor: "x", At: edgeStart}
	s, h, err := st.Apply(ctx, c.ID, p)
	if err != nil || h != nil || s == nil || s.Version != 1 || string(s.Variables["ivr.a"]) != "1" {
		t.Fatalf("no-op apply: %+v, %+v, %v", s, h, err)
	}
}

func (ct contract) applyConcurrentIfMatch(t *testing.T) {
	svc, _ := ct.newService(t)
	c, _, _ := svc.CreateCall(ctx, session.NewCall{From: "a", To: "b"}, client)
	const workers, each = 20, 10
	var wg sync.WaitGroup
	var conflicts atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				for {
					s, err := svc.Session(ctx, c.ID)
					if err != nil {
						t.Error(err)
						return
					}
					var n int
					if v, ok := s.Variables["app.counter"]; ok {
						json.Unmarshal(v, &n)
					}
					opts := client
					opts.IfMatch = s.Version
					_, _, err = svc.Merge(ctx, c.ID, map[string]json.RawMessage{"app.counter": json.RawMessage(strconv.Itoa(n + 1))}, opts)
					if session.ErrorCode(err) == session.CodePreconditionFailed {
						conflicts.Add(1)
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	s, _ := svc.Session(ctx, c.ID)
	if got, want := string(s.Variables["app.counter"]), strconv.Itoa(workers*each); got != want {
		t.Fatalf("counter=%s, want %s (%d conflicts retried)", got, want, conflicts.Load())
	}
	h, _ := svc.History(ctx, c.ID, 0, 0)
	if got, want := len(h), workers*each+1; got != want {
		t.Fatalf("history entries=%d, want %d", got, want)
	}
}
