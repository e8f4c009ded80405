package sipbridge

import (
	"encoding/json"
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callctx/callctx/session"
	"github.com/callctx/callctx/sipbridge/sipcodec"
)

// Internals the external tests exercise directly.

// ParseSipfragForTest is parseSipfrag.
func ParseSipfragForTest(body []byte) (int, string) { return parseSipfrag(body) }

// ParseTargetForTest is parseTarget, returning the target as text.
func ParseTargetForTest(s, sbc string, preserveTel bool) (string, bool, error) {
	t, err := parseTarget(s, sbc, preserveTel)
	return t.String(), t.canCarryHeaders(), err
}

// ContextHeadersForTest is contextHeaders.
func ContextHeadersForTest(vars map[string]json.RawMessage, c session.TransferContext) ([]sipcodec.Header, error) {
	hs, errs := contextHeaders(vars, c)
	if len(errs) > 0 {
		return nil, errs
	}
	return hs, nil
}

// ReasonCodeForTest is reasonCode.
func ReasonCodeForTest(code int) string { return reasonCode(code) }

// ReusableForTest is reusable.
func ReusableForTest(req *sip.Request) bool { return reusable(req) }

// FlowTransferTarget is where a transfer of a call of flowName goes that names no target.
func (b *Bridge) FlowTransferTarget(flowName string) string { return b.flowTransferTarget(flowName) }

// ParseReferToForTest is splitReferTo and referHeaders.
func ParseReferToForTest(v string) (string, []sipcodec.Header, []string, error) {
	uri, query, err := splitReferTo(v)
	if err != nil {
		return "", nil, nil, err
	}
	hs, skipped := referHeaders(query)
	return uri, hs, skipped, nil
}

// AuthCheckForTest checks an INVITE to ruri from src carrying the Proxy-Authorization value
// cred, against cfg; it reports whether the credentials were accepted.
func AuthCheckForTest(cfg AuthConfig, ruri, src, cred string) (bool, error) {
	a, err := newAuthenticator(cfg)
	if err != nil {
		return false, err
	}
	var u sip.Uri
	if err := sip.ParseUri(ruri, &u); err != nil {
		return false, err
	}
	req := sip.NewRequest(sip.INVITE, u)
	req.AppendHeader(sip.NewHeader("Proxy-Authorization", cred))
	req.SetSource(src)
	_, res := a.check(req, netip.MustParseAddrPort(src).Addr())
	return res == authOK, nil
}

// SetLateAfterForTest sets how long a new call may take to be answered before new calls are
// refused (DefaultLateAfter), and how long the time the last answer took counts.
func (b *Bridge) SetLateAfterForTest(d, fresh time.Duration) {
	b.queue.lateAfter.Store(int64(d))
	b.queue.fresh.Store(int64(fresh))
}
