package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/callctx/callctx/api"
	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge"
	"github.com/callctx/callctx/sipbridge/sipcodec"
	"github.com/callctx/callctx/token"
	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of callctx serve. Zero values mean the
// defaults of DefaultConfig.
type Config struct {
	HTTP        HTTPConfig        `yaml:"http"`
	Store       string            `yaml:"store"` // bolt (the default) or redis
	Data        DataConfig        `yaml:"data"`
	Redis       RedisConfig       `yaml:"redis"`
	Auth        AuthConfig        `yaml:"auth"`
	Limits      LimitsConfig      `yaml:"limits"`
	Retention   RetentionConfig   `yaml:"retention"`
	Log         LogConfig         `yaml:"log"`
	Flows       FlowsConfig       `yaml:"flows"`
	Automations AutomationsConfig `yaml:"automations"`
	SIP         SIPConfig         `yaml:"sip"`
	// ContextLinks configures context by reference (sip.carry.as: reference, and POST
	// /v1/calls/{id}/context-link).
	ContextLinks ContextLinksConfig `yaml:"context_links"`
	Memory       MemoryConfig       `yaml:"memory"`
}

// MemoryConfig bounds the memory of callctx serve.
type MemoryConfig struct {
	// Limit is the Go runtime's soft memory limit in bytes (runtime/debug.SetMemoryLimit).
	// 0: MemoryLimitRatio of the container's memory limit (cgroup) if it has one, else none.
	// GOMEMLIMIT in the environment overrides it.
	Limit int64 `yaml:"limit"`
}

// FlowsConfig says where the triggers, automations and flows are.
type FlowsConfig struct {
	Dir string `yaml:"dir"` // a directory of *.yaml files; absent is fine
}

// AutomationsConfig sets how automations are delivered; an automation may
// set its own timeout and retry policy.
type AutomationsConfig struct {
	Workers    int      `yaml:"workers"`     // requests in flight at most
	Timeout    Duration `yaml:"timeout"`     // per attempt
	Attempts   int      `yaml:"attempts"`    // in all, the first included
	Backoff    Duration `yaml:"backoff"`     // before the first retry; doubles, with jitter
	MaxBackoff Duration `yaml:"max_backoff"` // the longest pause between attempts
}

// HTTPConfig configures the HTTP API.
type HTTPConfig struct {
	Listen       string   `yaml:"listen"`         // host:port
	MaxBodyBytes int64    `yaml:"max_body_bytes"` // largest request body
	AccessLog    *bool    `yaml:"access_log"`     // one log line per request
	KeepAlive    Duration `yaml:"sse_keepalive"`  // comment interval on idle event streams
	// Streams bounds the event streams (docs/limits.md).
	Streams StreamsConfig `yaml:"streams"`
	// Clients bounds what one client address may ask (docs/limits.md).
	Clients ClientsConfig `yaml:"clients"`
}

// ClientsConfig bounds what one client (a source address; for IPv6 its /64)
// may ask of the HTTP API. 0 turns a limit off.
type ClientsConfig struct {
	RequestsPerSecond     float64  `yaml:"requests_per_second"`      // faster requests get 429
	Burst                 int      `yaml:"burst"`                    // requests a client may save up
	MaxConns              int      `yaml:"max_conns"`                // connections open at once; a request on one more gets 429
	AuthFailuresPerMinute float64  `yaml:"auth_failures_per_minute"` // wrong credentials; past them, 429 until the bucket refills
	AuthFailureBurst      int      `yaml:"auth_failure_burst"`       // wrong credentials a client may save up
	TrustedProxies        []string `yaml:"trusted_proxies"`          // proxies whose X-Forwarded-For names the client
	Exempt                []string `yaml:"exempt"`                   // not held to requests_per_second and max_conns
}

// Defaults of http.clients.
const (
	DefaultHTTPRequestsPerSecond     = 200
	DefaultHTTPRequestBurst          = 400
	DefaultHTTPMaxConns              = 256
	DefaultHTTPAuthFailuresPerMinute = 10
	DefaultHTTPAuthFailureBurst      = 20
)

// DefaultHTTPClientsExempt are the clients http.clients holds only to the
// failed-authentication limit unless told otherwise: this machine.
var DefaultHTTPClientsExempt = []string{"127.0.0.0/8", "::1"}

