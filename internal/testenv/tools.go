// Package testenv holds what callctx's tests share about the world they run in: the
// outside tools they need, waiting for something to happen, and capturing what a logger or
// a process writes. One helper per job, here, instead of a copy per package.
//
// # Outside tools
//
// make test installs every tool the tests need (sipp, redis-server, node and the npm
// packages, chromium, baresip, linphonec, kamailio; scripts/ensure-deps.sh), so there
// nothing is ever missing. A plain go
// test on a machine without one skips the tests that need it, with a message naming make
// test; when the CI environment variable is set it fails them instead, so that CI can never
// skip a test silently. See LookPath and Missing.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// CI is the environment variable that turns a missing tool from a skip into
// a failure. CI systems set it (CI=true); any value but "" or "false" counts.
const CI = "CI"

// InCI reports whether the CI environment variable is set.
func InCI() bool {
	v := os.Getenv(CI)
	return v != "" && v != "false"
}

// LookPath returns the path of the command name on PATH. When there is none
// the test ends as Missing says.
func LookPath(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(tb, name)
	}
	return p
}

// Missing ends the test because what (a command, an npm package, a file)
// is not installed: it skips, naming make test, or fails when CI is set.
func Missing(tb testing.TB, what string) {
	tb.Helper()
	msg := fmt.Sprintf("%s is not installed; `make test` installs it (scripts/ensure-deps.sh)", what)
	if InCI() {
		tb.Fatalf("%s; %s is set, so a missing tool fails the test instead of skipping it", msg, CI)
	}
	tb.Skip(msg)
}
