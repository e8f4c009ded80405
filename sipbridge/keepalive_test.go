package sipbridge_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/internal/sipptest"
	"github.com/callctx/callctx/internal/testenv"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge"
)

// TestBridge_Keepalive: the bridge probes its targets with OPTIONS; one that answers (sipp) is
// up, one where nothing listens is down, the Observer hears both, and a transfer to the down
// one fails at once with reason code target-down.
func TestBridge_Keepalive(t *testing.T) {
	upPort, downPort := testenv.FreeUDPPort(t), testenv.FreeUDPPort(t)
	up := "sip:queue@127.0.0.1:" + strconv.Itoa(upPort)
	down := "sip:agent@127.0.0.1:" + strconv.Itoa(downPort)
	obs := &wire{}
	targetSipp := sipptest.Start(t, "uas_options.xml", "", upPort, "-m", "1000")
	_ = targetSipp
	e := startBridge(t, sipbridge.Config{Observer: obs, TransferTarget: up,
		Keepalive: sipbridge.KeepaliveConfig{Interval: 200 * time.Millisecond, Timeout: 300 * time.Millisecond, Targets: []string{down}}})
	upKey, downKey := "sip:127.0.0.1:"+strconv.Itoa(upPort), "sip:127.0.0.1:"+strconv.Itoa(downPort)
	var states []sipbridge.TargetState
	testenv.WaitFor(t, "both targets probed", func() bool {
		states = e.bridge.Targets()
		seen := 0
		for _, st := range states {
			if st.Target == upKey && st.Up || st.Target == downKey && st.Checked && !st.Up {
				seen++
			}
		}
		return seen == 2
	})
	for _, st := range states {
		if st.Target == upKey && (st.Status != 200 || st.RTT <= 0) {
			t.Errorf("up target %+v", st)
		}
		if st.Target == downKey && !strings.Contains(st.Error, "no answer") {
			t.Errorf("down target %+v", st)
		}
	}
	if obs.get("target "+upKey+" true") == 0 || obs.get("target "+downKey+" false") == 0 {
		t.Errorf("the observer heard %v", obs.count)
	}

	uac := sipptest.Start(t, "uac_park_wait_bye.xml", e.bridge.Addr(), 0)
	call := e.activeCall(t)
	start := time.Now()
	tr := transferWhenAnswered(t, e, call.ID, session.TransferRequest{Target: down})
	if tr.Status != session.TransferFailed || tr.ReasonCode != session.ReasonTargetDown || !strings.Contains(tr.Reason, "OPTIONS") {
		t.Fatalf("transfer to a down target: %+v", tr)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the transfer took %v to fail", took)
	}
	if got := e.vars(t, call.ID)["sip.transfer.reasonCode"]; got != session.ReasonTargetDown {
		t.Errorf("sip.transfer.reasonCode=%v", got)
	}
	if _, err := e.svc.EndCall(context.Background(), call.ID, "done", "test"); err != nil {
		t.Fatal(err)
	}
	uac.Wait(t)
}