// limits turns the configuration into the API's, checking it.
func (c ClientsConfig) limits() (api.ClientLimits, error) {
	out := api.ClientLimits{RequestsPerSecond: c.RequestsPerSecond, Burst: c.Burst, MaxConns: c.MaxConns,
		AuthFailuresPerMinute: c.AuthFailuresPerMinute, AuthFailureBurst: c.AuthFailureBurst}
	if c.RequestsPerSecond < 0 || c.Burst < 0 || c.MaxConns < 0 || c.AuthFailuresPerMinute < 0 || c.AuthFailureBurst < 0 {
		return out, errors.New("http.clients settings must not be negative")
	}
	var err error
	if out.TrustedProxies, err = prefixes("http.clients.trusted_proxies", c.TrustedProxies); err != nil {
		return out, err
	}
	if out.Exempt, err = prefixes("http.clients.exempt", c.Exempt); err != nil {
		return out, err
	}
	return out, nil
}

// StreamsConfig bounds the event streams: how many may be open, how slowly
// a client may read, how much a resume replays. Zero: the default.
type StreamsConfig struct {
	Max            int      `yaml:"max"`              // open at once, in all
	MaxPerToken    int      `yaml:"max_per_token"`    // open at once per token
	MaxPerCall     int      `yaml:"max_per_call"`     // open at once on one call's session
	WriteTimeout   Duration `yaml:"write_timeout"`    // one write to a client; a slower one is dropped
	MaxReplay      int      `yaml:"max_replay"`       // versions one resume replays; beyond, a fresh snapshot
	MaxReplayBytes int      `yaml:"max_replay_bytes"` // bytes one resume replays; beyond, a fresh snapshot
}

// limits turns the configuration into the API's.
func (c StreamsConfig) limits() api.StreamLimits {
	return api.StreamLimits{Max: c.Max, MaxPerToken: c.MaxPerToken, MaxPerCall: c.MaxPerCall,
		WriteTimeout: time.Duration(c.WriteTimeout), MaxReplay: c.MaxReplay, MaxReplayBytes: c.MaxReplayBytes}.WithDefaults()
}

// DataConfig configures the embedded store.
type DataConfig struct {
	Dir string `yaml:"dir"`
	// Batch is accepted and ignored, with a warning: the store's group
	// commit sizes its commits by itself (older configurations tuned
	// bbolt's DB.Batch here).
	Batch *BatchConfig `yaml:"batch"`
}

// RedisConfig says where the Redis store lives (store: redis): one of url,
// sentinel or cluster.
type RedisConfig struct {
	URL      string         `yaml:"url"` // redis://[user:password@]host:port[/db], rediss:// for TLS
	Sentinel SentinelConfig `yaml:"sentinel"`
	Cluster  ClusterConfig  `yaml:"cluster"`
	Username string         `yaml:"username"`
	Password string         `yaml:"password"` // CALLCTX_REDIS_PASSWORD overrides it
	Prefix   string         `yaml:"prefix"`   // of every key; several deployments can share a Redis
	PoolSize int            `yaml:"pool_size"`
	// DialTimeout and Timeout bound connecting and each command: with
	// Redis gone, requests fail with 503 within them.
	DialTimeout Duration `yaml:"dial_timeout"`
	Timeout     Duration `yaml:"timeout"`
	// OutboxLease is how long a node's claim on its automations outlives
	// it: after that another node takes them over.
	OutboxLease Duration `yaml:"outbox_lease"`
}

// SentinelConfig selects a Sentinel-managed primary.
type SentinelConfig struct {
	Master   string   `yaml:"master"`
	Addrs    []string `yaml:"addrs"`
	Password string   `yaml:"password"`
}

// ClusterConfig lists seed nodes of a Redis Cluster.
type ClusterConfig struct {
	Addrs []string `yaml:"addrs"`
}

// Store kinds.
const (
	StoreBolt  = "bolt"
	StoreRedis = "redis"
)

// BatchConfig is the former tuning of bbolt's DB.Batch, now ignored.
type BatchConfig struct {
	MaxSize  int      `yaml:"max_size"`
	MaxDelay Duration `yaml:"max_delay"`
}

// AuthConfig lists the bearer tokens. None: the API is open, which is
// allowed on a loopback address only.
type AuthConfig struct {
	Tokens []TokenConfig `yaml:"tokens"`
	OAuth  OAuthConfig   `yaml:"oauth"`
	// SigningKeys sign the access tokens of /oauth/token and the context
	// links of the SIP bridge: the first signs, every one verifies, so a new
	// key goes first and the old one stays behind it until its tokens have
	// expired. None: a key generated at start (tokens then do not survive a
	// restart, and other nodes do not accept them).
	SigningKeys []SigningKeyConfig `yaml:"signing_keys"`
}

