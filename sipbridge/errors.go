package sipbridge

import "github.com/callctx/callctx/session"

// sipStatuses maps each session error code to the SIP response the bridge sends when a
// request fails with it: the SIP twin of the API's HTTP table.
var sipStatuses = map[session.Code]struct {
	code   int
	reason string
}{
	session.CodeInvalid:            {400, "Bad Request"},
	session.CodeNotFound:           {404, "Not Found"},
	session.CodeConflict:           {500, "Server Internal Error"}, // SIP has no 409; a new call cannot conflict
	session.CodePreconditionFailed: {412, "Conditional Request Failed"},
	session.CodeForbidden:          {403, "Forbidden"},
	session.CodeTooLarge:           {413, "Request Entity Too Large"},
	session.CodeUnavailable:        {503, "Service Unavailable"},
	session.CodeStorageFull:        {503, "Service Unavailable (the session store is full)"},
	session.CodeInternal:           {500, "Server Internal Error"},
}

// sipStatus returns the SIP status and reason phrase for err.
func sipStatus(err error) (int, string) {
	if s, ok := sipStatuses[session.ErrorCode(err)]; ok {
		return s.code, s.reason
	}
	return 500, "Server Internal Error"
}

// retryAfterStore is the Retry-After (seconds) of a 503 sent because the session store took
// no write: an SBC with another node to try fails over rather than waiting.
const retryAfterStore = "5"
