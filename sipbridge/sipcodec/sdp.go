package sipcodec

import (
	"bytes"
	"strconv"
	"strings"
)

// ParkSDP is the SDP of a call callctx answers and parks: signalling only, so every media
// stream of the offer is answered inactive on the discard port, with the offer's first
// format (RFC 3264 §6 needs at least one). Without an offer it offers one inactive audio
// stream (PCMU). sessID must stay the same for a dialog.
func ParkSDP(offer []byte, host string, sessID int64) []byte {
	ipType := "IP4"
	if strings.Contains(host, ":") {
		ipType = "IP6"
	}
	id := strconv.FormatInt(sessID, 10)
	var b bytes.Buffer
	b.WriteString("v=0\r\no=callctx " + id + " " + id + " IN " + ipType + " " + host + "\r\ns=callctx\r\nc=IN " + ipType + " " + host + "\r\nt=0 0\r\n")
	n := 0
	for _, line := range strings.Split(string(offer), "\n") {
		line = strings.TrimRight(line, "\r")
		rest, ok := strings.CutPrefix(line, "m=")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 4 {
			continue
		}
		// media port proto fmt…: keep media, proto and the first format; a stream the offer
		// rejected (port 0) stays rejected.
		port := "9"
		if f[1] == "0" {
			port = "0"
		}
		b.WriteString("m=" + f[0] + " " + port + " " + f[2] + " " + f[3] + "\r\na=inactive\r\n")
		n++
	}
	if n == 0 {
		b.WriteString("m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=inactive\r\n")
	}
	return b.Bytes()
}

// SDPOrigin returns an SDP body's origin line (o=) without its line ending, "" when it has
// none. RFC 3264 §8: an offer whose origin (and so session version) is the previous one's
// changes nothing, which is what a session refresh sends.
func SDPOrigin(body []byte) string {
	for _, line := range strings.Split(string(body), "\n") {
		if line = strings.TrimRight(line, "\r"); strings.HasPrefix(line, "o=") {
			return line
		}
	}
	return ""
}