// TokenConfig is one token: its name (the actor in history), the secret
// or "sha256:<hex>" of it, and its scopes. With oauth, clients may get an
// access token for it from POST /oauth/token instead; token may then be
// left out.
type TokenConfig struct {
	Name   string            `yaml:"name"`
	Token  string            `yaml:"token"`
	Scopes []string          `yaml:"scopes"`
	OAuth  *TokenOAuthConfig `yaml:"oauth"`
}

// TokenOAuthConfig holds the OAuth2 credentials of a token: a username and
// password (the password grant babelforce clients use), a client ID and
// secret (the client credentials grant), or both. The password and the
// secret are written like tokens: the text, or "sha256:<hex>" of it.
type TokenOAuthConfig struct {
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
}

// ContextLinksConfig configures the signed, call-scoped read links of context by reference.
type ContextLinksConfig struct {
	// BaseURL is where the receiving side reaches callctx's API, e.g.
	// https://callctx.example.com; http://<http.listen> when empty.
	BaseURL   string   `yaml:"base_url"`
	TTL       Duration `yaml:"ttl"`        // how long a link works
	Grace     Duration `yaml:"grace"`      // how long after its call ended
	SingleUse bool     `yaml:"single_use"` // every link reads the session once
}

// Defaults of context links.
const (
	DefaultContextLinkTTL = 5 * time.Minute
)

// OAuthConfig sets the lifetimes of the tokens /oauth/token issues.
type OAuthConfig struct {
	AccessTokenTTL  Duration `yaml:"access_token_ttl"`
	RefreshTokenTTL Duration `yaml:"refresh_token_ttl"`
}

// SigningKeyConfig is one signing key: an ID (put in every token it signs)
// and a secret of at least 32 bytes.
type SigningKeyConfig struct {
	ID     string `yaml:"id"`
	Secret string `yaml:"secret"`
}

// LimitsConfig bounds sessions.
type LimitsConfig struct {
	MaxNameLength   int `yaml:"max_name_length"`
	MaxValueBytes   int `yaml:"max_value_bytes"`
	MaxVariables    int `yaml:"max_variables"`
	MaxSessionBytes int `yaml:"max_session_bytes"`
}

// RetentionConfig says how long ended sessions are kept and how often the
// sweep runs.
type RetentionConfig struct {
	Period        Duration `yaml:"period"`
	SweepInterval Duration `yaml:"sweep_interval"`
}

// LogConfig configures the logger.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // auto (text on a terminal, else JSON), json, text
}

// SIPConfig configures the SIP bridge (package sipbridge).
type SIPConfig struct {
	// Listen is the UDP and TCP address (one port for both); "" turns the bridge off.
	Listen    string `yaml:"listen"`
	Advertise string `yaml:"advertise"` // host in Contact headers; required with a wildcard listen address
	TLS       struct {
		Listen   string `yaml:"listen"`
		CertFile string `yaml:"cert_file"`
		KeyFile  string `yaml:"key_file"`
	} `yaml:"tls"`
	Mode   string `yaml:"mode"`   // answer (default), redirect, bridge
	Target string `yaml:"target"` // where redirect and bridge send calls
	SBC    string `yaml:"sbc"`    // host[:port] tel: targets are sent to
	// TransferTarget is where a transfer that names no target goes, when the call's flow
	// names none either (Live Hub's per-bot transfer number).
	TransferTarget string `yaml:"transfer_target"`
	Carry          struct {
		Variables   []string          `yaml:"variables"`
		As          string            `yaml:"as"`
		UUIEncoding string            `yaml:"uui_encoding"`
		Names       map[string]string `yaml:"names"`
	} `yaml:"carry"`
	Map             map[string]MapEntry `yaml:"map"` // inbound header or UUI key → variable, and its type
	TransferTimeout Duration            `yaml:"transfer_timeout"`
	Flow            string              `yaml:"flow"`      // the flow of inbound calls; it decides instead of mode
	MaxCalls        int                 `yaml:"max_calls"` // inbound calls at once; more get 503
	// UDPReceiveBuffer is the UDP socket's receive buffer asked for, in bytes (0:
	// sipbridge.DefaultUDPReceiveBuffer); the system caps it (net.core.rmem_max).
	UDPReceiveBuffer int `yaml:"udp_receive_buffer"`
	// Allow lists the networks (CIDR) or addresses that may start calls without
	// authenticating. Empty: every source (then serve refuses a listen address beyond
	// loopback unless Auth has users); [0.0.0.0/0, ::/0] says "anyone" explicitly.
	Allow []string `yaml:"allow"`
	// Auth turns on digest authentication for the sources Allow does not list.
	Auth SIPAuthConfig `yaml:"auth"`
	// RateLimit bounds the calls one source address may start per second.
	RateLimit SIPRateLimitConfig `yaml:"rate_limit"`
	// Unrouted is what happens to a call to a number the routing table of the flows
	// directory does not serve (and there is no default nor sip.flow): refuse (404, the
	// default) or mode (it gets sip.mode, as without a table).
	Unrouted  string `yaml:"unrouted"`
	Keepalive struct {
		Interval Duration `yaml:"interval"` // between two OPTIONS probes of a target; 0 (the default) turns them off
		Timeout  Duration `yaml:"timeout"`  // for an answer
		Targets  []string `yaml:"targets"`  // watched besides the configured and flows' targets and the SBC
	} `yaml:"keepalive"`
	Refer struct {
		Action string `yaml:"action"` // transfer (default) or flow: what an accepted REFER leads to
		Mode   string `yaml:"mode"`   // invite (default) or refer: how a REFER from the far end of a bridged call is carried out
	} `yaml:"refer"`
}

