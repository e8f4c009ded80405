// Command sipuas is the baseline of the SIP benchmark: the barest sipgo user agent server that
// does what callctx's bridge does, without sessions. In answer mode it answers INVITE with
// 200 OK (the SDP a parked call gets: no media), takes the ACK and answers BYE with 200; in
// redirect mode it answers INVITE with 302 and a Contact. OPTIONS get 200 in both. `make
// bench-sip` runs sipp against it and against callctx in the same run.
//
// Usage: sipuas -listen 127.0.0.1:0 -mode answer|redirect   (prints "listening udp <addr>")
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "UDP address to listen on")
	mode := flag.String("mode", "answer", "answer (200, ACK, BYE) or redirect (302)")
	flag.Parse()
	if *mode != "answer" && *mode != "redirect" {
		fmt.Fprintln(os.Stderr, "sipuas: -mode must be answer or redirect")
		os.Exit(2)
	}
	if err := run(*listen, *mode); err != nil {
		fmt.Fprintln(os.Stderr, "sipuas:", err)
		os.Exit(1)
	}
}

func run(listen, mode string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sip.SetDefaultLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))

	conn, err := net.ListenPacket("udp", listen)
	if err != nil {
		return err
	}
	addr := conn.LocalAddr().(*net.UDPAddr)

	ua, err := sipgo.NewUA(sipgo.WithUserAgent("sipuas"))
	if err != nil {
		return err
	}
	defer ua.Close()
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		return err
	}
	client, err := sipgo.NewClient(ua)
	if err != nil {
		return err
	}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "sipuas", Host: addr.IP.String(), Port: addr.Port}}
	dialogs := sipgo.NewDialogServerCache(client, contact)
	sdp := []byte("v=0\r\no=sipuas 1 1 IN IP4 " + addr.IP.String() + "\r\ns=-\r\nc=IN IP4 " + addr.IP.String() +
		"\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=inactive\r\n")

	target := sip.Uri{Scheme: "sip", User: "agent", Host: "192.0.2.10", Port: 5060}
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		if mode == "redirect" {
			res := sip.NewResponseFromRequest(req, 302, "Moved Temporarily", nil)
			res.AppendHeader(&sip.ContactHeader{Address: target})
			_ = tx.Respond(res)
			return
		}
		dlg, err := dialogs.ReadInvite(req, tx)
		if err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
			return
		}
		defer dlg.Close()
		if err := dlg.RespondSDP(sdp); err != nil {
			return
		}
		// The server transaction ends when this handler returns: wait for the dialog.
		<-dlg.Context().Done()
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = dialogs.ReadAck(req, tx) })
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := dialogs.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		}
	})
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})

	fmt.Println("listening udp " + net.JoinHostPort(addr.IP.String(), strconv.Itoa(addr.Port)))
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	err = srv.ServeUDP(conn)
	if ctx.Err() != nil {
		return nil
	}
	return err
}
