package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// buildBinary builds the callctx command once per test binary.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "callctx-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "callctx")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// buildCallctx returns the command built once per test binary (see
// buildBinary).
func buildCallctx(t *testing.T) string {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// startBinary runs `callctx serve` with the SIP bridge on 127.0.0.1:0, dataDir and
// flowsDir, and waits until it listens (see node.start).
func startBinary(t *testing.T, dataDir, flowsDir string, env ...string) *node {
	t.Helper()
	n := &node{t: t, name: "callctx", bin: buildCallctx(t), env: env,
		args: []string{"--sip", "127.0.0.1:0", "--data", dataDir, "--flows", flowsDir}}
	n.start()
	return n
}