// SIPAuthConfig configures SIP digest authentication (sipbridge.AuthConfig).
type SIPAuthConfig struct {
	Realm      string          `yaml:"realm"`      // sipbridge.DefaultRealm when empty
	Algorithms []string        `yaml:"algorithms"` // offered in this order; SHA-256 and MD5 when empty
	NonceTTL   Duration        `yaml:"nonce_ttl"`  // how long a challenge can be answered
	Users      []SIPUserConfig `yaml:"users"`
}

// SIPUserConfig is a user that may start calls: its password, or the hex of
// H(name:realm:password) for each algorithm it uses, so that the file need not hold
// the password.
type SIPUserConfig struct {
	Name      string `yaml:"name"`
	Password  string `yaml:"password"`
	HA1MD5    string `yaml:"ha1_md5"`
	HA1SHA256 string `yaml:"ha1_sha256"`
}

// SIPRateLimitConfig bounds the new calls (INVITEs outside a dialog) per source address.
type SIPRateLimitConfig struct {
	PerSource float64  `yaml:"per_source"` // calls per second; 0 turns the limit off
	Burst     int      `yaml:"burst"`      // calls a source may save up
	Exempt    []string `yaml:"exempt"`     // networks or addresses not limited
}

// Defaults of sip.rate_limit.
const (
	DefaultSIPRatePerSource = 100
	DefaultSIPRateBurst     = 200
)

// DefaultSIPRateExempt are the sources sip.rate_limit leaves alone unless told otherwise:
// this machine.
var DefaultSIPRateExempt = []string{"127.0.0.0/8", "::1"}

// MapEntry is one entry of sip.map: a variable name ("X-Customer-ID: ivr.customer_id"), or
// {var, type} where type is string (the default), number, boolean or json and var may be
// left out to keep the default name ("X-Score: {type: number}").
type MapEntry struct {
	Var  string `yaml:"var"`
	Type string `yaml:"type"`
}

// UnmarshalYAML reads a variable name or a {var, type} mapping.
func (e *MapEntry) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&e.Var)
	}
	type plain MapEntry
	var p plain
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a variable name or {var, type}", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; k != "var" && k != "type" {
			return fmt.Errorf("line %d: unknown field %q in a sip.map entry; use var and type", n.Content[i].Line, k)
		}
	}
	if err := n.Decode(&p); err != nil {
		return err
	}
	*e = MapEntry(p)
	return nil
}

// Duration is a time.Duration written like "24h" or "500us" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration like 30s: %w", n.Line, err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 30s or 24h", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// Defaults.
const (
	DefaultHTTPListen    = "127.0.0.1:8080"
	DefaultDataDir       = "./callctx-data"
	DefaultSweepInterval = time.Minute
	DefaultFlowsDir      = "./flows"
	DefaultSIPListen     = sipbridge.DefaultListen
)

