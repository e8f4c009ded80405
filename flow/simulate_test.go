package flow_test

import (
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/triggers"
)

func nodes(run *flow.Run) string {
	var out []string
	for _, st := range run.Path {
		out = append(out, st.Node)
	}
	return strings.Join(out, " ")
}

func TestSimulate(t *testing.T) {
	snap := mustLoad(t, "../examples/order-status/flows", env("https://crm.example.com"))
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		vars     triggers.Map
		inputs   []string
		path     string
		requests []string // automation: body
		action   string   // the last action's type
	}{
		{
			name: "KnownPremium",
			vars: triggers.Map{"call.id": "c1", "call.from": "+4930123456", "ivr.email": "jane@example.com", "ivr.premium": true, "ivr.track_id": "TRK-1"},
			path: "lookup-number welcome known-caller premium-check to-agent",
			requests: []string{
				`crm-lookup-number: {"callId":"c1","from":"+4930123456"}`,
			},
			action: "transfer",
		},
		{
			name:   "UnknownThenReference",
			vars:   triggers.Map{"call.id": "c2", "call.from": "+4930999999"},
			inputs: []string{"AB12345#"},
			path:   "lookup-number welcome known-caller inputReader thanks lookup-reference premium-check send-email email-sent bye",
			requests: []string{
				`crm-lookup-number: {"callId":"c2","from":"+4930999999"}`,
				`crm-lookup-reference: {"callId":"c2","reference":"AB12345"}`,
				`send-tracking-email: {"callId":"c2","to":null,"trackingUrl":"https://shop.example.com/track/"}`,
			},
			action: "hangup",
		},
		{
			name:   "ReferenceTooShort",
			vars:   triggers.Map{"call.id": "c3", "call.from": "+4930999999"},
			inputs: []string{"AB12"},
			path:   "lookup-number welcome known-caller inputReader goodbye bye",
			requests: []string{
				`crm-lookup-number: {"callId":"c3","from":"+4930999999"}`,
			},
			action: "hangup",
		},
		{
			name: "NoInput",
			vars: triggers.Map{"call.id": "c4", "call.from": "+4930999999"},
			path: "lookup-number welcome known-caller inputReader goodbye bye",
			requests: []string{
				`crm-lookup-number: {"callId":"c4","from":"+4930999999"}`,
			},
			action: "hangup",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sim, err := flow.Simulate(snap, flow.SimulateOptions{Flow: "order-status", Vars: tc.vars, Inputs: tc.inputs, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if got := nodes(sim.Run); got != tc.path {
				t.Fatalf("path\n%s\nwant\n%s", got, tc.path)
			}
			var reqs []string
			for _, r := range sim.Requests {
				reqs = append(reqs, r.Automation+": "+string(r.Body))
				if r.URL != "https://crm.example.com/callctx/lookup" && r.URL != "https://crm.example.com/callctx/email" {
					t.Errorf("URL %q", r.URL)
				}
			}
			if got, want := strings.Join(reqs, "\n"), strings.Join(tc.requests, "\n"); got != want {
				t.Fatalf("requests\n%s\nwant\n%s", got, want)
			}
			last := sim.Run.Path[len(sim.Run.Path)-1]
			if got := last.Action["type"]; got != tc.action {
				t.Fatalf("last action %v, want %s", got, tc.action)
			}
			if !sim.Run.Done || sim.Stopped != "" {
				t.Fatalf("Done=%v Stopped=%q", sim.Run.Done, sim.Stopped)
			}
		})
	}

	t.Run("TransferAction", func(t *testing.T) {
		sim, _ := flow.Simulate(snap, flow.SimulateOptions{Flow: "order-status", Now: now,
			Vars: triggers.Map{"ivr.email": "jane@example.com", "ivr.premium": "true", "ivr.track_id": "TRK-1"}})
		a := sim.Run.Path[len(sim.Run.Path)-1].Action
		h := a["headers"].(map[string]string)
		if a["target"] != "sip:premium-queue@pbx.example.com" || a["mode"] != "refer" || a["uui"] != "track=TRK-1" ||
			h["X-Track-Id"] != "TRK-1" || h["X-Customer-Email"] != "jane@example.com" {
			t.Fatalf("transfer action %v", a)
		}
		if got := sim.Vars["app.to-agent.status"]; got != "done" {
			t.Fatalf("app.to-agent.status=%v, want done", got)
		}
	})

	t.Run("InputStored", func(t *testing.T) {
		sim, _ := flow.Simulate(snap, flow.SimulateOptions{Flow: "order-status", Now: now, Inputs: []string{"XY98765"}})
		if got := sim.Vars["app.inputReader.reference"]; got != "XY98765" {
			t.Fatalf("app.inputReader.reference=%v", got)
		}
		for _, st := range sim.Run.Path {
			if st.Node == "known-caller" {
				if st.Wait == nil || st.Wait.Fired || st.Wait.Trigger != "crm-answered" || st.Wait.TimeoutMs != 3000 {
					t.Fatalf("wait record %+v", st.Wait)
				}
				if len(st.Cases) != 1 || st.Cases[0].Result || st.Cases[0].Explain.Trigger != "caller-known" {
					t.Fatalf("cases %+v", st.Cases)
				}
			}
		}
	})

	t.Run("Loop", func(t *testing.T) {
		loop := mustCompile(t, `
flows:
  loop:
    start: a
    nodes:
      a: {type: play, prompt: x, next: b}
      b: {type: say, text: y, next: a}
`, nil)
		sim, err := flow.Simulate(loop, flow.SimulateOptions{Flow: "loop", MaxActions: 10})
		if err != nil {
			t.Fatal(err)
		}
		if sim.Stopped == "" || sim.Run.Done {
			t.Fatalf("a looping flow was not stopped: %+v", sim.Run)
		}
	})

	t.Run("UnknownFlow", func(t *testing.T) {
		if _, err := flow.Simulate(snap, flow.SimulateOptions{Flow: "nope"}); err == nil {
			t.Fatal("no error for an unknown flow")
		}
	})
}
