package testenv_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callctx/callctx/internal/testenv"
)

// childEnv marks the test binary run by TestLookPath_Missing as the child
// whose test needs a tool that is not there.
const childEnv = "TESTENV_CHILD"

func TestLookPath_Found(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "callctx-fake-tool")
	if err := os.WriteFile(tool, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if got := testenv.LookPath(t, "callctx-fake-tool"); got != tool {
		t.Fatalf("LookPath=%q, want %q", got, tool)
	}
}

// TestLookPath_Missing runs this test binary again with a PATH that holds no
// sipp: without CI the test that needs sipp is skipped, with CI it fails,
// and both times the message says to run make test.
func TestLookPath_Missing(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		testenv.LookPath(t, "sipp")
		t.Fatal("LookPath returned without sipp on PATH")
	}
	run := func(t *testing.T, ci string) (string, error) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestLookPath_Missing$", "-test.v")
		env := []string{childEnv + "=1", "PATH=" + t.TempDir()}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, testenv.CI+"=") {
				env = append(env, kv)
			}
		}
		if ci != "" {
			env = append(env, testenv.CI+"="+ci)
		}
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, tt := range []struct {
		name, ci string
		fails    bool
	}{
		{"Skip", "", false},
		{"SkipWhenCIFalse", "false", false},
		{"FailInCI", "true", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(t, tt.ci)
			if tt.fails {
				if err == nil || !strings.Contains(out, "--- FAIL: TestLookPath_Missing") {
					t.Fatalf("CI=%s: want a failure, got err=%v:\n%s", tt.ci, err, out)
				}
			} else if err != nil || !strings.Contains(out, "--- SKIP: TestLookPath_Missing") {
				t.Fatalf("CI=%q: want a skip, got err=%v:\n%s", tt.ci, err, out)
			}
			if !strings.Contains(out, "sipp is not installed; `make test` installs it") {
				t.Fatalf("the message does not name sipp and make test:\n%s", out)
			}
		})
	}
}
