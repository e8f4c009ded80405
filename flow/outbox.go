package flow

import (
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/triggers"
)

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// delivery is the Data of an automation's outbox entry: the request as it
// was rendered when the automation fired (retries send exactly it again),
// the retry policy, and every attempt.
type delivery struct {
	Automation   string            `json:"automation"`
	Source       string            `json:"source"` // node:<flow>/<node> or event:<event>
	Method       string            `json:"method"`
	URL          string            `json:"url"`
	Headers      map[string]string `json:"headers,omitempty"`
	Body         json.RawMessage   `json:"body,omitempty"`
	Signed       bool              `json:"signed"`
	MaxAttempts  int               `json:"maxAttempts"`
	TimeoutMs    int64             `json:"timeoutMs"`
	BackoffMs    int64             `json:"backoffMs"`
	MaxBackoffMs int64             `json:"maxBackoffMs"`
	Status       string            `json:"status"`
	Error        string            `json:"error,omitempty"` // why it failed for good
	Attempts     []Attempt         `json:"attempts"`
}

// Attempt is one try to deliver an automation's request.
type Attempt struct {
	N          int        `json:"n"`
	At         time.Time  `json:"at"`
	DurationMs int64      `json:"durationMs"`
	StatusCode int        `json:"statusCode,omitempty"` // 0: no response
	Error      string     `json:"error,omitempty"`
	RetryAt    *time.Time `json:"retryAt,omitempty"`
}

// Delivery is an automation a call fired, as the API shows it.
type Delivery struct {
	ID          string     `json:"id"` // also the requests' Idempotency-Key
	CallID      string     `json:"callId"`
	Automation  string     `json:"automation"`
	Source      string     `json:"source"`
	Method      string     `json:"method"`
	URL         string     `json:"url"`
	Headers     []string   `json:"headers"` // names only: values may hold credentials
	Body        any        `json:"body"`
	Signed      bool       `json:"signed"`
	Status      string     `json:"status"`
	Error       string     `json:"error,omitempty"`
	MaxAttempts int        `json:"maxAttempts"`
	Created     time.Time  `json:"created"`
	NextAttempt *time.Time `json:"nextAttemptAt"`
	Attempts    []Attempt  `json:"attempts"`
}

// Deliveries returns every automation a call fired, oldest first, with
// every attempt. CodeNotFound for an unknown call.
func (e *Engine) Deliveries(ctx context.Context, callID string) ([]Delivery, error) {
	entries, err := e.store.CallOutbox(ctx, callID)
	if err != nil {
		return nil, err
	}
	out := make([]Delivery, 0, len(entries))
	for _, en := range entries {
		var d delivery
		if err := json.Unmarshal(en.Data, &d); err != nil {
			return nil, session.Internal(fmt.Errorf("decode outbox entry %s: %w", en.ID, err))
		}
		v := Delivery{
			ID: en.ID, CallID: en.CallID, Automation: d.Automation, Source: d.Source, Method: d.Method, URL: d.URL,
			Headers: []string{}, Signed: d.Signed, Status: d.Status, Error: d.Error, MaxAttempts: d.MaxAttempts,
			Created: en.Created, Attempts: d.Attempts,
		}
		for name := range d.Headers {
			v.Headers = append(v.Headers, name)
		}
		slices.Sort(v.Headers)
		if len(d.Body) > 0 {
			v.Body, _ = decodeValue(d.Body)
		}
		if en.Pending() {
			t := en.Due
			v.NextAttempt = &t
		}
		if v.Attempts == nil {
			v.Attempts = []Attempt{}
		}
		out = append(out, v)
	}
	return out, nil
}

// newEntry renders an automation's request with the session's variables as
// they are when it fires. A request that cannot be sent (a header value
// with a line break, say) is recorded as failed at once, never sent.
func (e *Engine) newEntry(callID string, a *Automation, vars triggers.Map, source string) *session.OutboxEntry {
	now := e.now().UTC()
	d := a.render(vars)
	d.Source = source
	d.MaxAttempts = cmp.Or(a.Attempts, e.cfg.Attempts) // compiled automations have none negative
	d.TimeoutMs = cmp.Or(a.Timeout, e.cfg.Timeout).Milliseconds()
	d.BackoffMs = cmp.Or(a.Backoff, e.cfg.Backoff).Milliseconds()
	d.MaxBackoffMs = cmp.Or(a.MaxBackoff, e.cfg.MaxBackoff).Milliseconds()
	entry := &session.OutboxEntry{ID: e.newID(), CallID: callID, Created: now, Automation: a.Name}
	if d.Status == DeliveryPending {
		entry.Due = now
	}
	entry.Data, _ = json.Marshal(d) // a delivery always marshals
	return entry
}

