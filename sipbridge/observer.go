package sipbridge

import (
	"context"
	"errors"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Observer hears what the bridge does on the wire, for metrics. Package
// metrics implements it and cmd wires it in, so that sipbridge stays free
// of any metrics library. Its methods must be quick and safe for
// concurrent use.
type Observer interface {
	// SIPRequest reports a request the bridge received (inbound) or sent,
	// with the status of its final response; 0 when there was none (an
	// ACK, a timeout, an INVITE that sipgo answered 487 after a CANCEL).
	SIPRequest(inbound bool, method string, status int)
	// Transfer reports a finished transfer: its mode (refer, invite) and
	// outcome: answered, accepted, or the reason it failed (no-answer,
	// busy, declined, error, no-final-answer, call-ended, target-down).
	Transfer(method, outcome string)
	// TargetState reports the outcome of an OPTIONS probe of a watched
	// target: up or down.
	TargetState(target string, up bool)
}

type nopObserver struct{}

func (nopObserver) SIPRequest(bool, string, int) {}
func (nopObserver) Transfer(string, string)      {}
func (nopObserver) TargetState(string, bool)     {}

// observed reports every request a handler serves, with the final
// response the handler gave it. The response is seen at the transaction,
// so dialogs that answer through it (ReadInvite, ReadBye) are seen too.
func (b *Bridge) observed(h func(*sip.Request, sip.ServerTransaction)) func(*sip.Request, sip.ServerTransaction) {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		otx := &observedTx{ServerTransaction: tx, report: func(code int) {
			b.cfg.Observer.SIPRequest(true, string(req.Method), code)
		}}
		defer otx.finish()
		h(req, otx)
	}
}

// observedTx is a server transaction that reports its first final
// response, or none when its handler returned without one.
type observedTx struct {
	sip.ServerTransaction
	report func(code int)
	once   sync.Once
}

func (t *observedTx) Respond(res *sip.Response) error {
	err := t.ServerTransaction.Respond(res)
	if err == nil && res.StatusCode >= 200 {
		t.once.Do(func() { t.report(res.StatusCode) })
	}
	return err
}

func (t *observedTx) finish() { t.once.Do(func() { t.report(0) }) }

// byeSender is a dialog callctx can hang up: sipgo's server and client
// dialog sessions.
type byeSender interface {
	Bye(ctx context.Context) error
	Context() context.Context
}

// ended reports whether a dialog has ended. Not its state: sipgo's ReadAck makes a dialog
// confirmed whatever state it is in, so an ACK that the caller's BYE overtook turns an ended
// dialog back into a confirmed one; its context, cancelled when it ended, stays cancelled.
func ended(dlg interface{ Context() context.Context }) bool { return dlg.Context().Err() != nil }

// bye sends BYE on a dialog and reports it with its final response: sipgo
// returns nil for a 200 and ErrDialogResponse for any other final
// response; a timeout or transport error has none (0). A dialog that has
// ended already sends nothing, and nothing is reported.
func (b *Bridge) bye(ctx context.Context, dlg byeSender) error {
	if ended(dlg) {
		return nil
	}
	err := dlg.Bye(ctx)
	code := 0
	var res sipgo.ErrDialogResponse
	switch {
	case err == nil:
		code = 200
	case errors.As(err, &res) && res.Res != nil:
		code = res.Res.StatusCode
	}
	b.cfg.Observer.SIPRequest(false, string(sip.BYE), code)
	return err
}
