package flow

import (
	"context"
	"maps"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/triggers"
)

// CallOptions are how a call is written and how CreateCall picks the flow
// of a call that names none.
type CallOptions struct {
	session.WriteOptions
	// Fallback is the flow of an inbound call that the routing table does
	// not route (the SIP bridge's sip.flow); it is skipped, with a warning,
	// while it is not loaded.
	Fallback string
	// RefuseUnrouted refuses, with CodeNotFound, an inbound call that gets
	// no flow while the directory has a routing table: a number nobody
	// serves (the SIP bridge answers 404).
	RefuseUnrouted bool
	// EndUnrouted, when set, records a call that gets no flow as ended with
	// this reason, in the write that creates it (a SIP redirect: callctx is
	// out of the call with its 302).
	EndUnrouted string
}

// CreateCall is how a call starts, over REST and over SIP alike: it picks
// the call's flow — the one named; else, for an inbound call, the routing
// table's for the dialled number (the entry is recorded as call.route); else
// Fallback — checks that the flow is loaded, creates the call and its
// session, and starts the flow, whose first automation nodes queue their
// requests at once. CodeInvalid (on the field flow) when the flow named is
// not loaded, CodeNotFound when RefuseUnrouted applies, and the errors of
// session.Service.CreateCall. A flow that fails to start is logged, not
// returned: the call exists, and its first flow/next starts the flow.
func (e *Engine) CreateCall(ctx context.Context, nc session.NewCall, o CallOptions) (*session.Call, *session.Session, error) {
	snap := e.Snapshot()
	if err := e.pickFlow(snap, &nc, o); err != nil {
		return nil, nil, err
	}
	c, s, err := e.svc.CreateCall(ctx, nc, o.WriteOptions)
	if err != nil {
		return nil, nil, err
	}
	if c.Flow != "" && c.State == session.StateActive {
		if err := e.StartCall(ctx, c); err != nil {
			e.log.Error("start flow", "call_id", c.ID, "flow", c.Flow, "error", err)
		}
	}
	return c, s, nil
}

// pickFlow sets the flow (and route) of a new call, or refuses it.
func (e *Engine) pickFlow(snap *Snapshot, nc *session.NewCall, o CallOptions) error {
	if nc.Flow != "" {
		if _, ok := snap.Flow(nc.Flow); !ok {
			return &session.Error{Code: session.CodeInvalid, Message: "there is no flow " + nc.Flow,
				Fields: []session.FieldError{{Name: "flow", Message: "no flow of that name is loaded; GET /v1/flows lists them"}}}
		}
		return nil
	}
	routed := nc.ParentID == "" && (nc.Direction == "" || nc.Direction == session.DirectionInbound)
	if r := snap.Routing(); r != nil && routed {
		if rt, ok := r.Route(nc.To, routeVars(nc), e.now()); ok {
			nc.Flow, nc.Route = rt.Flow, rt.Route
			return nil
		}
	}
	if o.Fallback != "" && routed {
		if _, ok := snap.Flow(o.Fallback); ok {
			nc.Flow = o.Fallback
			return nil
		}
		e.log.Warn("fallback flow not loaded; the call gets none", "flow", o.Fallback)
	}
	if o.RefuseUnrouted && routed && snap.Routing() != nil {
		return session.Errorf(session.CodeNotFound, "no route for the number %s", NormalizeNumber(nc.To, snap.Routing().Country))
	}
	if o.EndUnrouted != "" {
		nc.EndReason = o.EndUnrouted
	}
	return nil
}

// routeVars are the variables a route's trigger sees: the call.* variables
// the call will have, and those it starts with.
func routeVars(nc *session.NewCall) triggers.Map {
	vars := DecodeVars(nc.Variables)
	maps.Copy(vars, triggers.Map{
		"call.from": nc.From, "call.to": nc.To, "call.direction": string(session.DirectionInbound),
	})
	return vars
}