// render fills the automation's request from the variables.
func (a *Automation) render(vars triggers.Vars) delivery {
	d := delivery{
		Automation: a.Name,
		Method:     a.Method,
		URL:        a.url.render(vars),
		Signed:     a.Signed(),
		Status:     DeliveryPending,
		Attempts:   []Attempt{},
	}
	for _, h := range a.Headers {
		v := h.Value.Render(vars)
		if !validHeaderValue(v) {
			d.Status, d.Error = DeliveryFailed, fmt.Sprintf("the value of header %s has a line break or control character; not sent", h.Name)
		}
		if d.Headers == nil {
			d.Headers = map[string]string{}
		}
		d.Headers[h.Name] = v
	}
	if a.body != nil {
		body, err := a.body.render(vars)
		if err != nil {
			d.Status, d.Error = DeliveryFailed, "the body could not be rendered as JSON"
		}
		d.Body = body
	}
	return d
}

// validHeaderValue refuses what would split or corrupt a header.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// SignatureHeader is the header that carries an automation's signature:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">".
const SignatureHeader = "X-Callctx-Signature"

// Sign returns the signature header value for body at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature checks a signature header against body, for receivers
// written in Go. It refuses signatures older (or newer) than tolerance, so
// that a captured request cannot be replayed later.
func VerifySignature(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return errors.New("malformed signature header")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("signature timestamp outside the tolerance")
	}
	want := Sign(secret, time.Unix(sec, 0), body)
	if !hmac.Equal([]byte(want), []byte("t="+ts+",v1="+sig)) {
		return errors.New("signature mismatch")
	}
	return nil
}

// outbox delivers queued entries: a heap by due time, fed by the engine when
// it queues and by the store's pending entries at start, and workers that
// send. No store query runs in the steady state.
type outbox struct {
	e     *Engine
	mu    sync.Mutex
	due   entryHeap
	known map[string]bool // in the heap or in flight
	wake  chan struct{}
	work  chan *session.OutboxEntry
}

func newOutbox(e *Engine) *outbox {
	return &outbox{e: e, known: map[string]bool{}, wake: make(chan struct{}, 1), work: make(chan *session.OutboxEntry)}
}

// add schedules pending entries; finished and known ones are ignored.
func (o *outbox) add(entries ...*session.OutboxEntry) {
	added := false
	o.mu.Lock()
	for _, en := range entries {
		if en.Pending() && !o.known[en.ID] {
			o.known[en.ID] = true
			heap.Push(&o.due, en)
			added = true
		}
	}
	pending := len(o.known)
	o.mu.Unlock()
	if added {
		o.e.cfg.Observer.AutomationsPending(pending)
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
}

func (o *outbox) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range o.e.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for en := range o.work {
				o.deliver(ctx, en)
			}
		}()
	}
	defer func() {
		close(o.work)
		wg.Wait()
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := o.e.now()
		var ready []*session.OutboxEntry
		next := time.Duration(-1)
		o.mu.Lock()
		for o.due.Len() > 0 {
			if d := o.due[0].Due.Sub(now); d > 0 {
				next = d
				break
			}
			ready = append(ready, heap.Pop(&o.due).(*session.OutboxEntry))
		}
		o.mu.Unlock()
		for i, en := range ready {
			select {
			case o.work <- en:
			case <-ctx.Done():
				o.requeue(ready[i:]...)
				return
			}
		}
		if len(ready) > 0 {
			continue
		}
		// Since Go 1.23 Reset and Stop leave no stale tick behind.
		if next >= 0 {
			timer.Reset(next)
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		case <-timer.C:
		}
	}
}

