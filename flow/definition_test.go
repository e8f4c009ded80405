package flow_test

import (
	"strings"
	"testing"

	"github.com/callctx/callctx/flow"
	"github.com/callctx/callctx/internal/yamldoc"
)

func TestLoad_errorsAndWarnings(t *testing.T) {
	cases := []struct {
		dir         string
		errs, warns []string
	}{
		{dir: "testdata/errors/schema", errs: []string{
			`schema.yaml:5:5: /automations/get-with-body/body: GET and DELETE requests have no body`,
			`schema.yaml:6:3: /automations/both-secrets: give secret or secret_env, not both`,
			`schema.yaml:9:5: /automations/both-secrets/secret_env: the environment variable X is not set`,
			`schema.yaml:10:3: /automations/filter-without-on: flows, when and changed filter events: add on: [...]`,
			`schema.yaml:12:5: /automations/filter-without-on/when: unknown trigger "t"`,
			`schema.yaml:17:7: /flows/schema-broken/nodes/a: missing field "prompt"`,
			`schema.yaml:18:11: /flows/schema-broken/nodes/b/type: type is play, say, input, switch, automation, wait, transfer or hangup`,
			`schema.yaml:19:48: /flows/schema-broken/nodes/c/wait: missing field "timeout"`,
			`schema.yaml:19:55: /flows/schema-broken/nodes/c/wait/until: unknown trigger "t"`,
			`schema.yaml:20:25: /flows/schema-broken/nodes/d/next: unknown field "next"; allowed here: description, reason, type`,
			`schema.yaml:21:7: /flows/schema-broken/nodes/bad name: invalid name: a node name is 1 to 64 letters, digits, '_' or '-', starting with a letter (it becomes part of app.<node>.<var>)`,
		}, warns: []string{
			// The flow is compiled despite its schema problems, so that
			// every problem shows at once.
			`schema.yaml:19:7: /flows/schema-broken/nodes/c: node "c" is never reached from start`,
			`schema.yaml:20:7: /flows/schema-broken/nodes/d: node "d" is never reached from start`,
			`schema.yaml:21:7: /flows/schema-broken/nodes/bad name: node "bad name" is never reached from start`,
		}},
		{dir: "testdata/errors/compile", errs: []string{
			`flows.yaml:6:5: /automations/no-scheme/url: the URL must start with http:// or https://`,
			`flows.yaml:8:5: /automations/host-placeholder/url: the URL's host must be written out; placeholders may only follow it`,
			`flows.yaml:11:15: /automations/reserved-header/headers/Idempotency-Key: the header Idempotency-Key is set by callctx`,
			`flows.yaml:14:5: /automations/missing-env/secret_env: the environment variable NOT_SET_ANYWHERE is not set`,
			`flows.yaml:18:5: /automations/bad-when/when: unknown trigger "nope"`,
			`flows.yaml:19:13: /automations/bad-when/flows/0: unknown flow "no-such-flow"`,
			`flows.yaml:22:27: /automations/backoff/retry/max_backoff: max_backoff is shorter than backoff`,
			`flows.yaml:25:5: /flows/broken/start: unknown node "nowhere"`,
			`flows.yaml:30:9: /flows/broken/nodes/ask/min: min 8 is more than max 4`,
			`flows.yaml:36:14: /flows/broken/nodes/route/cases/0/trigger: unknown trigger "unknown-trigger"`,
			`flows.yaml:37:30: /flows/broken/nodes/route/cases/1/next: unknown node "missing-node"`,
			`flows.yaml:39:30: /flows/broken/nodes/route/wait/timeout: a wait may last 25s at most: the media platform's request waits that long`,
			`flows.yaml:42:23: /flows/broken/nodes/fire/automations/0: unknown automation "no-such-automation"`,
		}, warns: []string{
			`flows.yaml:27:7: /flows/broken/nodes/ask: node "ask" is never reached from start`,
			`flows.yaml:33:7: /flows/broken/nodes/route: node "route" is never reached from start`,
			`flows.yaml:40:7: /flows/broken/nodes/fire: node "fire" is never reached from start`,
		}},
		{dir: "testdata/errors/all-at-once", errs: []string{
			// Every stage's problems in one run, sorted by file and line.
			`a.yaml:3:42: /triggers/typo/when/valeu: unknown field "valeu"; allowed here: ignore_case, op, trim, tz, value, var`,
			"a.yaml:4:47: /triggers/bad-regex/when/value: invalid regular expression: missing closing ]: `[A-Z`",
			`a.yaml:5:48: /triggers/bad-zone/when/tz: unknown time zone "Europe/Atlantis" (use an IANA name such as Europe/Berlin)`,
			`a.yaml:12:18: /flows/main/nodes/route/cases/0/trigger: unknown trigger "no-such-trigger"`,
			`a.yaml:13:9: /flows/main/nodes/route/default: unknown node "nowhere"`,
			`b.yaml:4:35: /calendars/support/weekly/mon/1: mon 11:00-13:00 overlaps mon 08:00-12:00`,
			`b.yaml:7:32: /routing/routes/0/flow: unknown flow "no-such-flow"`,
		}},
		{dir: "testdata/warnings", warns: []string{
			`flows.yaml:6:5: /automations/a/url: {iv.typo} is not a placeholder (placeholders name call., sip., ivr. or app. variables) and is sent as written`,
			`flows.yaml:7:5: /automations/a/changed: changed only filters session.updated events, which on does not list`,
			`flows.yaml:15:9: /flows/w/nodes/hello/text: {name} is not a placeholder (placeholders name call., sip., ivr. or app. variables) and is sent as written`,
			`flows.yaml:17:7: /flows/w/nodes/orphan: node "orphan" is never reached from start`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.dir, func(t *testing.T) {
			snap, warns, err := flow.Load(tc.dir, flow.CompileOptions{})
			if got, want := lines(yamldoc.AsErrors(err), tc.dir), strings.Join(tc.errs, "\n"); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
			if got, want := lines(warns, tc.dir), strings.Join(tc.warns, "\n"); got != want {
				t.Errorf("warnings:\n%s\nwant:\n%s", got, want)
			}
			if (err == nil) != (snap != nil) {
				t.Errorf("snapshot %v with error %v", snap, err)
			}
		})
	}
}

func lines(es yamldoc.Errors, dir string) string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = strings.TrimPrefix(e.Error(), dir+"/")
	}
	return strings.Join(out, "\n")
}

