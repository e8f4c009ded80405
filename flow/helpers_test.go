package flow_test

import (
	"testing"
	"testing/fstest"

	"github.com/callctx/callctx/flow"
)

// env is the environment the example flows need.
func env(crmURL string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		switch name {
		case "CRM_URL":
			return crmURL, true
		case "CRM_WEBHOOK_SECRET":
			return testSecret, true
		}
		return "", false
	}
}

const testSecret = "s3cret-for-tests-only-0123456789"

// mustLoad compiles the flows directory dir.
func mustLoad(tb testing.TB, dir string, getenv func(string) (string, bool)) *flow.Snapshot {
	tb.Helper()
	snap, warns, err := flow.Load(dir, flow.CompileOptions{Getenv: getenv})
	if err != nil {
		tb.Fatalf("load %s: %v", dir, err)
	}
	if len(warns) > 0 {
		tb.Fatalf("load %s: warnings:\n%v", dir, warns)
	}
	return snap
}

// mustCompile compiles one flows-directory file held in memory.
func mustCompile(tb testing.TB, yaml string, getenv func(string) (string, bool)) *flow.Snapshot {
	tb.Helper()
	d, err := flow.ParseFS(fstest.MapFS{"flows.yaml": {Data: []byte(yaml)}})
	if err != nil {
		tb.Fatalf("parse: %v", err)
	}
	snap, _, err := flow.Compile(d, flow.CompileOptions{Getenv: getenv})
	if err != nil {
		tb.Fatalf("compile: %v", err)
	}
	return snap
}
