// Package metrics holds callctx's Prometheus collectors and serves them.
//
// It is the one package that imports prometheus/client_golang. The others
// report through plain methods and hooks that cmd wires to a *Metrics:
// api.Config.Metrics for HTTP requests, bolt.Options.OnCommit for store
// commits, Store for session writes, and the Trigger/Automation/SIP/
// Transfer methods below for the flow engine and the SIP bridge, which
// declare the small interfaces they need in their own packages.
//
// Every label value is bounded: routes are the OpenAPI paths (never raw
// URLs), SIP methods outside RFC 3261 and friends count as "other", and
// names chosen by configuration (triggers, automations) are the only
// free-form labels.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure New.
type Options struct {
	// Version is reported in callctx_build_info.
	Version string
	// Logger hears of scrapes that failed in part.
	Logger *slog.Logger
}

// Metrics is callctx's registry. Its methods are safe for concurrent use; a
// nil *Metrics ignores every report.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	httpRequests *prometheus.CounterVec   // method, route, code
	httpDuration *prometheus.HistogramVec // method, route, code
	httpSeries   sync.Map                 // requestKey → *requestSeries

	sessionWrites *prometheus.CounterVec // op, result
	storeErrors   *prometheus.CounterVec // op, code
	storeCommit   prometheus.Histogram
	storeBatch    prometheus.Histogram
	storeWrite    prometheus.Histogram

	triggerEvals       *prometheus.CounterVec // trigger, result
	automations        *prometheus.CounterVec // automation, result
	automationsPending prometheus.Gauge

	sipRequests *prometheus.CounterVec // direction, method, code
	transfers   *prometheus.CounterVec // method, outcome
	sipTargets  *prometheus.GaugeVec   // target
}

// Buckets of the latency histograms, in seconds: callctx answers most
// requests and commits in well under a millisecond, so the buckets start
// at 100µs rather than at Prometheus's default 5ms.
var (
	latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	batchBuckets   = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}
	// writeBuckets are finer between 1 and 30 ms, where a write's time in
	// the store under load falls and where a tail shows first.
	writeBuckets = []float64{.0001, .00025, .0005, .001, .002, .003, .005, .0075, .01, .015, .02, .03, .05, .1, .25, .5, 1, 2.5}
)