// DefaultConfig returns the configuration used when nothing is set.
func DefaultConfig() Config {
	on := true
	return Config{
		HTTP: HTTPConfig{Listen: DefaultHTTPListen, MaxBodyBytes: api.DefaultMaxBodyBytes, AccessLog: &on, KeepAlive: Duration(api.DefaultKeepAlive),
			Streams: StreamsConfig{Max: api.DefaultMaxStreams, MaxPerToken: api.DefaultMaxStreamsPerToken, MaxPerCall: api.DefaultMaxStreamsPerCall,
				WriteTimeout: Duration(api.DefaultStreamWriteTimeout), MaxReplay: api.DefaultMaxReplay, MaxReplayBytes: api.DefaultMaxReplayBytes},
			Clients: ClientsConfig{RequestsPerSecond: DefaultHTTPRequestsPerSecond, Burst: DefaultHTTPRequestBurst, MaxConns: DefaultHTTPMaxConns,
				AuthFailuresPerMinute: DefaultHTTPAuthFailuresPerMinute, AuthFailureBurst: DefaultHTTPAuthFailureBurst,
				Exempt: slices.Clone(DefaultHTTPClientsExempt)}},
		Store:     StoreBolt,
		Data:      DataConfig{Dir: DefaultDataDir},
		Retention: RetentionConfig{Period: Duration(session.DefaultRetention), SweepInterval: Duration(DefaultSweepInterval)},
		Log:       LogConfig{Level: "info", Format: "auto"},
		Flows:     FlowsConfig{Dir: DefaultFlowsDir},
		Automations: AutomationsConfig{
			Workers: flow.DefaultWorkers, Timeout: Duration(flow.DefaultTimeout), Attempts: flow.DefaultAttempts,
			Backoff: Duration(flow.DefaultBackoff), MaxBackoff: Duration(flow.DefaultMaxBackoff),
		},
		SIP: SIPConfig{Listen: DefaultSIPListen, Mode: string(sipbridge.ModeAnswer), RateLimit: SIPRateLimitConfig{
			PerSource: DefaultSIPRatePerSource, Burst: DefaultSIPRateBurst, Exempt: DefaultSIPRateExempt,
		}},
	}
}

