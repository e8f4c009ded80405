package session

import (
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Options configure a Service. Zero values take defaults.
type Options struct {
	Limits    Limits
	Retention time.Duration    // how long ended sessions are kept; DefaultRetention when 0
	Now       func() time.Time // the clock; time.Now when nil
	NewID     func() string    // call IDs; UUIDv7 when nil
}

// DefaultRetention is how long an ended call's session is kept.
const DefaultRetention = 24 * time.Hour

// purgeChunk is how many ended calls one purge transaction deletes.
const purgeChunk = 500

// Service applies the session rules on top of a Store and publishes an
// Event for every committed change.
type Service struct {
	store     Store
	feed      *feed
	limits    Limits
	retention time.Duration
	now       func() time.Time
	newID     func() string
	auto      atomic.Pointer[automations]
	failure   atomic.Pointer[writeFailure] // see WriteFailure
}

// automations holds a Service's Automations.
type automations struct{ Automations }

// NewService returns a Service over store.
func NewService(store Store, opts Options) *Service {
	s := &Service{
		store:     store,
		feed:      newFeed(),
		limits:    opts.Limits.WithDefaults(),
		retention: opts.Retention,
		now:       opts.Now,
		newID:     opts.NewID,
	}
	if s.retention <= 0 {
		s.retention = DefaultRetention
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.newID == nil {
		s.newID = func() string { return uuid.Must(uuid.NewV7()).String() }
	}
	return s
}

// SetAutomations has every change made through the Service queue the
// automations it fires (a.Fire) in the store together with the change, and
// hand them to a.Queued once committed; its events are then marked Fired.
// nil turns that off.
func (s *Service) SetAutomations(a Automations) {
	if a == nil {
		s.auto.Store(nil)
		return
	}
	s.auto.Store(&automations{a})
}

// firing returns the Firing of a change that publishes events of the types
// given, or nil when the Service has no Automations. c is the call where
// the events carry it.
func (s *Service) firing(callID string, at time.Time, actor string, c *Call, types ...EventType) *Firing {
	a := s.auto.Load()
	if a == nil {
		return nil
	}
	return &Firing{Entries: func(sess *Session, h *HistoryEntry) []*OutboxEntry {
		var out []*OutboxEntry
		for _, t := range types {
			out = append(out, a.Fire(&Event{Type: t, CallID: callID, Version: h.Version, At: at, Actor: actor, Changes: h.Changes, Variables: sess.Variables, Call: c})...)
		}
		return out
	}}
}

// fired hands the entries queued with a committed change to the
// Automations.
func (s *Service) fired(f *Firing) {
	if f == nil || len(f.queued)+len(f.dropped) == 0 {
		return
	}
	if a := s.auto.Load(); a != nil {
		a.Queued(f.queued, f.dropped)
	}
}

// Limits returns the limits the Service enforces.
func (s *Service) Limits() Limits { return s.limits }

// CreateCall starts a call and its session at version 1. The session holds
// the call.* variables and nc.Variables, which obey the rules of a write by
// opts.Origin. CodeInvalid, CodeConflict when the ID is taken.
func (s *Service) CreateCall(ctx context.Context, nc NewCall, opts WriteOptions) (*Call, *Session, error) {
	if nc.ID == "" {
		nc.ID = s.newID()
	} else if !ValidCallID(nc.ID) {
		return nil, nil, &Error{Code: CodeInvalid, Message: "the call ID is not valid", Fields: []FieldError{{Name: "id", Message: "use 1 to 128 letters, digits, '.', '_', ':' or '-'"}}}
	}
	if nc.Direction == "" {
		nc.Direction = DirectionInbound
	}
	if nc.Direction != DirectionInbound && nc.Direction != DirectionOutbound {
		return nil, nil, &Error{Code: CodeInvalid, Message: "the direction is not valid", Fields: []FieldError{{Name: "direction", Message: "use inbound or outbound"}}}
	}
	set, err := checkWrite(nc.Variables, opts.Origin, s.limits)
	if err != nil {
		return nil, nil, err
	}
	now := s.now().UTC()
	c := &Call{
		ID: nc.ID, State: StateActive, From: nc.From, To: nc.To, Direction: nc.Direction,
		Flow: nc.Flow, Route: nc.Route, StartedAt: now, SIPCallID: nc.SIPCallID, ParentID: nc.ParentID,
	}
	if nc.EndReason != "" {
		c.State, c.EndedAt, c.EndReason = StateEnded, now, nc.EndReason
	}
	for name, v := range callVariables(c) {
		set[name] = v
	}
	sess := &Session{CallID: c.ID, State: StateActive, CreatedAt: now}
	p := &Patch{Set: set, Actor: opts.Actor, At: now, Limits: s.limits, Event: EventCallStarted}
	h, err := p.Apply(sess)
	if err != nil {
		return nil, nil, err
	}
	sess.State = c.State
	types := []EventType{EventCallStarted}
	if c.State == StateEnded {
		types = append(types, EventCallEnded)
	}
	f := s.firing(c.ID, now, opts.Actor, c, types...)
	err = s.store.CreateCall(ctx, c, sess, h, f)
	s.noteWrite(err)
	if err != nil {
		return nil, nil, err
	}
	s.fired(f)
	s.feed.publish(Event{Type: EventCallStarted, CallID: c.ID, Version: sess.Version, At: now, Actor: opts.Actor, Changes: h.Changes, Variables: sess.Variables, Call: c})
	if c.State == StateEnded {
		s.feed.publish(Event{Type: EventCallEnded, CallID: c.ID, Version: sess.Version, At: now, Actor: opts.Actor, Variables: sess.Variables, Call: c})
	}
	return c, sess, nil
}

// MaxCallVariables is how many call.* variables callctx writes into a session
// at most (callVariables for a call created ended): what a writer that fills a
// new session to its limits must leave room for.
const MaxCallVariables = 12

// callVariables returns the call.* variables that describe c.
func callVariables(c *Call) map[string]json.RawMessage {
	vars := map[string]json.RawMessage{
		"call.id":        jsonString(c.ID),
		"call.state":     jsonString(string(c.State)),
		"call.from":      jsonString(c.From),
		"call.to":        jsonString(c.To),
		"call.direction": jsonString(string(c.Direction)),
		"call.startedAt": jsonString(c.StartedAt.Format(time.RFC3339Nano)),
	}
	if c.Flow != "" {
		vars["call.flow"] = jsonString(c.Flow)
	}
	if c.Route != "" {
		vars["call.route"] = jsonString(c.Route)
	}
	if c.SIPCallID != "" {
		vars["call.sipCallId"] = jsonString(c.SIPCallID)
	}
	if c.ParentID != "" {
		vars["call.parentId"] = jsonString(c.ParentID)
	}
	if c.State == StateEnded {
		maps.Copy(vars, endVariables(c.EndedAt, c.EndReason))
	}
	return vars
}

// endVariables returns the call.* variables that record a call's end.
func endVariables(at time.Time, reason string) map[string]json.RawMessage {
	return map[string]json.RawMessage{
		"call.state":     jsonString(string(StateEnded)),
		"call.endedAt":   jsonString(at.Format(time.RFC3339Nano)),
		"call.endReason": jsonString(reason),
	}
}

func jsonString(s string) json.RawMessage { return AppendJSONString(nil, s) }

// Call returns a call. CodeNotFound.
func (s *Service) Call(ctx context.Context, id string) (*Call, error) {
	return s.store.Call(ctx, id)
}

// ListCalls pages through calls newest first. CodeInvalid for a bad filter,
// limit or cursor.
func (s *Service) ListCalls(ctx context.Context, opts ListOptions) (*CallPage, error) {
	switch opts.State {
	case "":
		opts.State = FilterActive
	case FilterActive, FilterEnded, FilterAll:
	default:
		return nil, &Error{Code: CodeInvalid, Message: "the state filter is not valid", Fields: []FieldError{{Name: "state", Message: "use active, ended or all"}}}
	}
	switch {
	case opts.Limit == 0:
		opts.Limit = DefaultListLimit
	case opts.Limit < 0 || opts.Limit > MaxListLimit:
		return nil, &Error{Code: CodeInvalid, Message: "the limit is not valid", Fields: []FieldError{{Name: "limit", Message: "use 1 to " + strconv.Itoa(MaxListLimit)}}}
	}
	return s.store.ListCalls(ctx, opts)
}

// EndCall ends a call: its session records call.state, call.endedAt and
// call.endReason and becomes read-only. Ending an ended call returns it
// unchanged. CodeNotFound.
func (s *Service) EndCall(ctx context.Context, id, reason, actor string) (*Call, error) {
	if reason == "" {
		reason = "normal"
	}
	now := s.now().UTC()
	p := &Patch{Set: endVariables(now, reason), Actor: actor, At: now, Limits: s.limits, AllowEnded: true, Event: EventCallEnded}
	p.Firing = s.firing(id, now, actor, nil, EventCallEnded)
	c, sess, h, ended, err := s.store.EndCall(ctx, id, now, reason, p)
	s.noteWrite(err)
	if err != nil {
		return nil, err
	}
	if ended {
		s.fired(p.Firing)
		e := Event{Type: EventCallEnded, CallID: id, Version: sess.Version, At: now, Actor: actor, Variables: sess.Variables, Call: c}
		if h != nil {
			e.Changes = h.Changes
		}
		s.feed.publish(e)
	}
	return c, nil
}

// Session returns the session of a call. CodeNotFound.
func (s *Service) Session(ctx context.Context, callID string) (*Session, error) {
	return s.store.Session(ctx, callID)
}

// SessionJSON returns the session of a call as its canonical JSON (see
// Session.AppendJSON) and its version. CodeNotFound.
func (s *Service) SessionJSON(ctx context.Context, callID string) ([]byte, uint64, error) {
	return s.store.SessionJSON(ctx, callID)
}

// Variable returns one variable of a session. CodeNotFound when the call or
// the variable does not exist.
func (s *Service) Variable(ctx context.Context, callID, name string) (json.RawMessage, error) {
	sess, err := s.store.Session(ctx, callID)
	if err != nil {
		return nil, err
	}
	v, ok := sess.Variables[name]
	if !ok {
		return nil, Errorf(CodeNotFound, "the session of call %s has no variable %s", callID, name)
	}
	return v, nil
}

// Merge writes vars into the session of a call, JSON Merge Patch style, and
// returns the session after it and whether the write changed it: a write
// that changes nothing returns the session as it is, without a new version
// and without firing automations. CodeInvalid (each offending variable
// named), CodeNotFound, CodeConflict for an ended call (except for the SIP
// bridge's record of a transfer's outcome, see transferRecord),
// CodePreconditionFailed when opts.IfMatch is stale.
func (s *Service) Merge(ctx context.Context, callID string, vars map[string]json.RawMessage, opts WriteOptions) (sess *Session, changed bool, err error) {
	set, err := checkWrite(vars, opts.Origin, s.limits)
	if err != nil {
		return nil, false, err
	}
	now := s.now().UTC()
	event := cmp.Or(opts.Event, EventSessionUpdated)
	p := &Patch{Set: set, IfMatch: opts.IfMatch, Actor: opts.Actor, At: now, Limits: s.limits, Event: event,
		AllowEnded: transferRecord(opts, set)}
	p.Firing = s.firing(callID, now, opts.Actor, nil, append([]EventType{event}, opts.Fires...)...)
	sess, h, err := s.store.Apply(ctx, callID, p)
	s.noteWrite(err)
	if err != nil {
		return nil, false, err
	}
	if h == nil {
		return sess, false, nil
	}
	s.fired(p.Firing)
	s.feed.publish(Event{Type: event, CallID: callID, Version: h.Version, At: now, Actor: opts.Actor, Changes: h.Changes, Variables: sess.Variables})
	return sess, true, nil
}

// History returns the history of a call's session after version after,
// oldest first, at most limit entries (limit ≤ 0: all). CodeNotFound.
func (s *Service) History(ctx context.Context, callID string, after uint64, limit int) ([]HistoryEntry, error) {
	return s.store.History(ctx, callID, after, limit)
}

// Subscribe returns a subscription to the events of one call, or of every
// call when callID is "". The caller must Close it.
func (s *Service) Subscribe(callID string) *Subscription {
	return s.feed.subscribe(callID, false, false)
}

// SubscribeLocal is Subscribe for a subscriber that acts on the changes
// made through this Service only (see Event.Remote), such as automations:
// of other nodes' events it receives call.ended alone, so that the node
// does not fetch every write made elsewhere for it.
func (s *Service) SubscribeLocal(callID string) *Subscription {
	return s.feed.subscribe(callID, true, false)
}

// SubscribeCalls is SubscribeLocal("") for a subscriber that needs calls
// starting and ending only (call.started, call.ended), such as the flow
// engine and the wallboard: the writes to sessions, the bulk of the
// events, do not wake it.
func (s *Service) SubscribeCalls() *Subscription {
	return s.feed.subscribe("", true, true)
}

// Ping reports whether the store answers.
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// Sweep purges the calls that ended longer than the retention period ago
// and returns how many it removed.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	before := s.now().Add(-s.retention)
	total := 0
	for {
		n, err := s.store.Purge(ctx, before, purgeChunk)
		total += n
		if err != nil || n < purgeChunk {
			return total, err
		}
	}
}
