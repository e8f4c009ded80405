package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestLoadConfig(t *testing.T) {
	file := writeFile(t, "callctx.yaml", `
http:
  listen: 127.0.0.1:9000
data:
  dir: /var/lib/from-file
retention:
  period: 2h
limits:
  max_variables: 50
`)
	for _, tc := range []struct {
		name       string
		args       []string
		env        func(string) string
		wantHTTP   string
		wantData   string
		wantRetain time.Duration
	}{
		{"defaults", nil, env(), "127.0.0.1:8080", "./callctx-data", 24 * time.Hour},
		{"file", []string{"--config", file}, env(), "127.0.0.1:9000", "/var/lib/from-file", 2 * time.Hour},
		{"file from env", nil, env("CALLCTX_CONFIG", file), "127.0.0.1:9000", "/var/lib/from-file", 2 * time.Hour},
		{"env over file", []string{"--config", file}, env("CALLCTX_HTTP", "127.0.0.1:9100", "CALLCTX_DATA", "/env"), "127.0.0.1:9100", "/env", 2 * time.Hour},
		{"flags over env", []string{"--http", "localhost:9200", "--data", "/flag"}, env("CALLCTX_HTTP", "127.0.0.1:9100", "CALLCTX_DATA", "/env"), "localhost:9200", "/flag", 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := LoadConfig(tc.args, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.HTTP.Listen != tc.wantHTTP || cfg.Data.Dir != tc.wantData || time.Duration(cfg.Retention.Period) != tc.wantRetain {
				t.Fatalf("http=%s data=%s retention=%v", cfg.HTTP.Listen, cfg.Data.Dir, time.Duration(cfg.Retention.Period))
			}
		})
	}
}

func TestLoadConfig_Errors(t *testing.T) {
	sum := sha256.Sum256([]byte("s3cret"))
	for _, tc := range []struct {
		name, yaml string
		args       []string
		want       string
	}{
		{"open beyond loopback", "", []string{"--http", "0.0.0.0:8080"}, "refusing to serve 0.0.0.0:8080 without auth tokens"},
		{"open on all interfaces", "", []string{"--http", ":8080"}, "refusing"},
		{"typo in a key", "htp:\n  listen: x\n", nil, "field htp not found"},
		{"bad duration", "retention:\n  period: forever\n", nil, `"forever" is not a duration`},
		{"bad scope", "auth:\n  tokens:\n    - {name: crm, token: x, scopes: [sessions:delete]}\n", nil, `unknown scope "sessions:delete"`},
		{"bad hash", "auth:\n  tokens:\n    - {name: crm, token: 'sha256:abc', scopes: [admin]}\n", nil, "64 hex digits"},
		{"duplicate name", "auth:\n  tokens:\n    - {name: crm, token: a, scopes: [admin]}\n    - {name: crm, token: b, scopes: [admin]}\n", nil, "used twice"},
		{"no scopes", "auth:\n  tokens:\n    - {name: crm, token: a}\n", nil, "no scopes"},
		{"negative limit", "limits:\n  max_variables: -1\n", nil, "negative"},
		{"bad log level", "log:\n  level: loud\n", nil, "log.level"},
		{"bad listen", "http:\n  listen: nowhere\n", nil, "not host:port"},
		{"bad sip.unrouted", "sip:\n  unrouted: drop\n", nil, `sip.unrouted "drop": use refuse`},
		{"negative client limit", "http:\n  clients:\n    max_conns: -1\n", nil, "http.clients settings must not be negative"},
		{"negative sip buffer", "sip:\n  udp_receive_buffer: -1\n", nil, "sip.udp_receive_buffer must not be negative"},
		{"bad trusted proxy", "http:\n  clients:\n    trusted_proxies: [lb.example]\n", nil, `http.clients.trusted_proxies[0]: "lb.example"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.yaml != "" {
				args = append(args, "--config", writeFile(t, "c.yaml", tc.yaml))
			}
			_, err := LoadConfig(args, env())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	// With tokens, listening beyond loopback is fine; sha256: tokens work.
	p := writeFile(t, "c.yaml", "auth:\n  tokens:\n    - {name: crm, token: 'sha256:"+hex.EncodeToString(sum[:])+"', scopes: [sessions:read]}\n")
	cfg, err := LoadConfig([]string{"--config", p, "--http", "0.0.0.0:8080"}, env())
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := cfg.Tokens()
	if len(toks) != 1 || toks[0].SHA256 != sum {
		t.Fatalf("tokens %+v", toks)
	}
}

// TestConfig_DocumentedHTTPDefaults: the http section of the file in
// docs/configuration.md that sets every key to its default is the default.
func TestConfig_DocumentedHTTPDefaults(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, _ := strings.Cut(string(doc), "```yaml\n")
	block, _, _ = strings.Cut(block, "```")
	http, _, _ := strings.Cut(block, "\nstore:")
	cfg := DefaultConfig()
	cfg.HTTP = HTTPConfig{}
	if err := ReadConfigFile(writeFile(t, "http.yaml", http), &cfg); err != nil {
		t.Fatal(err)
	}
	if !sameHTTP(cfg.HTTP, DefaultConfig().HTTP) {
		t.Fatalf("documented http section:\n%+v\nthe defaults:\n%+v", cfg.HTTP, DefaultConfig().HTTP)
	}
}

// sameHTTP compares two HTTP sections, AccessLog by value.
func sameHTTP(a, b HTTPConfig) bool {
	if (a.AccessLog == nil) != (b.AccessLog == nil) || a.AccessLog != nil && *a.AccessLog != *b.AccessLog {
		return false
	}
	a.AccessLog, b.AccessLog = nil, nil
	for _, c := range []*HTTPConfig{&a, &b} { // [] and nothing say the same
		if len(c.Clients.TrustedProxies) == 0 {
			c.Clients.TrustedProxies = nil
		}
		if len(c.Clients.Exempt) == 0 {
			c.Clients.Exempt = nil
		}
	}
	return reflect.DeepEqual(a, b)
}
