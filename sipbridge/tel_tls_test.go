package sipbridge_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"github.com/callctx/callctx/internal/sipptest"
	"github.com/callctx/callctx/internal/testenv"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge"
)

func TestBridge_TelTargets(t *testing.T) {
	e := startBridge(t, sipbridge.Config{SBC: "sbc.example:5099", Carry: session.TransferContext{Variables: []string{"sip.x-customer-id"}}})
	uac := sipptest.Start(t, "uac_refer_tel.xml", e.bridge.Addr(), 0)
	call := e.activeCall(t)
	transferWhenAnswered(t, e, call.ID, session.TransferRequest{Target: "tel:+1(407)751-1320", HangupAfter: ms(0)})
	testenv.WaitFor(t, "the first transfer to fail", func() bool { return e.vars(t, call.ID)["sip.transfer.status"] == "failed" })
	if got, want := e.vars(t, call.ID)["sip.transfer.reasonCode"], "declined"; got != want {
		t.Errorf("reasonCode=%v, want %v", got, want)
	}
	if _, err := e.bridge.Transfer(context.Background(), call.ID, session.TransferRequest{Target: "tel:+1-407-751-1320", PreserveTelURI: true, HangupAfter: ms(0)}); err != nil {
		t.Fatal(err)
	}
	uac.Wait(t)
	if got, want := e.endedCall(t, call.ID).EndReason, sipbridge.EndTransferred; got != want {
		t.Errorf("EndReason=%q, want %q", got, want)
	}
}

// selfSigned returns a TLS certificate for 127.0.0.1.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "callctx test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestBridge_TLS(t *testing.T) {
	cert := selfSigned(t)
	e := startBridge(t, sipbridge.Config{TLSListen: "127.0.0.1:0", TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	if e.bridge.TLSAddr() == "" {
		t.Fatal("no TLS address")
	}
	pool := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	pool.AddCert(leaf)
	conn, err := tls.Dial("tcp", e.bridge.TLSAddr(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	msg := "OPTIONS sip:callctx@" + e.bridge.TLSAddr() + ";transport=tls SIP/2.0\r\n" +
		"Via: SIP/2.0/TLS " + local + ";branch=z9hG4bK-tls-1\r\n" +
		"From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:callctx@127.0.0.1>\r\nCall-ID: tls-1@127.0.0.1\r\n" +
		"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(line), "SIP/2.0 200 OK"; got != want {
		t.Fatalf("status line %q, want %q", got, want)
	}
}