// ReadConfigFile reads a YAML configuration file over the defaults.
// Unknown keys are errors, so a typo does not silently change nothing.
func ReadConfigFile(path string, cfg *Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) { // an empty file is an empty configuration
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// Validate checks the configuration as a whole.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		errs = append(errs, fmt.Errorf("http.listen %q is not host:port", c.HTTP.Listen))
	}
	if c.Memory.Limit < 0 {
		errs = append(errs, fmt.Errorf("memory.limit %d: bytes, or 0 for the container's limit", c.Memory.Limit))
	}
	switch c.Store {
	case StoreBolt:
		if c.Data.Dir == "" {
			errs = append(errs, errors.New("data.dir is empty"))
		}
	case StoreRedis:
		errs = append(errs, c.Redis.validate()...)
	default:
		errs = append(errs, fmt.Errorf("store %q: use bolt or redis", c.Store))
	}
	if _, err := c.Tokens(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.Keys(); err != nil {
		errs = append(errs, err)
	}
	if u := c.ContextLinks.BaseURL; u != "" {
		if p, err := url.Parse(u); err != nil || p.Scheme != "https" && p.Scheme != "http" || p.Host == "" || p.RawQuery != "" || p.Fragment != "" {
			errs = append(errs, fmt.Errorf("context_links.base_url %q: want http(s)://host[:port][/path]", u))
		}
	}
	if c.ContextLinks.TTL < 0 || c.ContextLinks.Grace < 0 {
		errs = append(errs, errors.New("context_links durations must not be negative"))
	}
	if c.Auth.OAuth.AccessTokenTTL < 0 || c.Auth.OAuth.RefreshTokenTTL < 0 {
		errs = append(errs, errors.New("auth.oauth token lifetimes must not be negative"))
	}
	if len(c.Auth.Tokens) == 0 && !isLoopback(c.HTTP.Listen) {
		errs = append(errs, fmt.Errorf("refusing to serve %s without auth tokens: anyone who can reach it could read and write every call; configure auth.tokens or listen on a loopback address such as 127.0.0.1", c.HTTP.Listen))
	}
	for name, v := range map[string]int{
		"limits.max_name_length": c.Limits.MaxNameLength, "limits.max_value_bytes": c.Limits.MaxValueBytes,
		"limits.max_variables": c.Limits.MaxVariables, "limits.max_session_bytes": c.Limits.MaxSessionBytes,
		"automations.workers": c.Automations.Workers, "automations.attempts": c.Automations.Attempts,
	} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s is negative", name))
		}
	}
	if c.HTTP.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("http.max_body_bytes is negative"))
	}
	if st := c.HTTP.Streams; st.Max < 0 || st.MaxPerToken < 0 || st.MaxPerCall < 0 || st.WriteTimeout < 0 || st.MaxReplay < 0 || st.MaxReplayBytes < 0 {
		errs = append(errs, errors.New("http.streams settings must not be negative"))
	}
	if _, err := c.HTTP.Clients.limits(); err != nil {
		errs = append(errs, err)
	}
	if c.Retention.Period < 0 || c.Retention.SweepInterval < 0 {
		errs = append(errs, errors.New("retention durations must not be negative"))
	}
	if c.Automations.Timeout < 0 || c.Automations.Backoff < 0 || c.Automations.MaxBackoff < 0 {
		errs = append(errs, errors.New("automations durations must not be negative"))
	}
	if c.Flows.Dir == "" {
		errs = append(errs, errors.New("flows.dir is empty"))
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level %q: use debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "auto", "json", "text":
	default:
		errs = append(errs, fmt.Errorf("log.format %q: use auto, json or text", c.Log.Format))
	}
	if c.SIP.Listen != "" {
		if _, err := c.SIPBridgeConfig(); err != nil {
			errs = append(errs, err)
		}
		if err := c.SIP.checkOpen(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// validate checks the Redis settings of store: redis.
func (r *RedisConfig) validate() []error {
	var errs []error
	n := 0
	if r.URL != "" {
		n++
		if !strings.HasPrefix(r.URL, "redis://") && !strings.HasPrefix(r.URL, "rediss://") && !strings.HasPrefix(r.URL, "unix://") {
			errs = append(errs, errors.New("redis.url must start with redis://, rediss:// or unix://"))
		}
	}
	if len(r.Sentinel.Addrs) > 0 {
		n++
		if r.Sentinel.Master == "" {
			errs = append(errs, errors.New("redis.sentinel.master is empty"))
		}
	}
	if len(r.Cluster.Addrs) > 0 {
		n++
	}
	if n != 1 {
		errs = append(errs, errors.New("store: redis needs exactly one of redis.url, redis.sentinel.addrs and redis.cluster.addrs"))
	}
	for _, a := range append(append([]string{}, r.Sentinel.Addrs...), r.Cluster.Addrs...) {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("redis address %q is not host:port", a))
		}
	}
	if strings.ContainsAny(r.Prefix, "{}") {
		errs = append(errs, errors.New("redis.prefix must not contain braces (they are Cluster hash tags)"))
	}
	if r.PoolSize < 0 || r.DialTimeout < 0 || r.Timeout < 0 || r.OutboxLease < 0 {
		errs = append(errs, errors.New("redis.pool_size, redis.dial_timeout, redis.timeout and redis.outbox_lease must not be negative"))
	}
	return errs
}

// Tokens turns the configured tokens into the API's, hashing plain secrets.
func (c *Config) Tokens() ([]api.Token, error) {
	var out []api.Token
	seen := map[string]bool{}
	for i, t := range c.Auth.Tokens {
		where := fmt.Sprintf("auth.tokens[%d]", i)
		if t.Name == "" {
			return nil, fmt.Errorf("%s has no name", where)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("%s: the name %q is used twice", where, t.Name)
		}
		seen[t.Name] = true
		tok := api.Token{Name: t.Name}
		switch {
		case t.Token == "" && t.OAuth == nil:
			return nil, fmt.Errorf("%s (%s) has no token (nor oauth credentials)", where, t.Name)
		case t.Token != "":
			sum, err := secretHash(t.Token)
			if err != nil {
				return nil, fmt.Errorf("%s (%s): %w", where, t.Name, err)
			}
			tok.SHA256 = sum
		}
		if o := t.OAuth; o != nil {
			if err := o.apply(&tok); err != nil {
				return nil, fmt.Errorf("%s (%s).oauth: %w", where, t.Name, err)
			}
			for _, id := range []string{"username " + strings.ToLower(tok.Username), "client_id " + tok.ClientID} {
				if strings.HasSuffix(id, " ") {
					continue
				}
				if seen[id] {
					return nil, fmt.Errorf("%s (%s).oauth: the %s is used by another token", where, t.Name, id)
				}
				seen[id] = true
			}
		}
		if len(t.Scopes) == 0 {
			return nil, fmt.Errorf("%s (%s) has no scopes", where, t.Name)
		}
		for _, s := range t.Scopes {
			if !api.Scope(s).Valid() {
				return nil, fmt.Errorf("%s (%s): unknown scope %q; use one of %v", where, t.Name, s, api.Scopes)
			}
			tok.Scopes = append(tok.Scopes, api.Scope(s))
		}
		out = append(out, tok)
	}
	return out, nil
}

