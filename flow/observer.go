package flow

// Observer hears what the engine does, for metrics and the wallboard:
// trigger evaluations, automation deliveries, where calls stand. Packages
// metrics and stats implement it and cmd wires them in; the flow package
// stays free of any metrics library. Its methods must be quick and safe for
// concurrent use. Simulations report nothing.
type Observer interface {
	// TriggerEvaluated reports one evaluation of a trigger on a live call:
	// a switch case, a wait's condition (once per look at the session) or
	// an automation's `when` filter.
	TriggerEvaluated(trigger string, fired bool)
	// AutomationSent reports a delivery its receiver accepted (2xx).
	AutomationSent(automation string)
	// AutomationFailed reports a failed attempt; final says no retry will
	// follow.
	AutomationFailed(automation string, final bool)
	// AutomationsPending reports how many automations wait to be delivered
	// (queued or in flight) whenever that number changes.
	AutomationsPending(n int)
	// CallMoved reports where a call's flow stands once a step is stored:
	// at node, or ended when node is "".
	CallMoved(callID, flow, node string)
}

// nopObserver is the Observer of an engine configured without one.
type nopObserver struct{}

func (nopObserver) TriggerEvaluated(string, bool)    {}
func (nopObserver) AutomationSent(string)            {}
func (nopObserver) AutomationFailed(string, bool)    {}
func (nopObserver) AutomationsPending(int)           {}
func (nopObserver) CallMoved(string, string, string) {}