// New returns a registry holding callctx's collectors and the Go runtime
// and process collectors.
func New(opts Options) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callctx_http_requests_total",
			Help: "HTTP requests answered, by method, route (the OpenAPI path; \"unmatched\" when no route matched) and status code.",
		}, []string{"method", "route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "callctx_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by method, route and status code. Event streams are left out: their duration is how long a client watched.",
			Buckets: latencyBuckets,
		}, []string{"method", "route", "code"}),
		sessionWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callctx_session_writes_total",
			Help: "Writes that reached the store, by operation (create, write, end) and result: ok, unchanged (a write that changed nothing), or the error code (not_found, conflict, precondition_failed, invalid, internal, ...).",
		}, []string{"op", "result"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callctx_store_write_errors_total",
			Help: "Session writes the store itself failed, by operation (create, write, end) and code: storage_full (no space: a full disk, Redis at maxmemory), unavailable (unreachable, or an I/O error), internal. Refusals by the session rules are not counted.",
		}, []string{"op", "code"}),
		storeCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "callctx_store_commit_duration_seconds",
			Help:    "Time to commit a write transaction (write and fsync), from the end of its last write to durability.",
			Buckets: latencyBuckets,
		}),
		storeBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "callctx_store_batch_size",
			Help:    "Store writes per committed transaction: concurrent writes share one commit and one fsync.",
			Buckets: batchBuckets,
		}),
		storeWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "callctx_store_write_duration_seconds",
			Help:    "Time a write spent in the store, from joining the writer's queue to being durable: the wait for the commit in progress, its own group commit, and its turn to be told.",
			Buckets: writeBuckets,
		}),
		triggerEvals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callctx_trigger_evaluations_total",
			Help: "Trigger evaluations, by trigger and result (fired, not_fired).",
		}, []string{"trigger", "result"}),
		automations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callctx_automations_total",
			Help: "Automation (outbound webhook) deliveries, by automation and result: sent, failed (an attempt failed and will be retried), gave_up (failed for good).",
		}, []string{"automation", "result"}),
		automationsPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "callctx_automations_pending",
			Help: "Automations waiting in the durable outbox to be delivered.",
		}),
		sipRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callctx_sip_requests_total",
			Help: "SIP requests, by direction (in: received by the bridge, out: sent by it), method and the final response code (\"none\" when there was none, e.g. a timeout).",
		}, []string{"direction", "method", "code"}),
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callctx_transfers_total",
			Help: "Finished call transfers, by method (refer, invite, redirect) and outcome.",
		}, []string{"method", "outcome"}),
		sipTargets: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "callctx_sip_target_up",
			Help: "Whether a SIP target or SBC the bridge watches answered its last OPTIONS probe (1) or not (0), by target URI.",
		}, []string{"target"}),
	}
	m.reg.MustRegister(
		m.httpRequests, m.httpDuration, m.sessionWrites, m.storeErrors, m.storeCommit, m.storeBatch, m.storeWrite,
		m.triggerEvals, m.automations, m.automationsPending, m.sipRequests, m.transfers, m.sipTargets,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "callctx_build_info",
			Help:        "Always 1; the version label says which callctx is running.",
			ConstLabels: prometheus.Labels{"version": opts.Version},
		}, func() float64 { return 1 }),
	)
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      promLogger{logger},
		ErrorHandling: promhttp.ContinueOnError, // one failing collector must not hide the others
		Registry:      m.reg,                    // promhttp_metric_handler_errors_total
	})
	return m
}

// CountActiveCalls makes callctx_calls_active ask count at every scrape.
// Call it once, when the store is open.
func (m *Metrics) CountActiveCalls(count func(ctx context.Context) (int, error)) {
	m.reg.MustRegister(&activeCalls{count: count, desc: prometheus.NewDesc(
		"callctx_calls_active", "Calls that are active now, counted in the store at scrape time.", nil, nil)})
}

// ServeHTTP serves the metrics in Prometheus's text format.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

// Registry returns the registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveRequest records one answered HTTP request. route is the OpenAPI
// path of the route that matched, "" when none did. An event stream counts
// as a request but stays out of the latency histogram.
func (m *Metrics) ObserveRequest(method, route string, status int, took time.Duration, stream bool) {
	if m == nil {
		return
	}
	// The method first: a client may send any token as a method, and the
	// cache must stay as bounded as the labels.
	key := requestKey{method: httpMethod(method), route: route, status: status, stream: stream}
	v, ok := m.httpSeries.Load(key)
	if !ok {
		if route == "" {
			route = "unmatched"
		}
		code := strconv.Itoa(status)
		rs := &requestSeries{count: m.httpRequests.WithLabelValues(key.method, route, code)}
		if !stream {
			rs.duration = m.httpDuration.WithLabelValues(key.method, route, code)
		}
		v, _ = m.httpSeries.LoadOrStore(key, rs)
	}
	series := v.(*requestSeries)
	series.count.Inc()
	if series.duration != nil {
		series.duration.Observe(took.Seconds())
	}
}

// requestKey identifies the series of one kind of request; its values are
// bounded like the labels they become.
type requestKey struct {
	method, route string
	status        int
	stream        bool
}

// requestSeries caches a request kind's resolved series: resolving labels
// hashes them under a lock, which is most of what observing would cost.
type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer // nil for event streams
}

// StoreCommitted records one committed write transaction; it has the
// signature of bolt.Options.OnCommit.
func (m *Metrics) StoreCommitted(writes int, commit time.Duration) {
	if m == nil {
		return
	}
	m.storeBatch.Observe(float64(writes))
	m.storeCommit.Observe(commit.Seconds())
}

