package peertest

import (
	"path/filepath"
	"testing"
)

// TestStarted: a peer that says it is ready has started; one that could not bind its ports,
// or exited, is stopped and reported for another try.
func TestStarted(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		want         bool
	}{
		{"ready", "echo 'baresip is ready.'; sleep 30", true},
		{"ports taken", "echo 'ua: SIP Transport failed: Address already in use'; sleep 30", false},
		{"exited", "echo 'something else'; exit 1", false},
		// linphonec: the prompt, with the failed bind only in its debug log.
		{"ports taken, said in the log", "echo 'belle-sip-error-udp bind() failed for 127.0.0.1 port 5060: Address already in use' >peer.log; echo 'baresip is ready.'; sleep 30", false},
		{"ready, a log without errors", "echo 'belle-sip-message-Creating listening point' >peer.log; echo 'baresip is ready.'; sleep 30", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := start(t, "peer", "/bin/sh", dir, nil, "-c", tc.script)
			p.log = filepath.Join(dir, "peer.log")
			p.run(t)
			if got := p.started(t, "baresip is ready.", 1); got != tc.want {
				t.Fatalf("started = %v, want %v; output %q", got, tc.want, p.Output())
			}
			if !tc.want {
				select {
				case <-p.done:
				default:
					t.Error("a peer that did not start is still running")
				}
			}
		})
	}
}
