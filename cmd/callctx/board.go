package main

import (
	"context"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/metrics"
	"github.com/callctx/callctx/sipbridge"
	"github.com/callctx/callctx/stats"
)

// observers tells both the metrics and the wallboard's board what the flow
// engine and the SIP bridge do: the same events feed /metrics and
// /v1/stats.
type observers struct {
	m *metrics.Metrics
	b *stats.Board
}

var (
	_ flow.Observer      = observers{}
	_ sipbridge.Observer = observers{}
)

func (o observers) TriggerEvaluated(trigger string, fired bool) { o.m.TriggerEvaluated(trigger, fired) }

func (o observers) AutomationSent(a string) {
	o.m.AutomationSent(a)
	o.b.AutomationSent(a)
}

func (o observers) AutomationFailed(a string, final bool) {
	o.m.AutomationFailed(a, final)
	o.b.AutomationFailed(a, final)
}

func (o observers) AutomationsPending(n int) {
	o.m.AutomationsPending(n)
	o.b.AutomationsPending(n)
}

func (o observers) CallMoved(callID, flowName, node string) { o.b.CallMoved(callID, flowName, node) }

func (o observers) SIPRequest(inbound bool, method string, status int) {
	o.m.SIPRequest(inbound, method, status)
}

func (o observers) Transfer(method, outcome string) {
	o.m.Transfer(method, outcome)
	o.b.Transfer(method, outcome)
}

func (o observers) TargetState(target string, up bool) {
	o.m.TargetState(target, up)
	o.b.TargetState(target, up)
}

// openBoard fills the board with the active calls and where their flows
// stand, and starts following the session feed.
func (m *Main) openBoard() error {
	return m.board.Open(context.Background(), m.flows)
}

// Board returns the wallboard's board (for tests and tools).
func (m *Main) Board() *stats.Board { return m.board }
