// Command callctx runs the callctx service and its tools.
//
//	callctx serve [--http ADDR] [--sip ADDR] [--data DIR] [--flows DIR] [--config FILE]
//	callctx check [--config FILE] [--svg DIR] [DIR]
//	callctx simulate (--flow NAME | --to NUMBER) [--dir DIR] [--config FILE] [--set NAME=VALUE]... [--input TEXT]... [--at TIME] [--json]
//	callctx version
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"
	_ "time/tzdata" // triggers name IANA zones; the binary must not depend on the host's zoneinfo

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/callctx/callctx"
	"github.com/callctx/callctx/api"
	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/metrics"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/session/bolt"
	"github.com/callctx/callctx/session/redis"
	"github.com/callctx/callctx/sipbridge"
	"github.com/callctx/callctx/stats"
	"github.com/callctx/callctx/token"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "callctx:", err)
		os.Exit(1)
	}
}

const usage = `callctx keeps the context of live phone calls.

Usage:
  callctx serve [--http ADDR] [--sip ADDR] [--data DIR] [--flows DIR] [--config FILE]
  callctx check [--config FILE] [--svg DIR] [DIR]
  callctx simulate (--flow NAME | --to NUMBER) [--dir DIR] [--config FILE] [--set NAME=VALUE]... [--input TEXT]... [--at TIME] [--json]
  callctx version

Each command prints its flags with --help.

serve runs the service: HTTP on 127.0.0.1:8080 and the SIP bridge on
127.0.0.1:5060 (UDP and TCP) unless told otherwise; SIGHUP reloads the flows
directory (live calls keep the flow version they started with).
check validates a flows directory: DIR, else the one serve would load
(--config FILE, CALLCTX_CONFIG, CALLCTX_FLOWS, else ./flows); file:line
errors and a non-zero exit; warnings for unreachable nodes and routes;
--svg DIR writes each flow's diagram to DIR/<flow>.svg.
simulate prints the path a call would take through a flow, offline: --set
seeds the session (a JSON value, or else text), --input answers input nodes
in order, --to picks the flow with the routing table, --at sets the time
calendars and time conditions see.

Environment: CALLCTX_HTTP, CALLCTX_SIP, CALLCTX_DATA, CALLCTX_FLOWS,
CALLCTX_CONFIG do what the flags do; flags win. --sip "" (or CALLCTX_SIP=off)
turns the SIP bridge off. LOG_LEVEL sets the log level when the configuration
does not.`

// Run runs one command line as the callctx command does (tests run check
// and simulate through it).
func Run(args []string, stdout, stderr io.Writer) error {
	return run(context.Background(), args, stdout, stderr)
}