func (o *outbox) requeue(entries ...*session.OutboxEntry) {
	o.mu.Lock()
	for _, en := range entries {
		heap.Push(&o.due, en)
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// deliver makes one attempt and records it.
func (o *outbox) deliver(ctx context.Context, en *session.OutboxEntry) {
	e := o.e
	var d delivery
	if err := json.Unmarshal(en.Data, &d); err != nil {
		e.log.Error("undecodable outbox entry; dropping it", "id", en.ID, "call_id", en.CallID, "error", err)
		o.forget(en.ID)
		return
	}
	var secret []byte
	if d.Signed {
		if a, ok := e.Snapshot().Automation(d.Automation); ok && a.Signed() {
			secret = a.secret
		} else {
			o.finish(ctx, en, &d, DeliveryFailed, fmt.Sprintf("the automation %s is no longer defined with a secret; the request cannot be signed", d.Automation))
			return
		}
	}
	start := e.now()
	code, err := o.send(ctx, en, &d, secret)
	if ctx.Err() != nil {
		// Shutting down: the attempt does not count; the entry stays queued
		// and goes out again after a restart.
		return
	}
	att := Attempt{N: len(d.Attempts) + 1, At: start.UTC(), DurationMs: e.now().Sub(start).Milliseconds(), StatusCode: code.status}
	if err != nil {
		att.Error = err.Error()
	}
	switch {
	case err == nil && code.status >= 200 && code.status < 300:
		d.Attempts = append(d.Attempts, att)
		o.finish(ctx, en, &d, DeliveryDelivered, "")
	case retryable(code.status, err) && att.N < d.MaxAttempts:
		e.cfg.Observer.AutomationFailed(d.Automation, false)
		wait := backoff(att.N, time.Duration(d.BackoffMs)*time.Millisecond, time.Duration(d.MaxBackoffMs)*time.Millisecond)
		if code.retryAfter > wait {
			wait = min(code.retryAfter, time.Hour)
		}
		retry := e.now().Add(wait).UTC()
		att.RetryAt = &retry
		d.Attempts = append(d.Attempts, att)
		en.Due = retry
		en.Data, _ = json.Marshal(d)
		if err := e.store.UpdateOutbox(context.WithoutCancel(ctx), en); err != nil {
			o.storeFailed(en, err)
			return
		}
		o.requeue(en)
	default:
		d.Attempts = append(d.Attempts, att)
		why := fmt.Sprintf("gave up after %d attempts", att.N)
		if !retryable(code.status, err) {
			why = fmt.Sprintf("the receiver answered %d, which is not retried", code.status)
		}
		o.finish(ctx, en, &d, DeliveryFailed, why)
	}
}

func (o *outbox) finish(ctx context.Context, en *session.OutboxEntry, d *delivery, status, why string) {
	d.Status, d.Error = status, why
	en.Due = time.Time{}
	en.Data, _ = json.Marshal(d)
	if err := o.e.store.UpdateOutbox(context.WithoutCancel(ctx), en); err != nil {
		o.storeFailed(en, err)
		return
	}
	if status == DeliveryFailed {
		o.e.cfg.Observer.AutomationFailed(d.Automation, true)
		o.e.log.Warn("automation failed", "automation", d.Automation, "call_id", en.CallID, "id", en.ID, "reason", why)
	} else {
		o.e.cfg.Observer.AutomationSent(d.Automation)
	}
	o.forget(en.ID)
}

func (o *outbox) storeFailed(en *session.OutboxEntry, err error) {
	if session.ErrorCode(err) == session.CodeNotFound {
		o.forget(en.ID) // the call was purged
		return
	}
	// The attempt happened but is not recorded; the stored entry is still
	// due and will go out again after a restart, with the same key.
	o.e.log.Error("record automation attempt", "id", en.ID, "call_id", en.CallID, "error", err)
	o.forget(en.ID)
}

func (o *outbox) forget(id string) {
	o.mu.Lock()
	delete(o.known, id)
	pending := len(o.known)
	o.mu.Unlock()
	o.e.cfg.Observer.AutomationsPending(pending)
}

type answer struct {
	status     int
	retryAfter time.Duration
}

func (o *outbox) send(ctx context.Context, en *session.OutboxEntry, d *delivery, secret []byte) (answer, error) {
	e := o.e
	ctx, cancel := context.WithTimeout(ctx, time.Duration(d.TimeoutMs)*time.Millisecond)
	defer cancel()
	var body io.Reader
	if len(d.Body) > 0 {
		body = bytes.NewReader(d.Body)
	}
	req, err := http.NewRequestWithContext(ctx, d.Method, d.URL, body)
	if err != nil {
		return answer{}, fmt.Errorf("build request: %v", errText(err))
	}
	for name, v := range d.Headers {
		req.Header.Set(name, v)
	}
	if len(d.Body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", e.cfg.UserAgent)
	req.Header.Set("Idempotency-Key", en.ID)
	req.Header.Set("X-Callctx-Call-Id", en.CallID)
	req.Header.Set("X-Callctx-Automation", d.Automation)
	req.Header.Set("X-Callctx-Event", d.Source)
	req.Header.Set("X-Callctx-Attempt", strconv.Itoa(len(d.Attempts)+1))
	if secret != nil {
		req.Header.Set(SignatureHeader, Sign(secret, e.now(), d.Body))
	}
	res, err := e.client.Do(req)
	if err != nil {
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			return answer{}, fmt.Errorf("no answer within %s", time.Duration(d.TimeoutMs)*time.Millisecond)
		}
		return answer{}, errors.New(errText(err))
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // lets the connection be reused
	a := answer{status: res.StatusCode}
	if ra := res.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
			a.retryAfter = time.Duration(s) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil {
			a.retryAfter = t.Sub(e.now())
		}
	}
	return a, nil
}

// retryable: network errors and timeouts, 408, 425, 429 and 5xx.
func retryable(status int, err error) bool {
	if err != nil {
		return true
	}
	return status == http.StatusRequestTimeout || status == http.StatusTooEarly || status == http.StatusTooManyRequests || status >= 500
}

// backoff is exponential with equal jitter: half the delay is fixed, half
// random, so that retries of many calls spread out but none comes early.
func backoff(attempt int, base, ceiling time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half)
}

// entryHeap orders entries by due time.
type entryHeap []*session.OutboxEntry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].Due.Before(h[j].Due) }
func (h entryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *entryHeap) Push(x any)        { *h = append(*h, x.(*session.OutboxEntry)) }
func (h *entryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
