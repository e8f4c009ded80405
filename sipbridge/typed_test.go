package sipbridge_test

import (
	"strings"
	"testing"

	"github.com/callctx/callctx/internal/sipptest"
	"github.com/callctx/callctx/sipbridge"
	"github.com/callctx/callctx/sipbridge/sipcodec"
)

// A typed sip.map converts header and UUI values; one that does not convert is kept as text
// in sip.raw.<variable>, logged, and the call goes on.
func TestBridge_TypedMapping(t *testing.T) {
	e := startBridge(t, sipbridge.Config{Map: map[string]sipcodec.Rule{
		"X-Customer-ID":     {Var: "ivr.customer_id", Type: sipcodec.TypeNumber},
		"X-Transfer-Reason": {Type: sipcodec.TypeNumber}, // "BillingInquiry" is no number
		"sip.uui.sipkey1":   {Var: "ivr.key1", Type: sipcodec.TypeJSON},
	}})
	uac := sipptest.Start(t, "uac_park_hangup.xml", e.bridge.Addr(), 0)
	call := e.call(t)
	got := e.vars(t, call.ID)
	uac.Wait(t)
	if v, ok := got["ivr.customer_id"].(float64); !ok || v != 12345 {
		t.Errorf("ivr.customer_id=%#v, want the number 12345", got["ivr.customer_id"])
	}
	if _, ok := got["sip.x-transfer-reason"]; ok {
		t.Errorf("sip.x-transfer-reason=%v, want it unset", got["sip.x-transfer-reason"])
	}
	if got["sip.raw.sip.x-transfer-reason"] != "BillingInquiry" {
		t.Errorf("sip.raw.sip.x-transfer-reason=%v", got["sip.raw.sip.x-transfer-reason"])
	}
	if got["sip.raw.ivr.key1"] != "sipval1" { // sipval1 is not JSON
		t.Errorf("sip.raw.ivr.key1=%v", got["sip.raw.ivr.key1"])
	}
	if logs := e.logs.String(); !strings.Contains(logs, "does not convert") || !strings.Contains(logs, "sip.x-transfer-reason") {
		t.Errorf("the unconverted value was not logged:\n%s", logs)
	}
	e.endedCall(t, call.ID)
}
