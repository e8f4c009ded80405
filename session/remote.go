package session

import (
	"context"
	"time"
)

// SharedStore is what a Store shared by several callctx nodes offers beyond
// Store (the Redis store does; the embedded bbolt store does not): the
// events other nodes commit, a lease on the automations each node
// delivers, and the forwarding of transfers to the node that holds a
// call's SIP dialog. cmd and flow ask for it with a type assertion, so
// that nothing else needs to know which store runs.
type SharedStore interface {
	Store
	EventSource
	// OutboxLease is how long a node's claim on the automations it queued
	// lasts without renewal: a node that dies leaves its pending entries
	// to the others after that long, which PendingOutbox then returns to
	// them.
	OutboxLease() time.Duration
	// Transferer returns the transferer of this node: local (this node's
	// SIP bridge, nil when it runs none) for the calls it holds, and the
	// node that holds any other call. CodeConflict when that node is gone,
	// CodeUnavailable when it does not answer in time.
	Transferer(local Transferer) Transferer
	// ServeTransfers runs the transfers other nodes forward to this one
	// with local (nil when this node runs no SIP bridge) until ctx ends,
	// then returns ctx's error.
	ServeTransfers(ctx context.Context, local Transferer) error
}

// EventSource delivers the events that other nodes commit to a store they
// share with this one. A store shared by several callctx nodes implements
// it; cmd hands it to Service.Follow. The domain never sees how events
// travel (Redis pub/sub, for the Redis store).
type EventSource interface {
	// Follow delivers events committed elsewhere to sink until ctx ends,
	// then returns ctx's error. It never delivers an event whose change is
	// not committed. Events may arrive late, out of version order, or more
	// than once, and several versions of one call may be folded into the
	// latest; when events may have been lost (a broken connection), Follow
	// calls sink.Missed once the source is connected again.
	Follow(ctx context.Context, sink EventSink) error
}

// EventSink receives the events of an EventSource. Service.Follow passes
// one that feeds the Service's subscribers.
type EventSink interface {
	// Wants reports whether a subscriber of this node would receive an
	// event of type t of callID, so that a source fetches only what is
	// watched.
	Wants(callID string, t EventType) bool
	// Deliver hands one event to the subscribers.
	Deliver(e Event)
	// Missed says events may have been lost: every subscription is closed
	// as lagged, so its reader catches up from History and subscribes
	// again.
	Missed()
}

// Follow feeds the events that other nodes commit, as src delivers them,
// to this Service's subscribers until ctx ends; it returns ctx's error or
// src's. Subscribers cannot tell them from local events.
func (s *Service) Follow(ctx context.Context, src EventSource) error {
	return src.Follow(ctx, feedSink{s.feed})
}

// feedSink is the EventSink of a Service's feed.
type feedSink struct{ f *feed }

func (k feedSink) Wants(callID string, t EventType) bool { return k.f.wants(callID, t) }
func (k feedSink) Deliver(e Event) {
	e.Remote = true
	k.f.publish(e)
}
func (k feedSink) Missed() { k.f.dropAll() }
