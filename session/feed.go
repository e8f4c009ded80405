package session

import (
	"encoding/json"
	"sync"
	"time"
)

// EventType names what happened to a call.
type EventType string

// Event types.
const (
	EventCallStarted    EventType = "call.started"
	EventSessionUpdated EventType = "session.updated"
	EventCallEnded      EventType = "call.ended"
)

// Event is published after a change has been committed. Events of one call
// may arrive out of version order when writes share a commit; a subscriber
// that needs every version fills gaps from History.
type Event struct {
	Type    EventType
	CallID  string
	Version uint64 // the session version the event produced
	At      time.Time
	Actor   string
	Changes map[string]Change
	// Variables is the whole session after the change. Subscribers share
	// it: read, never modify.
	Variables map[string]json.RawMessage
	Call      *Call // the call, for call.started and call.ended
	// Remote marks an event committed by another node sharing the store
	// (see Service.Follow). Side effects of a change, such as the
	// automations it fires, belong to the node that made it.
	Remote bool

	encoded *encoding // shared by every subscriber's copy of a published event
}

// encoding is the memo of Event.Encoded.
type encoding struct {
	once sync.Once
	b    []byte
}

// Encoded returns what encode makes of e, computed once per published
// event and shared by every subscriber that asks: an edge that writes
// events to many clients (the event stream) encodes each once, not once per
// client, so that fan-out costs the same whatever the session's size. An
// event not published by the feed (a replayed one) is encoded each time.
// encode must depend on the event alone; the result must not be modified.
func (e *Event) Encoded(encode func(*Event) []byte) []byte {
	if e.encoded == nil {
		return encode(e)
	}
	e.encoded.once.Do(func() { e.encoded.b = encode(e) })
	return e.encoded.b
}

// subscriptionBuffer is how many events a subscriber may fall behind before
// it is dropped as lagging: the bound of its queue, and so of the memory a
// slow subscriber holds (the events share the session's values; about 150
// bytes each of their own). A local subscriber (SubscribeLocal: the
// automations, which must not miss an event) gets a deeper buffer, to ride
// out a burst of writes while it queues the previous events' automations.
const (
	subscriptionBuffer      = 64
	localSubscriptionBuffer = 8192
)

// Subscription receives the events of one call, or of all calls.
type Subscription struct {
	c      chan Event
	feed   *feed
	callID string
	local  bool       // only this node's events, and call.ended from anywhere (SubscribeLocal)
	calls  bool       // only call.started and call.ended (SubscribeCalls)
	mu     sync.Mutex // guards closed, lagged
	closed bool
	lagged bool
}

// Events returns the channel of events. It is closed when the subscription
// is closed or when the subscriber lagged (see Lagged).
func (s *Subscription) Events() <-chan Event { return s.c }

// Lagged reports whether the subscription was dropped because its reader
// fell behind; the reader should catch up from History and subscribe again.
func (s *Subscription) Lagged() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lagged
}

// Close ends the subscription. It is safe to call more than once.
func (s *Subscription) Close() { s.feed.remove(s, false) }

// feed fans committed events out to subscribers without ever blocking a
// writer.
type feed struct {
	mu   sync.RWMutex
	subs map[string]map[*Subscription]struct{} // by call ID; "" is every call
}

func newFeed() *feed {
	return &feed{subs: make(map[string]map[*Subscription]struct{})}
}

func (f *feed) subscribe(callID string, local, calls bool) *Subscription {
	size := subscriptionBuffer
	if local {
		size = localSubscriptionBuffer
	}
	s := &Subscription{c: make(chan Event, size), feed: f, callID: callID, local: local, calls: calls}
	f.mu.Lock()
	m := f.subs[callID]
	if m == nil {
		m = make(map[*Subscription]struct{})
		f.subs[callID] = m
	}
	m[s] = struct{}{}
	f.mu.Unlock()
	return s
}

func (f *feed) remove(s *Subscription, lagged bool) {
	f.mu.Lock()
	if m := f.subs[s.callID]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(f.subs, s.callID)
		}
	}
	f.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed, s.lagged = true, lagged
	close(s.c)
}

// publish hands e to every subscriber without waiting for any: one whose
// queue is full is dropped as lagging.
func (f *feed) publish(e Event) {
	e.encoded = new(encoding)
	var laggards []*Subscription
	f.mu.RLock()
	for _, key := range [2]string{e.CallID, ""} {
		for s := range f.subs[key] {
			if !s.gets(e) {
				continue
			}
			select {
			case s.c <- e:
			default:
				laggards = append(laggards, s)
			}
		}
	}
	f.mu.RUnlock()
	for _, s := range laggards {
		f.remove(s, true)
	}
}

// gets reports whether the subscription receives e.
func (s *Subscription) gets(e Event) bool {
	if s.calls && e.Type != EventCallStarted && e.Type != EventCallEnded {
		return false
	}
	return !s.local || !e.Remote || e.Type == EventCallEnded
}

// wants reports whether an event of type t of callID from another node
// would reach a subscriber.
func (f *feed) wants(callID string, t EventType) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, key := range [2]string{callID, ""} {
		for s := range f.subs[key] {
			if s.gets(Event{Type: t, Remote: true}) {
				return true
			}
		}
	}
	return false
}

// dropAll closes every subscription as lagged: events may have been lost,
// and each reader must catch up from History.
func (f *feed) dropAll() {
	var all []*Subscription
	f.mu.RLock()
	for _, m := range f.subs {
		for s := range m {
			all = append(all, s)
		}
	}
	f.mu.RUnlock()
	for _, s := range all {
		f.remove(s, true)
	}
}
