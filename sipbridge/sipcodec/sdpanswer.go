package sipcodec

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"strconv"
	"strings"
)

// Answering an offer (RFC 3264 §6). callctx sends no media on a call it parks and
// discards what it is sent: it accepts the first audio stream it can answer, with one codec
// (the offerer's first) and the offer's telephone-event of the same clock rate, on the
// discard port (9), in the direction §6.1 gives a party that never sends: recvonly to a
// sendrecv or sendonly (hold) offer, inactive to a recvonly or inactive one. (Answering
// inactive to everything would be valid too, but phones then show the call as put on hold
// by callctx.) Every other stream is rejected with port 0. Payload numbers, rtpmap and fmtp
// of the chosen formats are the offer's.

// AnswerSDP answers offer for a call callctx parks, from host (an IP address or a name;
// IP6 when it holds a colon). prev is callctx's previous answer or offer in the dialog, nil
// for the first: it keeps the origin's session ID and version, and (RFC 3264 §8) the
// version goes up by one only when the description changes. sessID is the session ID of a
// first answer. A parse error of the offer is returned as such: answer it with 488.
func AnswerSDP(offer, prev []byte, host string, sessID int64) ([]byte, error) {
	o, err := ParseSDP(offer)
	if err != nil {
		return nil, err
	}
	var before *SDP
	if prev != nil {
		before, _ = ParseSDP(prev)
	}
	var media bytes.Buffer
	accepted := false
	for i, m := range o.Media {
		var keep *Media
		if before != nil && i < len(before.Media) {
			keep = &before.Media[i]
		}
		if !accepted && m.Port != 0 && answerStream(&media, m, keep) {
			accepted = true
			continue
		}
		// Rejected (RFC 3264 §6): port 0, the offer's media and proto, one of its formats.
		media.WriteString("m=" + m.Type + " 0 " + m.Proto + " " + m.Formats[0] + "\r\n")
	}
	return withSession(media.Bytes(), prev, host, sessID), nil
}

// OfferSDP is callctx's offer for a call it parks whose INVITE had none: one audio stream
// (PCMU) that callctx only receives.
func OfferSDP(host string, sessID int64) []byte {
	return withSession([]byte("m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=recvonly\r\n"), nil, host, sessID)
}

// withSession puts the session lines before media: the origin of prev when its media are
// the same, else prev's with the version one up, else a new one.
func withSession(media, prev []byte, host string, sessID int64) []byte {
	id, version := strconv.FormatInt(sessID, 10), sessID
	if prev != nil {
		if o := strings.Fields(strings.TrimPrefix(SDPOrigin(prev), "o=")); len(o) == 6 {
			if v, err := strconv.ParseInt(o[2], 10, 64); err == nil {
				id, version = o[1], v
				if !bytes.Equal(mediaPart(prev), media) {
					version++
				}
			}
		}
	}
	ipType := "IP4"
	if strings.Contains(host, ":") {
		ipType = "IP6"
	}
	var b bytes.Buffer
	b.WriteString("v=0\r\no=callctx " + id + " " + strconv.FormatInt(version, 10) + " IN " + ipType + " " + host + "\r\n")
	b.WriteString("s=callctx\r\nc=IN " + ipType + " " + host + "\r\nt=0 0\r\n")
	b.Write(media)
	return b.Bytes()
}

// mediaPart returns the media descriptions of an SDP body callctx wrote.
func mediaPart(sdp []byte) []byte {
	if i := bytes.Index(sdp, []byte("\r\nm=")); i >= 0 {
		return sdp[i+2:]
	}
	return nil
}

