package sipbridge

import (
	"encoding/json"

	"github.com/callctx/callctx/session"
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
func ContextHeadersForTest(vars map[string]json.RawMessage, c session.TransferContext) ([]Header, error) {
	return contextHeaders(vars, c)
}

// ReasonCodeForTest is reasonCode.
func ReasonCodeForTest(code int) string { return reasonCode(code) }

// ParkSDPForTest is parkSDP.
func ParkSDPForTest(offer []byte) string { return string(parkSDP(offer, "127.0.0.1", 7)) }

// SDPOriginForTest is sdpOrigin.
func SDPOriginForTest(body []byte) string { return sdpOrigin(body) }
