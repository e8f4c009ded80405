package sipbridge

import (
	"sync"

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
	// busy, declined, error).
	Transfer(method, outcome string)
}

type nopObserver struct{}

func (nopObserver) SIPRequest(bool, string, int) {}
func (nopObserver) Transfer(string, string)      {}

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
