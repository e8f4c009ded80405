package peertest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callctx/callctx/internal/testenv"
)

// BaresipOptions configure a baresip user agent.
type BaresipOptions struct {
	// User is the account's user ("caller" when ""): baresip answers a call only when the
	// Request-URI names it.
	User string
	// Codecs is the account's audio_codecs, in order ("opus/48000/2,PCMU/8000"); every codec
	// loaded (PCMU, PCMA, Opus) when "".
	Codecs string
	// AutoAnswer answers every call at once; without it an incoming call rings until
	// Answer or Hangup.
	AutoAnswer bool
	// Outbound is the account's outbound proxy ("sip:127.0.0.1:5070;transport=udp"): every
	// request goes through it, the transfer's new call too.
	Outbound string
}

// Baresip is a running baresip 1.0, headless: no audio device (no source or player module,
// so media streams carry nothing), driven through its ctrl_tcp module (netstring JSON
// commands and events), with SIP tracing on stdout (Output).
//
// Known quirks of Debian's baresip 1.0.0, which callctx does not work around (see
// docs/interop.md): as a transferee it formats the Refer-To URI with printf, so a %XX
// escape in it is taken as a conversion ("%25 f" becomes "%            0.000000"), and it
// keeps the Refer-To URI's headers in the new call's Request-URI and To instead of making
// them headers of the INVITE.
type Baresip struct {
	*process
	User string
	Port int // SIP, UDP and TCP

	ctrl   net.Conn
	mu     sync.Mutex
	events []Event
	tokens int
	resp   map[string]chan ctrlResponse
}

// Event is one event baresip reported on its control connection.
type Event struct {
	Type      string `json:"type"` // CALL_INCOMING, CALL_RINGING, CALL_ESTABLISHED, CALL_CLOSED, CALL_TRANSFER, …
	Class     string `json:"class"`
	Direction string `json:"direction"`
	PeerURI   string `json:"peeruri"`
	ID        string `json:"id"`
	Param     string `json:"param"`
}

type ctrlResponse struct {
	OK   bool
	Data string
}

// StartBaresip starts baresip with o on free loopback ports and waits until it takes
// commands.
func StartBaresip(tb testing.TB, o BaresipOptions) *Baresip {
	tb.Helper()
	path := lookPath(tb, "baresip")
	if o.User == "" {
		o.User = "caller"
	}
	var b *Baresip
	var ctrlPort int
	for try := 1; ; try++ {
		b = &Baresip{User: o.User, Port: freePorts(tb, 2), resp: map[string]chan ctrlResponse{}} // SIP, and TLS on the next
		ctrlPort = FreePort(tb)
		b.process = startBaresip(tb, path, o, b.Port, ctrlPort)
		if b.started(tb, "baresip is ready.", try) {
			break
		}
	}
	var err error
	testenv.WaitFor(tb, "baresip's control port", func() bool {
		b.ctrl, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ctrlPort))
		return err == nil
	})
	tb.Cleanup(func() { b.ctrl.Close() })
	go b.read()
	return b
}

// startBaresip writes baresip's configuration for o, SIP on port (TLS on port+1) and its
// control connection on ctrlPort, into a new directory and starts it there.
func startBaresip(tb testing.TB, path string, o BaresipOptions, port, ctrlPort int) *process {
	tb.Helper()
	conf := tb.TempDir()
	config := fmt.Sprintf(`poll_method epoll
sip_listen 127.0.0.1:%d
net_interface 127.0.0.1
call_local_timeout 120
call_max_calls 4
statmode_default off
module_path /usr/lib/baresip/modules
module g711.so
module opus.so
module_tmp account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:%d
`, port, ctrlPort)
	account := "<sip:" + o.User + "@127.0.0.1>;regint=0"
	if o.AutoAnswer {
		account += ";answermode=auto"
	}
	if o.Codecs != "" {
		account += ";audio_codecs=" + o.Codecs
	}
	if o.Outbound != "" {
		account += `;outbound="` + o.Outbound + `"`
	}
	for name, content := range map[string]string{"config": config, "accounts": account + "\n", "contacts": ""} {
		if err := os.WriteFile(filepath.Join(conf, name), []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	p := start(tb, "baresip "+o.User, path, conf, nil, "-f", conf, "-s")
	p.run(tb)
	return p
}

// URI returns the address that reaches this user agent.
func (b *Baresip) URI() string { return fmt.Sprintf("sip:%s@127.0.0.1:%d", b.User, b.Port) }

// read decodes the netstrings of the control connection: events and command responses.
func (b *Baresip) read() {
	r := bufio.NewReader(b.ctrl)
	for {
		lenText, err := r.ReadString(':')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(lenText, ":")))
		if err != nil || n < 0 || n > 1<<20 {
			return
		}
		msg := make([]byte, n+1) // and the trailing comma
		if _, err := io.ReadFull(r, msg); err != nil {
			return
		}
		var m struct {
			Event    bool   `json:"event"`
			Response bool   `json:"response"`
			Token    string `json:"token"`
			OK       bool   `json:"ok"`
			Data     string `json:"data"`
		}
		if json.Unmarshal(msg[:n], &m) != nil {
			continue
		}
		b.mu.Lock()
		switch {
		case m.Event:
			var e Event
			_ = json.Unmarshal(msg[:n], &e)
			b.events = append(b.events, e)
		case m.Response:
			if ch, ok := b.resp[m.Token]; ok {
				ch <- ctrlResponse{OK: m.OK, Data: m.Data}
				delete(b.resp, m.Token)
			}
		}
		b.mu.Unlock()
	}
}

// Command runs a command of baresip's menu ("dial", "hangup", "accept") and returns its
// result; an error when baresip refused it.
func (b *Baresip) Command(tb testing.TB, command, params string) string {
	tb.Helper()
	b.mu.Lock()
	b.tokens++
	token := strconv.Itoa(b.tokens)
	ch := make(chan ctrlResponse, 1)
	b.resp[token] = ch
	b.mu.Unlock()
	body, _ := json.Marshal(map[string]string{"command": command, "params": params, "token": token})
	if _, err := fmt.Fprintf(b.ctrl, "%d:%s,", len(body), body); err != nil {
		tb.Fatalf("baresip %s: %v", command, err)
	}
	select {
	case r := <-ch:
		if !r.OK {
			tb.Fatalf("baresip refused %s %s: %s", command, params, r.Data)
		}
		return r.Data
	case <-time.After(testenv.WaitTimeout):
		tb.Fatalf("baresip did not answer %s", command)
	}
	return ""
}

// Dial calls uri.
func (b *Baresip) Dial(tb testing.TB, uri string) {
	tb.Helper()
	b.Command(tb, "dial", uri)
}

// Hangup hangs up (or refuses) the current call.
func (b *Baresip) Hangup(tb testing.TB) {
	tb.Helper()
	b.Command(tb, "hangup", "")
}

// Answer answers the ringing call.
func (b *Baresip) Answer(tb testing.TB) {
	tb.Helper()
	b.Command(tb, "accept", "")
}

// WaitEvent waits for an event of type typ (after any seen before) and returns it.
func (b *Baresip) WaitEvent(tb testing.TB, typ string) Event {
	tb.Helper()
	var e Event
	testenv.WaitFor(tb, "baresip "+b.User+" event "+typ, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, ev := range b.events {
			if ev.Type == typ {
				e = ev
				return true
			}
		}
		return false
	})
	return e
}

// Events returns the events baresip reported so far.
func (b *Baresip) Events() []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Event(nil), b.events...)
}