// StoreWrote records how long one write spent in the store; it has the
// signature of bolt.Options.OnWrite.
func (m *Metrics) StoreWrote(took time.Duration) {
	if m == nil {
		return
	}
	m.storeWrite.Observe(took.Seconds())
}

// TriggerEvaluated records one evaluation of the named trigger.
func (m *Metrics) TriggerEvaluated(trigger string, fired bool) {
	if m == nil {
		return
	}
	result := "not_fired"
	if fired {
		result = "fired"
	}
	m.triggerEvals.WithLabelValues(trigger, result).Inc()
}

// AutomationSent records an automation request its target accepted.
func (m *Metrics) AutomationSent(automation string) {
	if m == nil {
		return
	}
	m.automations.WithLabelValues(automation, "sent").Inc()
}

// AutomationFailed records a failed delivery attempt; final says it will
// not be retried.
func (m *Metrics) AutomationFailed(automation string, final bool) {
	if m == nil {
		return
	}
	result := "failed"
	if final {
		result = "gave_up"
	}
	m.automations.WithLabelValues(automation, result).Inc()
}

// AutomationsPending sets how many automations wait in the outbox.
func (m *Metrics) AutomationsPending(n int) {
	if m == nil {
		return
	}
	m.automationsPending.Set(float64(n))
}

// SIPRequest records a SIP request the bridge received (inbound true) or
// sent, with the status code of its final response; 0 when there was none.
func (m *Metrics) SIPRequest(inbound bool, method string, status int) {
	if m == nil {
		return
	}
	direction := "out"
	if inbound {
		direction = "in"
	}
	code := "none"
	if status >= 100 && status <= 699 {
		code = strconv.Itoa(status)
	} else if status != 0 {
		code = "other"
	}
	m.sipRequests.WithLabelValues(direction, sipMethod(method), code).Inc()
}

// Transfer records a finished transfer: method is refer, invite or
// redirect; outcome a short word such as completed, failed, rejected or
// timeout (lowercased, and cut to 32 letters, digits and underscores).
func (m *Metrics) Transfer(method, outcome string) {
	if m == nil {
		return
	}
	switch method = strings.ToLower(method); method {
	case "refer", "invite", "redirect":
	default:
		method = "other"
	}
	m.transfers.WithLabelValues(method, labelWord(outcome)).Inc()
}

// TargetState records the outcome of an OPTIONS probe of a SIP target the
// bridge watches. Targets come from the configuration, so the label's
// values are bounded by it.
func (m *Metrics) TargetState(target string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.sipTargets.WithLabelValues(target).Set(v)
}

// httpMethod bounds the method label: net/http accepts any token as a
// method.
func httpMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// sipMethod bounds the method label to the methods of RFC 3261 and its
// extensions; a peer can send any token.
func sipMethod(m string) string {
	switch m = strings.ToUpper(m); m {
	case "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE",
		"NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE":
		return m
	}
	return "other"
}

// labelWord turns a word from our own code into a label value of at most
// 32 of [a-z0-9_].
func labelWord(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if b.Len() == 32 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		case r == '-' || r == ' ':
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "other"
	}
	return b.String()
}

// activeCalls asks the store at scrape time, so the gauge is right after a
// restart and never drifts.
type activeCalls struct {
	count func(ctx context.Context) (int, error)
	desc  *prometheus.Desc
}

func (a *activeCalls) Describe(ch chan<- *prometheus.Desc) { ch <- a.desc }

func (a *activeCalls) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := a.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(a.desc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(a.desc, prometheus.GaugeValue, float64(n))
}

// promLogger adapts slog to promhttp's Logger.
type promLogger struct{ l *slog.Logger }

func (p promLogger) Println(v ...any) {
	p.l.Warn("metrics scrape failed in part", "error", strings.TrimSpace(fmt.Sprintln(v...)))
}