// run dispatches a command line.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "check":
		return runCheck(args[1:], stdout)
	case "simulate":
		return runSimulate(args[1:], stdout)
	case "version":
		fmt.Fprintln(stdout, "callctx", callctx.Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	fmt.Fprintln(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// LoadConfig builds the configuration of serve: defaults, then the config
// file, then the environment, then the flags.
func LoadConfig(args []string, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	httpAddr := fs.String("http", "", "HTTP listen address (default "+DefaultHTTPListen+")")
	dataDir := fs.String("data", "", "data directory (default "+DefaultDataDir+")")
	flowsDir := fs.String("flows", "", "flows directory (default "+DefaultFlowsDir+")")
	configPath := fs.String("config", "", "YAML configuration file")
	sipAddr := optionalString{}
	fs.Var(&sipAddr, "sip", "SIP listen address for UDP and TCP (default "+DefaultSIPListen+"; \"\" turns the SIP bridge off)")
	if err := fs.Parse(args); err != nil {
		var help strings.Builder
		if err := flagError(fs, err, &help, "callctx serve [--http ADDR] [--sip ADDR] [--data DIR] [--flows DIR] [--config FILE]",
			"Runs the service: HTTP on "+DefaultHTTPListen+" and the SIP bridge on "+DefaultSIPListen+" (UDP and TCP)\nunless told otherwise. SIGHUP reloads the flows directory. CALLCTX_HTTP, CALLCTX_SIP,\nCALLCTX_DATA, CALLCTX_FLOWS and CALLCTX_CONFIG do what the flags do; flags win."); err != nil {
			return Config{}, err
		}
		return Config{}, helpText(help.String())
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	cfg := DefaultConfig()
	path := firstOf(*configPath, getenv("CALLCTX_CONFIG"))
	if path != "" {
		if err := ReadConfigFile(path, &cfg); err != nil {
			return Config{}, err
		}
	}
	if lvl := getenv("LOG_LEVEL"); lvl != "" && (path == "" || cfg.Log.Level == "info") {
		cfg.Log.Level = strings.ToLower(lvl)
	}
	cfg.HTTP.Listen = firstOf(*httpAddr, getenv("CALLCTX_HTTP"), cfg.HTTP.Listen)
	cfg.Redis.Password = firstOf(getenv("CALLCTX_REDIS_PASSWORD"), cfg.Redis.Password)
	if v, ok := lookupEnv(getenv, "CALLCTX_SIP"); ok {
		cfg.SIP.Listen = v
	}
	if sipAddr.set {
		cfg.SIP.Listen = sipAddr.value
	}
	cfg.Data.Dir = firstOf(*dataDir, getenv("CALLCTX_DATA"), cfg.Data.Dir)
	cfg.Flows.Dir = firstOf(*flowsDir, getenv("CALLCTX_FLOWS"), cfg.Flows.Dir)
	return cfg, cfg.Validate()
}

// helpText is what --help asked for: LoadConfig returns it as its error,
// and serve prints it and stops without one.
type helpText string

func (h helpText) Error() string { return "help requested" }
func (h helpText) Unwrap() error { return flag.ErrHelp }

// optionalString is a flag that knows whether it was given, so that --sip "" can turn the
// bridge off.
type optionalString struct {
	value string
	set   bool
}

func (o *optionalString) String() string { return o.value }
func (o *optionalString) Set(v string) error {
	o.value, o.set = v, true
	return nil
}

// lookupEnv reads an environment variable through getenv, which cannot tell "unset" from
// "set to empty": so CALLCTX_SIP=off is how the environment turns the bridge off.
func lookupEnv(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	switch v {
	case "":
		return "", false
	case "off":
		return "", true
	}
	return v, true
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// ServeGCPercent is the garbage collector's target for callctx serve when
// GOGC is not set. The live heap is small (the active calls' sessions and a
// few buffers) while every request allocates, so at Go's default of 100 the
// collector runs very often: on the 2-core development machine 400 cut the
// server's CPU per durable write by about 40% and the single-client write
// p99 from 2.4 ms to about 1 ms (bench/httpbench). The heap may grow to about
// five times the live data; GOMEMLIMIT caps it where memory is tight.
const ServeGCPercent = 400

// MemoryLimitRatio is the share of the container's memory limit (cgroup) that callctx serve
// takes as the Go runtime's soft memory limit when memory.limit is 0: the rest is for what
// the runtime does not count (the bbolt file's pages mapped in, the executable).
const MemoryLimitRatio = 0.9

// setMemoryLimit sets the Go runtime's soft memory limit from cfg (docs/configuration.md,
// memory.limit), unless GOMEMLIMIT is set in the environment: then that is the limit. With
// a limit, the collector stays lazy (ServeGCPercent) while memory is plentiful and works
// harder as the limit nears.
func setMemoryLimit(cfg MemoryConfig, logger *slog.Logger) {
	provider, ratio := memlimit.FromCgroup, MemoryLimitRatio
	if cfg.Limit > 0 {
		provider, ratio = memlimit.Limit(uint64(cfg.Limit)), 1
	}
	limit, err := memlimit.Set(memlimit.WithProvider(provider), memlimit.WithRatio(ratio))
	if err != nil {
		logger.Warn("memory limit not set", "error", err)
		return
	}
	if limit < math.MaxInt64 {
		logger.Info("memory limit", "bytes", limit)
	}
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := LoadConfig(args, os.Getenv)
	var help helpText
	if errors.As(err, &help) {
		fmt.Fprint(stdout, string(help))
		return nil
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP is caught from here on, before the server says it listens: a
	// reload asked for while it starts waits for it (by default SIGHUP would
	// end the process, and a process started with it ignored would drop it).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(ServeGCPercent)
	}
	logger := NewLogger(cfg.Log, stderr)
	setMemoryLimit(cfg.Memory, logger)
	// The Redis client library logs through one logger for the whole process:
	// it is set here, once per process, not by each Main (tests open many).
	redis.LogTo(logger)
	m := NewMain(cfg, logger)
	if err := m.Open(); err != nil {
		return err
	}
	for {
		select {
		case <-hup:
			_ = m.Reload() // logged; the flows in force stay
		case <-ctx.Done():
			m.logger.Info("shutting down")
			return m.Close()
		}
	}
}

// NewLogger builds the root logger: text on a terminal, JSON otherwise,
// unless the configuration says which.
func NewLogger(cfg LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level)) // validated already
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.Format
	if format == "auto" || format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Main is a running callctx: tests start it on 127.0.0.1:0 with a temporary
// data directory, as the command does with the real configuration.
type Main struct {
	Config Config
	// Getenv looks up the environment variables flows name (secret_env,
	// ${NAME} in automation URLs and headers); os.LookupEnv by default.
	Getenv func(string) (string, bool)

	logger  *slog.Logger
	keys    *token.Keys // sign access tokens and context links
	links   *token.Linker
	metrics *metrics.Metrics
	store   session.Store
	service *session.Service
	flows   *flow.Engine
	board   *stats.Board // the wallboard's live calls and counts
	api     *api.Handler
	server  *http.Server
	ln      net.Listener
	sip     *sipbridge.Bridge

	stopSweep  context.CancelFunc
	followCtx  context.Context // ends when the node stops working with other nodes
	stopFollow context.CancelFunc
	wg         sync.WaitGroup
}

// NewMain returns a Main for cfg; Open starts it.
func NewMain(cfg Config, logger *slog.Logger) *Main {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Main{Config: cfg, logger: logger, Getenv: os.LookupEnv}
}

// loadFlows compiles the flows directory. A directory that does not exist
// gives no flows; a broken one is an error listing every problem.
func (m *Main) loadFlows() (*flow.Snapshot, error) {
	dir := m.Config.Flows.Dir
	snap, warns, err := flow.Load(dir, flow.CompileOptions{Getenv: m.Getenv})
	if errors.Is(err, fs.ErrNotExist) {
		m.logger.Info("no flows directory; serving without flows", "flows_dir", dir)
		return flow.Empty(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("load flows from %s:\n%w", dir, err)
	}
	for _, w := range warns {
		m.logger.Warn("flows: "+w.Message, "file", w.File, "line", w.Line, "field", w.Pointer)
	}
	m.logger.Info("flows loaded", "flows_dir", dir, "version", snap.Version,
		"triggers", snap.Triggers.Len(), "automations", len(snap.Automations()), "flows", len(snap.Flows()))
	return snap, nil
}

// Reload loads the flows directory again and puts it in force; calls whose
// flow has started keep the version they started with. On error the flows
// in force stay, and the error is logged and returned.
func (m *Main) Reload() error {
	snap, err := m.loadFlows()
	if err != nil {
		m.logger.Error("reload refused; the flows in force stay", "error", err)
		return err
	}
	m.flows.Reload(snap)
	return nil
}

// Flows returns the flow engine (for tests and tools).
func (m *Main) Flows() *flow.Engine { return m.flows }

// Open opens the store and starts serving: the store and the session
// service, the flows, the SIP bridge, the HTTP API, the retention sweep.
func (m *Main) Open() (err error) {
	cfg := m.Config
	tokens, err := cfg.Tokens()
	if err != nil {
		return err
	}
	if m.keys, err = cfg.Keys(); err != nil {
		return err
	}
	m.links = token.NewLinker(m.keys, cfg.ContextLinks.BaseURL, cmp.Or(time.Duration(cfg.ContextLinks.TTL), DefaultContextLinkTTL), cfg.ContextLinks.SingleUse)
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	m.metrics = metrics.New(metrics.Options{Version: callctx.Version, Logger: m.logger})
	storeAttr, err := m.openService()
	if err != nil {
		return err
	}
	m.board = stats.New(stats.Config{Service: m.service, Logger: m.logger})
	if err := m.openFlows(); err != nil {
		return err
	}
	if err := m.openBoard(); err != nil {
		return err
	}
	transferer, err := m.openSIP()
	if err != nil {
		return err
	}
	if err := m.openHTTP(tokens, transferer); err != nil {
		return err
	}
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	m.stopSweep = stopSweep
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.sweep(sweepCtx, time.Duration(cfg.Retention.SweepInterval))
	}()
	if cfg.ContextLinks.BaseURL == "" && !isLoopback(cfg.HTTP.Listen) {
		m.logger.Warn("context_links.base_url is empty: context links point at the listen address, which receivers elsewhere may not reach; set it to the HTTPS URL they use", "http", m.HTTPAddr())
	}
	if _, shared := m.store.(session.SharedStore); shared && len(cfg.Auth.SigningKeys) == 0 {
		m.logger.Warn("auth.signing_keys is empty: access tokens and context links this node signs are not accepted by the other nodes sharing the store; configure the same signing keys on every node")
	}
	if len(tokens) == 0 {
		m.logger.Warn("no auth tokens configured: the API is open to anyone on this machine; configure auth.tokens before listening beyond loopback", "http", m.HTTPAddr())
	}
	m.logger.Info("callctx listening", "http", m.HTTPAddr(), "sip", m.SIPAddr(), "store", cfg.Store, storeAttr, "version", callctx.Version)
	return nil
}

// openService opens the store and the session service over it. On a store
// that other nodes share, their writes wake this node's event streams. It
// returns the log attribute that says where the data lives.
func (m *Main) openService() (slog.Attr, error) {
	cfg := m.Config
	var storeAttr slog.Attr
	var err error
	m.store, storeAttr, err = m.openStore()
	if err != nil {
		return storeAttr, err
	}
	m.metrics.CountActiveCalls(m.store.ActiveCalls)
	m.service = session.NewService(m.metrics.Store(m.store), session.Options{
		Limits: session.Limits{
			MaxNameLength: cfg.Limits.MaxNameLength, MaxValueBytes: cfg.Limits.MaxValueBytes,
			MaxVariables: cfg.Limits.MaxVariables, MaxSessionBytes: cfg.Limits.MaxSessionBytes,
		},
		Retention: time.Duration(cfg.Retention.Period),
	})
	// Work with the other nodes sharing the store stops with the node.
	m.followCtx, m.stopFollow = context.WithCancel(context.Background())
	if shared, ok := m.store.(session.SharedStore); ok {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.service.Follow(m.followCtx, shared)
		}()
	}
	return storeAttr, nil
}

// openFlows loads the flows directory and starts the flow engine.
func (m *Main) openFlows() error {
	snap, err := m.loadFlows()
	if err != nil {
		return err
	}
	ac := m.Config.Automations
	m.flows = flow.NewEngine(flow.Config{
		Service: m.service, Store: m.store, Snapshot: snap, Logger: m.logger,
		Workers: ac.Workers, Timeout: time.Duration(ac.Timeout), Attempts: ac.Attempts,
		Backoff: time.Duration(ac.Backoff), MaxBackoff: time.Duration(ac.MaxBackoff),
		UserAgent: "callctx/" + callctx.Version,
		Observer:  observers{m.metrics, m.board},
	})
	if err := m.flows.Open(); err != nil {
		m.flows = nil
		return err
	}
	return nil
}

// openSIP starts the SIP bridge unless it is off, and returns the
// transferer the API hands transfers to: the bridge (nil when off); on a
// store that other nodes share, the bridge for this node's calls and the
// node that holds any other call, whose transfers this node runs in turn.
func (m *Main) openSIP() (session.Transferer, error) {
	cfg := m.Config
	var transferer session.Transferer
	if cfg.SIP.Listen != "" {
		bcfg, err := cfg.SIPBridgeConfig()
		if err != nil {
			return nil, err
		}
		if bcfg.TLSConfig, err = cfg.SIPTLSConfig(); err != nil {
			return nil, err
		}
		bcfg.Flows = m.flows
		bcfg.ContextLink = func(callID string) (string, error) {
			link, _, err := m.links.Link(callID, 0, false)
			return link, err
		}
		bcfg.Observer = observers{m.metrics, m.board}
		if bcfg.Flow != "" {
			if _, ok := m.flows.Snapshot().Flow(bcfg.Flow); !ok {
				return nil, fmt.Errorf("sip.flow %q is not a flow in %s", bcfg.Flow, cfg.Flows.Dir)
			}
		}
		if anyone(bcfg.Allow) && len(bcfg.Auth.Users) == 0 && !isLoopback(cfg.SIP.Listen) {
			m.logger.Warn("sip.allow lets any host that reaches the SIP port start calls, as configured", "sip", cfg.SIP.Listen)
		}
		m.sip, err = sipbridge.New(m.service, bcfg, m.logger.With("component", "sip"))
		if err != nil {
			return nil, err
		}
		if err := m.sip.Start(context.Background()); err != nil {
			m.sip = nil
			return nil, err
		}
		transferer = m.sip
	}
	shared, ok := m.store.(session.SharedStore)
	if !ok {
		return transferer, nil
	}
	// A SIP dialog lives on the node that answered it: transfers of other
	// nodes' calls are asked of them, and this node runs theirs.
	local := transferer
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := shared.ServeTransfers(m.followCtx, local); err != nil && m.followCtx.Err() == nil {
			m.logger.Error("serve forwarded transfers", "error", err)
		}
	}()
	return shared.Transferer(local), nil
}

// openHTTP builds the API and starts serving it.
func (m *Main) openHTTP(tokens []api.Token, transferer session.Transferer) error {
	cfg := m.Config
	clients, err := cfg.HTTP.Clients.limits()
	if err != nil {
		return err
	}
	m.api, err = api.NewHandler(api.Config{
		Service:         m.service,
		Flows:           m.flows,
		Spec:            callctx.OpenAPI,
		Tokens:          tokens,
		Logger:          m.logger,
		MaxBodyBytes:    cfg.HTTP.MaxBodyBytes,
		KeepAlive:       time.Duration(cfg.HTTP.KeepAlive),
		AccessLog:       cfg.HTTP.AccessLog == nil || *cfg.HTTP.AccessLog,
		Metrics:         m.metrics,
		Transferer:      transferer,
		Keys:            m.keys,
		AccessTokenTTL:  time.Duration(cfg.Auth.OAuth.AccessTokenTTL),
		RefreshTokenTTL: time.Duration(cfg.Auth.OAuth.RefreshTokenTTL),
		SIPTargets:      m.sipTargets(),
		Links:           m.links,
		ContextGrace:    time.Duration(cfg.ContextLinks.Grace),
		Board:           m.board,
		Streams:         cfg.HTTP.Streams.limits(),
		Clients:         clients,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP.Listen, err)
	}
	m.ln = m.api.Listener(ln) // counts each client's connections (http.clients.max_conns)
	if cfg.ContextLinks.BaseURL == "" {
		m.links.SetBaseURL("http://" + m.ln.Addr().String())
	}
	m.server = &http.Server{
		Handler:           m.api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
	}
	m.server.ConnContext = m.api.ConnContext // event streams bound their connection's send buffer; the client limits count it
	m.server.RegisterOnShutdown(m.api.Close)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.server.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.logger.Error("http server stopped", "error", err)
		}
	}()
	return nil
}