// answerStream writes the answer accepting m, if callctx can: an audio stream of RTP with
// a codec, and for SRTP an SDES crypto suite it can key (DTLS-SRTP it cannot). prev is
// callctx's previous answer for the same stream, whose SRTP key a re-answer keeps.
func answerStream(w *bytes.Buffer, m Media, prev *Media) bool {
	if m.Type != "audio" {
		return false
	}
	secure := false
	switch m.Proto {
	case "RTP/AVP", "RTP/AVPF":
	case "RTP/SAVP", "RTP/SAVPF":
		secure = true
	default:
		return false // UDP/TLS/RTP/SAVPF (DTLS-SRTP), udptl (T.38), …
	}
	codec := ""
	for _, f := range m.Formats {
		if name, _ := encoding(m, f); name != "" && !ancillary[strings.ToLower(name)] {
			codec = f
			break
		}
	}
	if codec == "" {
		return false
	}
	crypto := ""
	if secure {
		if m.Fingerprint {
			return false
		}
		if crypto = answerCrypto(m.Crypto, prev); crypto == "" {
			return false
		}
	}
	formats := []string{codec}
	_, rate := encoding(m, codec)
	for _, f := range m.Formats {
		if name, r := encoding(m, f); strings.EqualFold(name, "telephone-event") && r == rate {
			formats = append(formats, f)
			break
		}
	}
	w.WriteString("m=audio 9 " + m.Proto + " " + strings.Join(formats, " ") + "\r\n")
	for _, f := range formats {
		if rtpmap, ok := m.Rtpmap[f]; ok {
			w.WriteString("a=rtpmap:" + f + " " + rtpmap + "\r\n")
		}
		for _, p := range m.Fmtp[f] {
			w.WriteString("a=fmtp:" + f + " " + p + "\r\n")
		}
	}
	if crypto != "" {
		w.WriteString("a=crypto:" + crypto + "\r\n")
	}
	w.WriteString("a=" + answerDirection[m.Direction] + "\r\n")
	return true
}

// answerDirection is the direction of callctx's answer to a stream offered in each
// direction (RFC 3264 §6.1), callctx never sending.
var answerDirection = map[string]string{"sendrecv": "recvonly", "sendonly": "recvonly", "recvonly": "inactive", "inactive": "inactive"}

// ancillary names the payload formats that carry no voice of their own: DTMF (RFC 4733),
// comfort noise, redundancy and FEC, T.38 inside an audio stream.
var ancillary = map[string]bool{"telephone-event": true, "telephone-events": true, "cn": true, "red": true, "ulpfec": true, "t38": true}

// staticRates holds the static audio payload types of RFC 3551 §6, by number: the encoding
// a format without a=rtpmap has.
var staticRates = map[string]struct {
	name string
	rate int
}{
	"0": {"PCMU", 8000}, "3": {"GSM", 8000}, "4": {"G723", 8000}, "5": {"DVI4", 8000},
	"6": {"DVI4", 16000}, "7": {"LPC", 8000}, "8": {"PCMA", 8000}, "9": {"G722", 8000},
	"10": {"L16", 44100}, "11": {"L16", 44100}, "12": {"QCELP", 8000}, "13": {"CN", 8000},
	"14": {"MPA", 90000}, "15": {"G728", 8000}, "16": {"DVI4", 11025}, "17": {"DVI4", 22050},
	"18": {"G729", 8000},
}

// encoding returns the encoding name and clock rate of format f of m: its a=rtpmap, else
// the static payload type's; "" when it has neither (a dynamic type without a=rtpmap is not
// usable).
func encoding(m Media, f string) (string, int) {
	if rtpmap, ok := m.Rtpmap[f]; ok {
		name, rest, _ := strings.Cut(rtpmap, "/")
		rateText, _, _ := strings.Cut(rest, "/")
		rate, err := strconv.Atoi(rateText)
		if err != nil || name == "" {
			return "", 0
		}
		return name, rate
	}
	if s, ok := staticRates[f]; ok {
		return s.name, s.rate
	}
	return "", 0
}

// cryptoKeyBytes is the master key and salt length of each SDES suite callctx answers
// (RFC 4568 §6.2, RFC 6188, RFC 7714).
var cryptoKeyBytes = map[string]int{
	"AES_CM_128_HMAC_SHA1_80": 30, "AES_CM_128_HMAC_SHA1_32": 30,
	"AES_256_CM_HMAC_SHA1_80": 46, "AES_256_CM_HMAC_SHA1_32": 46,
	"AEAD_AES_128_GCM": 28, "AEAD_AES_256_GCM": 44,
}

// answerCrypto picks the first offered SDES crypto attribute whose suite callctx knows and
// returns the answer's: the offer's tag and suite with a key of callctx's, the one of prev
// when prev answered the same suite. "" when no suite fits.
func answerCrypto(offered []string, prev *Media) string {
	for _, c := range offered {
		f := strings.Fields(c)
		if len(f) < 3 {
			continue
		}
		n, ok := cryptoKeyBytes[f[1]]
		if !ok {
			continue
		}
		if prev != nil {
			for _, p := range prev.Crypto {
				if pf := strings.Fields(p); len(pf) >= 3 && pf[1] == f[1] {
					return f[0] + " " + f[1] + " " + pf[2]
				}
			}
		}
		key := make([]byte, n)
		_, _ = rand.Read(key) // never fails (crypto/rand)
		return f[0] + " " + f[1] + " inline:" + base64.StdEncoding.EncodeToString(key)
	}
	return ""
}
