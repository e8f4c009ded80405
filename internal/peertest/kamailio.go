package peertest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callctx/callctx/internal/testenv"
)

// KamailioOptions configure Kamailio as the SBC in front of callctx.
type KamailioOptions struct {
	// Callctx is the host:port of callctx's SIP listener: a new call whose Request-URI is
	// Kamailio itself goes there.
	Callctx string
	// Transport is the transport towards callctx ("udp", "tcp" or "tls"; "tcp" when "").
	Transport string
	// CertFile and KeyFile are Kamailio's TLS certificate and key (see Cert), needed for
	// Transport "tls": Kamailio then also listens for TLS on Port+1. It does not verify
	// callctx's certificate.
	CertFile, KeyFile string
	// Headers are added to every new call sent to callctx, as an SBC adds them
	// ("X-Customer-ID: 48213"). Each must be one header line without its CRLF.
	Headers []string
}

// Kamailio is a running Kamailio 5.6 proxy on loopback, UDP and TCP on one port: it
// record-routes every dialog (so callctx's in-dialog requests come back through it), adds
// the SBC's headers to new calls for callctx and sends them there, and relays every other
// request by its Request-URI (a transferee that uses it as outbound proxy places the new
// call through it).
type Kamailio struct {
	*process
	Port int
}

// StartKamailio starts Kamailio with o and waits until it listens.
func StartKamailio(tb testing.TB, o KamailioOptions) *Kamailio {
	tb.Helper()
	path := lookPath(tb, "kamailio")
	if o.Transport == "" {
		o.Transport = "tcp"
	}
	for _, h := range o.Headers {
		if strings.ContainsAny(h, "\r\n\"") {
			tb.Fatalf("kamailio header %q: one line, no quotes", h)
		}
	}
	k := &Kamailio{}
	dir := tb.TempDir()
	for try := 1; ; try++ {
		k.Port = freePorts(tb, 2) // SIP, and TLS on the next
		cfgPath := writeKamailioConfig(tb, dir, k.Port, o)
		// -DD: stay in the foreground; -E: log to stderr; -Y, -P: run-time files here, not in
		// /run; small shared and private memory.
		k.process = start(tb, "kamailio", path, dir, nil, "-f", cfgPath, "-DD", "-E", "-m", "32", "-M", "4",
			"-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"), "-w", dir)
		k.run(tb)
		listening := func() bool {
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", k.Port))
			if err == nil {
				c.Close()
			}
			return err == nil
		}
		if k.startedWhen(tb, listening, try) {
			return k
		}
	}
}

// writeKamailioConfig writes kamailio.cfg for o, listening on port (and TLS on port+1),
// into dir and returns its path.
func writeKamailioConfig(tb testing.TB, dir string, port int, o KamailioOptions) string {
	tb.Helper()
	tls := ""
	if o.Transport == "tls" {
		tls = kamailioTLS(tb, dir, port+1, o.CertFile, o.KeyFile)
	}
	var add strings.Builder
	for _, h := range o.Headers {
		fmt.Fprintf(&add, "\t\tappend_hf(\"%s\\r\\n\");\n", h)
	}
	cfg := fmt.Sprintf(`#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
auto_aliases=no
listen=udp:127.0.0.1:%[1]d
listen=tcp:127.0.0.1:%[1]d
%[5]s
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"

modparam("rr", "append_fromtag", 1)

request_route {
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}
	if (has_totag()) {
		if (loose_route()) {
			xlog("L_INFO", "in-dialog $rm to $ru via $du from $si:$sp/$pr\n");
			t_relay();
			exit;
		}
		if (is_method("ACK") && t_check_trans()) {
			t_relay();
		}
		exit;
	}
	if (is_method("CANCEL")) {
		if (t_check_trans()) {
			t_relay();
		}
		exit;
	}
	t_check_trans();
	if (is_method("INVITE|SUBSCRIBE")) {
		record_route();
	}
	if ($rd == "127.0.0.1" && $rp == %[1]d) {
		# A call for the SBC itself: the contact centre, behind it.
%[2]s		$du = "sip:%[3]s;transport=%[4]s";
	}
	xlog("L_INFO", "new $rm to $ru via $du from $si:$sp/$pr\n");
	t_relay();
}
`, port, add.String(), o.Callctx, o.Transport, tls)
	cfgPath := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		tb.Fatal(err)
	}
	return cfgPath
}

// kamailioTLS writes the TLS module's configuration into dir and returns the lines of
// kamailio.cfg that listen for TLS on port and load the module. Without the module (Debian's
// kamailio-tls-modules) the test ends as testenv.Missing says.
func kamailioTLS(tb testing.TB, dir string, port int, certFile, keyFile string) string {
	tb.Helper()
	if certFile == "" || keyFile == "" {
		tb.Fatal("kamailio over TLS needs CertFile and KeyFile")
	}
	if mods, _ := filepath.Glob("/usr/lib/*/kamailio/modules/tls.so"); len(mods) == 0 {
		testenv.Missing(tb, "kamailio's TLS module (Debian package kamailio-tls-modules)")
	}
	tlsCfg := fmt.Sprintf(`[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
certificate = %[1]s
private_key = %[2]s

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
certificate = %[1]s
private_key = %[2]s
`, certFile, keyFile)
	path := filepath.Join(dir, "tls.cfg")
	if err := os.WriteFile(path, []byte(tlsCfg), 0o644); err != nil {
		tb.Fatal(err)
	}
	return fmt.Sprintf("enable_tls=yes\nlisten=tls:127.0.0.1:%d\nloadmodule \"tls.so\"\nmodparam(\"tls\", \"config\", \"%s\")\n", port, path)
}

// URI returns a SIP URI of user at the SBC: a call to it goes to callctx.
func (k *Kamailio) URI(user string) string { return fmt.Sprintf("sip:%s@127.0.0.1:%d", user, k.Port) }

// Proxy returns the SBC as an outbound proxy URI for transport ("udp", "tcp").
func (k *Kamailio) Proxy(transport string) string {
	return fmt.Sprintf("sip:127.0.0.1:%d;transport=%s", k.Port, transport)
}
