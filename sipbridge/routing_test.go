package sipbridge_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callctx/callctx/internal/sipptest"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge"
)

// INVITEs to different numbers land in different flows, as the routing table in the flows
// directory says: a number in E.164, the same in national format and as a tel: URI, a
// prefix, and the default for the rest. Each flow hangs up with its own reason.
func TestBridge_RoutesNumbersToFlows(t *testing.T) {
	cases := []struct {
		scenario, dialled string
		flow, route       string
	}{
		{"uac_dialled.xml", "+4930111", "sales", "sales-line"},
		{"uac_dialled.xml", "030111", "sales", "sales-line"}, // national format, country DE
		{"uac_dialled_tel.xml", "+49-30-111", "sales", "sales-line"},
		{"uac_dialled.xml", "+49302555", "support", "+49302*"},
		{"uac_dialled.xml", "+4940999", "main-menu", "default"},
	}
	e := startBridgeFlows(t, sipbridge.Config{}, "testdata/routing")
	for _, tc := range cases {
		t.Run(tc.dialled, func(t *testing.T) {
			uac := sipptest.Start(t, tc.scenario, e.bridge.Addr(), 0, "-s", tc.dialled)
			uac.Wait(t)
			call := e.lastCall(t)
			if call.To != tc.dialled || call.Flow != tc.flow || call.Route != tc.route || call.EndReason != tc.flow {
				t.Errorf("call to=%q flow=%q route=%q endReason=%q, want %s, %s, %s", call.To, call.Flow, call.Route, call.EndReason, tc.dialled, tc.flow, tc.route)
			}
			if got := e.vars(t, call.ID)["call.route"]; got != tc.route {
				t.Errorf("call.route=%v, want %s", got, tc.route)
			}
		})
	}
}

// Without a default route, a number the table does not serve is refused with 404 Not Found,
// and no call is created.
func TestBridge_UnroutedNumberRefused(t *testing.T) {
	data, err := os.ReadFile("testdata/routing/routing.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	noDefault := strings.Replace(string(data), "  default: main-menu\n", "", 1)
	if err := os.WriteFile(filepath.Join(dir, "routing.yaml"), []byte(noDefault), 0o644); err != nil {
		t.Fatal(err)
	}
	e := startBridgeFlows(t, sipbridge.Config{}, dir)
	uac := sipptest.Start(t, "uac_not_served.xml", e.bridge.Addr(), 0, "-s", "+4940999")
	uac.Wait(t)
	page, err := e.svc.ListCalls(context.Background(), session.ListOptions{State: session.FilterAll})
	if err != nil || len(page.Items) != 0 {
		t.Fatalf("calls %v %v, want none", page, err)
	}
	// sip.flow, when set, takes what the table does not.
	e = startBridgeFlows(t, sipbridge.Config{Flow: "support"}, dir)
	uac = sipptest.Start(t, "uac_dialled.xml", e.bridge.Addr(), 0, "-s", "+4940999")
	uac.Wait(t)
	if call := e.lastCall(t); call.Flow != "support" || call.Route != "" || call.EndReason != "support" {
		t.Errorf("call flow=%q route=%q endReason=%q, want the sip.flow support and no route", call.Flow, call.Route, call.EndReason)
	}
}