// secretHash is the SHA-256 of a configured secret: the text, or
// "sha256:<hex>" of it.
func secretHash(s string) ([32]byte, error) {
	var sum [32]byte
	hexSum, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return sha256.Sum256([]byte(s)), nil
	}
	b, err := hex.DecodeString(hexSum)
	if err != nil || len(b) != sha256.Size {
		return sum, errors.New("sha256: must be followed by 64 hex digits")
	}
	copy(sum[:], b)
	return sum, nil
}

// apply checks the OAuth2 credentials and puts them, hashed, on tok.
func (o *TokenOAuthConfig) apply(tok *api.Token) error {
	if (o.Username == "") != (o.Password == "") {
		return errors.New("username and password go together")
	}
	if (o.ClientID == "") != (o.ClientSecret == "") {
		return errors.New("client_id and client_secret go together")
	}
	if o.Username == "" && o.ClientID == "" {
		return errors.New("give username and password, or client_id and client_secret")
	}
	tok.Username, tok.ClientID = o.Username, o.ClientID
	var err error
	if o.Password != "" {
		if tok.PasswordSHA256, err = secretHash(o.Password); err != nil {
			return fmt.Errorf("password: %w", err)
		}
	}
	if o.ClientSecret != "" {
		if tok.ClientSecretSHA256, err = secretHash(o.ClientSecret); err != nil {
			return fmt.Errorf("client_secret: %w", err)
		}
	}
	return nil
}

// Keys returns the configured signing keys, or a generated one when none is
// configured.
func (c *Config) Keys() (*token.Keys, error) {
	if len(c.Auth.SigningKeys) == 0 {
		return token.GenerateKeys(), nil
	}
	keys := make([]token.Key, len(c.Auth.SigningKeys))
	for i, k := range c.Auth.SigningKeys {
		keys[i] = token.Key{ID: k.ID, Secret: []byte(k.Secret)}
	}
	r, err := token.NewKeys(keys)
	if err != nil {
		return nil, fmt.Errorf("auth.signing_keys: %w", err)
	}
	return r, nil
}

// isLoopback reports whether a listen address binds only loopback
// interfaces.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SIPBridgeConfig turns the sip section into the bridge's configuration and checks it,
// without touching the disk: the TLS certificate is loaded by SIPTLSConfig when serve opens,
// so check and simulate work where the key files are not.
func (c *Config) SIPBridgeConfig() (sipbridge.Config, error) {
	s := c.SIP
	out := sipbridge.Config{
		Listen: s.Listen, Advertise: s.Advertise, TLSListen: s.TLS.Listen, Mode: sipbridge.Mode(s.Mode),
		Target: s.Target, SBC: s.SBC, TransferTarget: s.TransferTarget, Map: mapRules(s.Map), TransferTimeout: time.Duration(s.TransferTimeout),
		Carry: session.TransferContext{Variables: s.Carry.Variables, As: s.Carry.As, UUIEncoding: s.Carry.UUIEncoding, Names: s.Carry.Names},
		Flow:  s.Flow, MaxCalls: s.MaxCalls, UDPReceiveBuffer: s.UDPReceiveBuffer,
		Refer:     sipbridge.ReferConfig{Action: s.Refer.Action, Mode: session.TransferMode(s.Refer.Mode)},
		Keepalive: sipbridge.KeepaliveConfig{Interval: time.Duration(s.Keepalive.Interval), Timeout: time.Duration(s.Keepalive.Timeout), Targets: s.Keepalive.Targets},
	}
	switch s.Unrouted {
	case "", "refuse":
	case "mode":
		out.KeepUnrouted = true
	default:
		return out, fmt.Errorf("sip.unrouted %q: use refuse (404 for numbers the routing table does not serve) or mode", s.Unrouted)
	}
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		return out, fmt.Errorf("sip.listen %q is not host:port (\"\" turns the SIP bridge off)", s.Listen)
	}
	switch {
	case s.TLS.Listen == "" && (s.TLS.CertFile != "" || s.TLS.KeyFile != ""):
		return out, errors.New("sip.tls.cert_file and key_file need sip.tls.listen")
	case s.TLS.Listen != "" && (s.TLS.CertFile == "" || s.TLS.KeyFile == ""):
		return out, errors.New("sip.tls.listen needs sip.tls.cert_file and sip.tls.key_file")
	}
	if s.TransferTimeout < 0 {
		return out, errors.New("sip.transfer_timeout must not be negative")
	}
	if s.MaxCalls < 0 {
		return out, errors.New("sip.max_calls must not be negative")
	}
	if s.UDPReceiveBuffer < 0 {
		return out, fmt.Errorf("sip.udp_receive_buffer must not be negative (0 takes the default, %d bytes)", sipbridge.DefaultUDPReceiveBuffer)
	}
	var err error
	if out.Allow, err = prefixes("sip.allow", s.Allow); err != nil {
		return out, err
	}
	if out.Auth, err = s.Auth.bridge(); err != nil {
		return out, err
	}
	r := s.RateLimit
	if r.PerSource < 0 || r.Burst < 0 {
		return out, errors.New("sip.rate_limit.per_source and burst must not be negative")
	}
	out.RateLimit = sipbridge.RateLimit{PerSecond: r.PerSource, Burst: r.Burst}
	if out.RateLimit.Exempt, err = prefixes("sip.rate_limit.exempt", r.Exempt); err != nil {
		return out, err
	}
	return out, out.Validate()
}