// sipTargets returns what /readyz shows of the SIP bridge's keep-alive, nil without the
// bridge.
func (m *Main) sipTargets() func() []api.SIPTarget {
	if m.sip == nil {
		return nil
	}
	return func() []api.SIPTarget {
		states := m.sip.Targets()
		out := make([]api.SIPTarget, len(states))
		for i, st := range states {
			t := api.SIPTarget{Target: st.Target, Status: st.Status, Error: st.Error}
			if st.Checked {
				up, since, at := st.Up, st.Since, st.CheckedAt
				t.Up, t.Since, t.CheckedAt = &up, &since, &at
				t.RTTMillis = float64(st.RTT.Microseconds()) / 1000
			}
			out[i] = t
		}
		return out
	}
}

// openStore opens the configured store and returns it with a log
// attribute that says where its data lives.
func (m *Main) openStore() (session.Store, slog.Attr, error) {
	cfg := m.Config
	if cfg.Store != StoreRedis {
		if cfg.Data.Batch != nil {
			m.logger.Warn("data.batch is no longer used and is ignored: writes that arrive during a commit share the next one, without a delay to tune")
		}
		st, err := bolt.Open(cfg.Data.Dir, bolt.Options{OnCommit: m.metrics.StoreCommitted, OnWrite: m.metrics.StoreWrote})
		if err != nil {
			return nil, slog.Attr{}, err
		}
		return st, slog.String("data", st.Path()), nil
	}
	r := cfg.Redis
	retention := time.Duration(cfg.Retention.Period)
	if retention <= 0 {
		retention = session.DefaultRetention
	}
	st, err := redis.Open(redis.Options{
		URL:              r.URL,
		SentinelMaster:   r.Sentinel.Master,
		SentinelAddrs:    r.Sentinel.Addrs,
		SentinelPassword: r.Sentinel.Password,
		ClusterAddrs:     r.Cluster.Addrs,
		Username:         r.Username,
		Password:         r.Password,
		Prefix:           r.Prefix,
		PoolSize:         r.PoolSize,
		DialTimeout:      time.Duration(r.DialTimeout),
		Timeout:          time.Duration(r.Timeout),
		OutboxLease:      time.Duration(r.OutboxLease),
		// The sweep purges ended calls after the retention period; the
		// TTL is the safety net should no node sweep for a day.
		ExpireAfter: retention + 24*time.Hour,
	})
	if err != nil {
		return nil, slog.Attr{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := st.Ping(ctx); err != nil {
		m.logger.Warn("redis does not answer yet; requests fail with 503 until it does", "redis", st.Target(), "error", err)
	}
	return st, slog.String("redis", st.Target()), nil
}

// sweep purges expired ended sessions every interval until ctx ends.
func (m *Main) sweep(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultSweepInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := m.service.Sweep(ctx)
			if err != nil {
				m.logger.Error("retention sweep failed", "error", err)
			} else if n > 0 {
				m.logger.Info("retention sweep", "purged", n)
			}
		}
	}
}

