package peertest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callctx/callctx/internal/testenv"
)

// LinphoneOptions configure a linphonec user agent.
type LinphoneOptions struct {
	// User is the user of its identity ("linphone" when "").
	User string
	// PCMUOnly disables every codec but PCMU; by default linphonec offers its own list, Opus
	// first.
	PCMUOnly bool
	// AutoAnswer answers every call at once (linphonec -a).
	AutoAnswer bool
}

// Linphone is a running linphonec (liblinphone 5.1), headless: no sound card ("soundcard
// use files"), media on 127.0.0.1, driven through its standard input, one command a line,
// as a person at its prompt would. Its standard output tells call states ("Call 1 with … connected.");
// its debug log, with every SIP message, is in Log.
type Linphone struct {
	*process
	User  string
	Port  int // SIP, UDP and TCP
	stdin io.WriteCloser
}

// StartLinphone starts linphonec with o on free loopback ports and waits until it takes
// commands.
func StartLinphone(tb testing.TB, o LinphoneOptions) *Linphone {
	tb.Helper()
	path := lookPath(tb, "linphonec")
	if o.User == "" {
		o.User = "linphone"
	}
	home := tb.TempDir()
	// Its database and certificates live under $HOME; it runs without them, but quieter
	// with the directory there.
	if err := os.MkdirAll(filepath.Join(home, ".local", "share", "linphone"), 0o755); err != nil {
		tb.Fatal(err)
	}
	l := &Linphone{User: o.User}
	for try := 1; ; try++ {
		l.Port = FreePort(tb)
		l.process, l.stdin = startLinphone(tb, path, home, o, l.Port, filepath.Join(home, fmt.Sprintf("linphone-%d.log", try)))
		if l.started(tb, "linphonec> ", try) {
			break
		}
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("linphonec %s debug log, its errors and warnings, then its end:\n%s", o.User, linphoneDiagnostics(l.Log()))
		}
	})
	l.Send(tb, "soundcard use files")
	l.waitOutput(tb, "to give up the sound card", "Using wav files instead of soundcard.")
	return l
}

// linphoneDiagnostics returns what of a linphonec debug log tells why a test failed: its
// errors and warnings (a port it could not bind, a call it could not place), then its last
// lines, where the SIP messages are; its start is mostly codecs and plugins loaded.
func linphoneDiagnostics(log string) string {
	var b strings.Builder
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "-error-") || strings.Contains(line, "-warning-") {
			b.WriteString(tail(line, 500) + "\n")
		}
	}
	return tail(b.String(), 10000) + "…\n" + tail(log, 20000)
}

// startLinphone runs linphonec as o's user, on SIP port port (UDP and TCP), its debug log in
// logPath, and returns it with its standard input.
func startLinphone(tb testing.TB, path, home string, o LinphoneOptions, port int, logPath string) (*process, io.WriteCloser) {
	tb.Helper()
	// auto_net_state_mon=0: without it liblinphone waits for a network it deems up (a
	// default route) before it listens. [rtp] bind_address puts media, and the SDP, on
	// loopback; by default it takes the address of the default route. audio_rtp_port=-1:
	// oRTP picks a free port itself when a call starts, seconds after a port probed here
	// could have been taken.
	rc := fmt.Sprintf(`[sip]
auto_net_state_mon=0
sip_port=%d
sip_tcp_port=%d
sip_tls_port=0
bind_address=127.0.0.1
contact=sip:%s@127.0.0.1
guess_hostname=0
inc_timeout=60
[rtp]
audio_rtp_port=-1
bind_address=127.0.0.1
[sound]
echocancellation=0
[video]
capture=0
display=0
`, port, port, o.User)
	if o.PCMUOnly {
		for i, c := range []string{"PCMU/8000/1/1", "opus/48000/2/0", "speex/16000/1/0", "speex/8000/1/0", "PCMA/8000/1/0", "G729/8000/1/0", "GSM/8000/1/0", "G722/8000/1/0"} {
			f := strings.Split(c, "/")
			rc += fmt.Sprintf("[audio_codec_%d]\nmime=%s\nrate=%s\nchannels=%s\nenabled=%s\n", i, f[0], f[1], f[2], f[3])
		}
	}
	rcPath := filepath.Join(home, "linphonerc")
	if err := os.WriteFile(rcPath, []byte(rc), 0o644); err != nil {
		tb.Fatal(err)
	}
	args := []string{"-c", rcPath, "-d", "6", "-l", logPath}
	if o.AutoAnswer {
		args = append(args, "-a")
	}
	p := start(tb, "linphonec "+o.User, path, home, []string{"HOME=" + home}, args...)
	p.log = logPath // belle-sip reports a port it could not bind only there
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	p.run(tb)
	return p, stdin
}

// URI returns the address that reaches this user agent.
func (l *Linphone) URI() string { return fmt.Sprintf("sip:%s@127.0.0.1:%d", l.User, l.Port) }

// Send types a command at linphonec's prompt: "call sip:…", "pause", "resume", "terminate".
func (l *Linphone) Send(tb testing.TB, command string) {
	tb.Helper()
	if _, err := io.WriteString(l.stdin, command+"\n"); err != nil {
		tb.Fatalf("linphonec %s: %v", command, err)
	}
}

// WaitOutput waits until linphonec printed want (a call state such as "connected.") n
// times in all.
func (l *Linphone) WaitOutput(tb testing.TB, want string, n int) {
	tb.Helper()
	testenv.WaitFor(tb, fmt.Sprintf("linphonec %s to print %q %d times", l.User, want, n), func() bool {
		return strings.Count(l.Output(), want) >= n
	})
}

// Log returns liblinphone's debug log so far: every SIP message it sent and received.
func (l *Linphone) Log() string { return l.readLog() }