// prefixes parses a list of networks (10.0.0.0/8) and addresses (192.0.2.7).
func prefixes(field string, list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, a := range list {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			ip, ierr := netip.ParseAddr(a)
			if ierr != nil {
				return nil, fmt.Errorf("%s[%d]: %q is neither a network (10.0.0.0/8) nor an address (192.0.2.7)", field, i, a)
			}
			p = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// bridge turns sip.auth into the bridge's configuration.
func (a SIPAuthConfig) bridge() (sipbridge.AuthConfig, error) {
	out := sipbridge.AuthConfig{Realm: a.Realm, Algorithms: a.Algorithms, NonceTTL: time.Duration(a.NonceTTL)}
	if a.NonceTTL < 0 {
		return out, errors.New("sip.auth.nonce_ttl must not be negative")
	}
	for _, u := range a.Users {
		bu := sipbridge.AuthUser{Name: u.Name, Password: u.Password}
		for alg, v := range map[string]string{sipbridge.AlgorithmMD5: u.HA1MD5, sipbridge.AlgorithmSHA256: u.HA1SHA256} {
			if v != "" {
				if bu.HA1 == nil {
					bu.HA1 = map[string]string{}
				}
				bu.HA1[alg] = v
			}
		}
		out.Users = append(out.Users, bu)
	}
	return out, nil
}

// checkOpen refuses a SIP listener beyond loopback that would take calls from anyone
// without being told so: sip.allow empty and no sip.auth users.
func (s SIPConfig) checkOpen() error {
	if len(s.Allow) > 0 || len(s.Auth.Users) > 0 {
		return nil
	}
	for _, addr := range []string{s.Listen, s.TLS.Listen} {
		if addr != "" && !isLoopback(addr) {
			return fmt.Errorf("refusing to take SIP calls on %s from anyone: any host that reaches it could start calls, fill sip.* variables and start flows; list your IVRs and SBCs in sip.allow, configure sip.auth.users, or write sip.allow: [0.0.0.0/0, \"::/0\"] to take calls from anyone", addr)
		}
	}
	return nil
}

// mapRules turns sip.map into the bridge's rules.
func mapRules(m map[string]MapEntry) map[string]sipcodec.Rule {
	if m == nil {
		return nil
	}
	out := make(map[string]sipcodec.Rule, len(m))
	for k, e := range m {
		out[k] = sipcodec.Rule{Var: e.Var, Type: sipcodec.Type(e.Type)}
	}
	return out
}

// SIPTLSConfig loads the SIP bridge's TLS certificate; nil when TLS is off.
func (c *Config) SIPTLSConfig() (*tls.Config, error) {
	t := c.SIP.TLS
	if t.Listen == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("sip.tls: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// anyone reports whether a list of networks holds every IPv4 or every IPv6 address.
func anyone(ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Bits() == 0 {
			return true
		}
	}
	return false
}
