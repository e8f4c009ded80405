package flow_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/session"
)

// TestEngine_CreateCall: the one way calls start picks the flow named, or
// the routing table's, or the fallback; refuses what it must; records the
// route; and starts the flow.
func TestEngine_CreateCall(t *testing.T) {
	snap := mustCompile(t, routingYAML, nil)
	monday := time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC) // support is open
	w := newWorld(t, snap, func(c *flow.Config) { c.Now = func() time.Time { return monday } })
	client := session.WriteOptions{Actor: "test", Origin: session.OriginClient}
	sip := session.WriteOptions{Actor: "sip", Origin: session.OriginSIP}
	gold := map[string]json.RawMessage{"sip.x-tier": json.RawMessage(`"gold"`)}
	cases := []struct {
		name        string
		nc          session.NewCall
		o           flow.CallOptions
		flow, route string
		code        session.Code
		ended       string
	}{
		{name: "Named", nc: session.NewCall{To: "+49301234567", Flow: "hamburg"}, flow: "hamburg"},
		{name: "UnknownFlow", nc: session.NewCall{To: "+49301234567", Flow: "nope"}, code: session.CodeInvalid},
		{name: "Routed", nc: session.NewCall{To: "030 1234567"}, flow: "sales", route: "+49301234567"},
		{name: "RoutedByTrigger", nc: session.NewCall{To: "0800 1234567"}, flow: "hotline", route: "free-phone"},
		{name: "RoutedOnItsVariables", nc: session.NewCall{To: "+4940555000", Variables: gold}, o: flow.CallOptions{WriteOptions: sip}, flow: "gold", route: `^\+4940`},
		{name: "Default", nc: session.NewCall{To: "+441234567890"}, flow: "main-menu", route: flow.DefaultRoute},
		{name: "OutboundNotRouted", nc: session.NewCall{To: "+49301234567", Direction: session.DirectionOutbound}},
		{name: "LegNotRouted", nc: session.NewCall{To: "+49301234567", ParentID: "parent"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			if o.Actor == "" {
				o.WriteOptions = client
			}
			c, s, err := w.engine.CreateCall(context.Background(), tc.nc, o)
			if tc.code != "" {
				if got := session.ErrorCode(err); got != tc.code {
					t.Fatalf("err=%v, want code %s", err, tc.code)
				}
				if tc.code == session.CodeInvalid && (len(session.ErrorFields(err)) != 1 || session.ErrorFields(err)[0].Name != "flow") {
					t.Errorf("fields %+v, want the field flow", session.ErrorFields(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Flow != tc.flow || c.Route != tc.route {
				t.Errorf("flow=%q route=%q, want %q %q", c.Flow, c.Route, tc.flow, tc.route)
			}
			want := ""
			if tc.route != "" {
				b, _ := json.Marshal(tc.route)
				want = string(b)
			}
			if got := string(s.Variables["call.route"]); got != want {
				t.Errorf("call.route=%s, want %s", got, want)
			}
			if tc.flow == "" {
				return
			}
			// Started: its run is stored, and it is at its first (and only) node.
			run, err := w.engine.FlowRun(context.Background(), c.ID)
			if err != nil || run.Flow != tc.flow {
				t.Fatalf("run %+v %v, want flow %s started", run, err, tc.flow)
			}
		})
	}
	t.Run("Fallback", func(t *testing.T) {
		noDefault := mustCompile(t, strings.Replace(routingYAML, "  default: main-menu\n", "", 1), nil)
		w.engine.Reload(noDefault)
		defer w.engine.Reload(snap)
		o := flow.CallOptions{WriteOptions: sip, Fallback: "hamburg", RefuseUnrouted: true}
		c, _, err := w.engine.CreateCall(context.Background(), session.NewCall{To: "+441234567890"}, o)
		if err != nil || c.Flow != "hamburg" || c.Route != "" {
			t.Fatalf("call %+v %v, want the fallback flow and no route", c, err)
		}
		o.Fallback = "not-loaded"
		_, _, err = w.engine.CreateCall(context.Background(), session.NewCall{To: "+441234567890"}, o)
		if got, want := session.ErrorCode(err), session.CodeNotFound; got != want || !strings.Contains(session.ErrorMessage(err), "+441234567890") {
			t.Fatalf("err=%v, want %s naming the number", err, want)
		}
		o = flow.CallOptions{WriteOptions: sip, EndUnrouted: "redirected"}
		c, _, err = w.engine.CreateCall(context.Background(), session.NewCall{To: "+441234567890"}, o)
		if err != nil || c.Flow != "" || c.State != session.StateEnded || c.EndReason != "redirected" {
			t.Fatalf("call %+v %v, want it created ended, without a flow", c, err)
		}
	})
}
