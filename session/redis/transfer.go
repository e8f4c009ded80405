package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/callctx/callctx/session"
)

var _ session.Transferer = (*forwarder)(nil)

// A SIP dialog lives in the memory of the node that answered it, so only
// that node can transfer the call. Transferer hands a transfer of a call
// this node holds to its own SIP bridge, and asks the node that holds any
// other call to run it (Ask); ServeTransfers runs what other nodes ask.

const (
	transferKind = "transfer"
	// transferWait bounds how long a forwarded transfer may take to start:
	// the bridge answers once the REFER or INVITE is on its way.
	transferWait = 15 * time.Second
)

// transferAsk is a transfer forwarded to the node that holds the call.
type transferAsk struct {
	CallID  string                  `json:"callId"`
	Request session.TransferRequest `json:"request"`
}

// Transferer returns the transferer of this node: local (this node's SIP
// bridge, nil when it runs none) for the calls this node holds, the node
// that holds the call for any other. When that node is gone, its SIP
// dialogs went with it: CodeConflict, saying so. When it does not answer
// in time: CodeUnavailable.
func (s *Store) Transferer(local session.Transferer) session.Transferer {
	return &forwarder{s: s, local: local}
}

// ServeTransfers runs the transfers other nodes forward to this one with
// local (nil when this node runs no SIP bridge) until ctx ends. Every node
// serves, so that a forwarded transfer is answered, never left to time out.
func (s *Store) ServeTransfers(ctx context.Context, local session.Transferer) error {
	f := &forwarder{s: s, local: local}
	return s.Answer(ctx, func(ctx context.Context, kind string, payload []byte) ([]byte, error) {
		if kind != transferKind {
			return nil, fmt.Errorf("unknown request %q", kind)
		}
		var a transferAsk
		if err := json.Unmarshal(payload, &a); err != nil {
			return nil, fmt.Errorf("decode forwarded transfer: %w", err)
		}
		t, err := f.here(ctx, a.CallID, a.Request)
		if err != nil {
			return nil, err
		}
		return json.Marshal(t)
	})
}

type forwarder struct {
	s     *Store
	local session.Transferer
}

// Transfer implements session.Transferer.
func (f *forwarder) Transfer(ctx context.Context, callID string, req session.TransferRequest) (*session.Transfer, error) {
	node, alive, err := f.s.CallNode(ctx, callID)
	if err != nil {
		return nil, err
	}
	if node == "" || node == f.s.node {
		return f.here(ctx, callID, req)
	}
	if !alive {
		if c, err := f.s.Call(ctx, callID); err == nil && c.SIPCallID == "" {
			return nil, session.Errorf(session.CodeConflict, "the call %s did not come in over SIP: there is no dialog to transfer it in", callID)
		}
		return nil, session.Errorf(session.CodeConflict, "the call %s is held by callctx node %s, which is gone: its SIP dialog went with it, so the call cannot be transferred", callID, node)
	}
	payload, err := json.Marshal(transferAsk{CallID: callID, Request: req})
	if err != nil {
		return nil, session.Internal(fmt.Errorf("encode transfer: %w", err))
	}
	out, err := f.s.Ask(ctx, node, transferKind, payload, transferWait)
	if err != nil {
		return nil, err
	}
	t := new(session.Transfer)
	if err := json.Unmarshal(out, t); err != nil {
		return nil, session.Internal(fmt.Errorf("decode the transfer node %s started: %w", node, err))
	}
	return t, nil
}

// here runs a transfer on this node.
func (f *forwarder) here(ctx context.Context, callID string, req session.TransferRequest) (*session.Transfer, error) {
	if f.local == nil {
		return nil, session.Errorf(session.CodeConflict, "the call %s is not held by a SIP bridge: the callctx node that created it runs none", callID)
	}
	return f.local.Transfer(ctx, callID, req)
}