func TestLoad_example(t *testing.T) {
	snap := mustLoad(t, "../examples/order-status/flows", env("https://crm.example.com"))
	f, ok := snap.Flow("order-status")
	if !ok {
		t.Fatal("flow order-status missing")
	}
	if got, want := f.Start, "lookup-number"; got != want {
		t.Errorf("Start=%q, want %q", got, want)
	}
	if got, want := f.Nodes["inputReader"].Var, "app.inputReader.reference"; got != want {
		t.Errorf("input var %q, want %q", got, want)
	}
	a, _ := snap.Automation("crm-lookup-number")
	if !a.Signed() || a.URL != "${CRM_URL}/callctx/lookup" {
		t.Errorf("automation %+v", a)
	}
	if got := len(snap.Automations()); got != 3 {
		t.Errorf("%d automations, want 3", got)
	}
	if got := snap.Triggers.Len(); got != 3 {
		t.Errorf("%d triggers, want 3", got)
	}
	if len(snap.Version) != 16 {
		t.Errorf("Version %q", snap.Version)
	}

	t.Run("MissingEnv", func(t *testing.T) {
		_, _, err := flow.Load("../examples/order-status/flows", flow.CompileOptions{})
		if err == nil || !strings.Contains(err.Error(), "the environment variable CRM_URL is not set") {
			t.Fatalf("err=%v", err)
		}
		_, warns, err := flow.Load("../examples/order-status/flows", flow.CompileOptions{AllowMissingSecrets: true})
		if err != nil {
			t.Fatalf("with AllowMissingSecrets: %v", err)
		}
		if len(warns) != 2 { // CRM_URL and CRM_WEBHOOK_SECRET, once each
			t.Fatalf("warnings:\n%v", warns)
		}
	})
}