// HTTPAddr returns the address the API listens on.
func (m *Main) HTTPAddr() string {
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// Metrics returns the metrics registry: the flow engine and the SIP bridge
// report to it.
func (m *Main) Metrics() *metrics.Metrics { return m.metrics }

// SIPAddr returns the address the SIP bridge listens on for UDP and TCP, "" when it is off.
func (m *Main) SIPAddr() string {
	if m.sip == nil {
		return ""
	}
	return m.sip.Addr()
}

// Service returns the session service (for tests and tools).
func (m *Main) Service() *session.Service { return m.service }

// Close shuts down gracefully: event streams end, in-flight requests (and
// so acknowledged writes) finish, then the database is closed.
func (m *Main) Close() error {
	var errs []error
	if m.sip != nil {
		// First, while the store is open: the calls the bridge holds are hung up and ended.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if err := m.sip.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
		m.sip = nil
	}
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := m.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shut down http: %w", err))
		}
	}
	if m.stopSweep != nil {
		m.stopSweep()
	}
	if m.stopFollow != nil {
		m.stopFollow()
	}
	m.wg.Wait()
	if m.board != nil {
		m.board.Close()
	}
	if m.flows != nil {
		m.flows.Close() // deliveries in flight stay queued for the next start
		m.flows = nil
	}
	if m.store != nil {
		if err := m.store.Close(); err != nil {
			errs = append(errs, err)
		}
		m.store = nil
	}
	return errors.Join(errs...)
}
