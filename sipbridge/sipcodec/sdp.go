package sipcodec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"
)

// maxMedia bounds the media descriptions (m= lines) of an SDP body callctx answers.
const maxMedia = 32

// SDP is a session description parsed as far as answering it needs (RFC 8866): its media
// descriptions.
type SDP struct {
	Media []Media
}

// Media is one media description (m= line) and the attributes of it an answer needs.
type Media struct {
	Type    string   // audio, video, image, application, …
	Port    int      // 0: the stream is rejected or disabled
	Proto   string   // RTP/AVP, RTP/SAVP, UDP/TLS/RTP/SAVPF, udptl, …
	Formats []string // in the offerer's order of preference
	// Rtpmap and Fmtp hold the a=rtpmap and a=fmtp values of each format, without the
	// format: "opus/48000/2", "useinbandfec=1". A format may have several a=fmtp lines.
	Rtpmap map[string]string
	Fmtp   map[string][]string
	// Direction is sendrecv, sendonly, recvonly or inactive, from the media description or
	// else the session; sendrecv when neither says.
	Direction   string
	Crypto      []string // a=crypto values (RFC 4568): "<tag> <suite> <key-params>…"
	Fingerprint bool     // an a=fingerprint at session or media level: DTLS-SRTP keying
}

// ParseSDP parses an SDP body. It refuses a body that is not SDP (no v= line, a line that
// is not <letter>=<value>, an m= line without port, proto and a format) and one with a NUL
// or a CR inside a line, which an answer that echoes it could not carry.
func ParseSDP(body []byte) (*SDP, error) {
	s := &SDP{}
	sessionDir, sessionFingerprint, version := "", false, false
	var m *Media
	for i, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z' {
			return nil, fmt.Errorf("sdp line %d: not <letter>=<value>", i+1)
		}
		if strings.ContainsAny(line, "\x00\r") {
			return nil, fmt.Errorf("sdp line %d: a NUL or CR inside the line", i+1)
		}
		value := line[2:]
		switch line[0] {
		case 'v':
			version = true
		case 'm':
			if len(s.Media) == maxMedia {
				return nil, fmt.Errorf("sdp: more than %d media descriptions", maxMedia)
			}
			media, err := parseMediaLine(value)
			if err != nil {
				return nil, fmt.Errorf("sdp line %d: %w", i+1, err)
			}
			s.Media = append(s.Media, media)
			m = &s.Media[len(s.Media)-1]
		case 'a':
			name, val, _ := strings.Cut(value, ":")
			switch name {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				if m == nil {
					sessionDir = name
				} else {
					m.Direction = name
				}
			case "fingerprint":
				if m == nil {
					sessionFingerprint = true
				} else {
					m.Fingerprint = true
				}
			case "rtpmap", "fmtp", "crypto":
				if m == nil {
					continue
				}
				if name == "crypto" {
					m.Crypto = append(m.Crypto, val)
					continue
				}
				format, params, _ := strings.Cut(val, " ")
				if name == "rtpmap" {
					m.Rtpmap[format] = strings.TrimSpace(params)
				} else {
					m.Fmtp[format] = append(m.Fmtp[format], strings.TrimSpace(params))
				}
			}
		}
	}
	if !version {
		return nil, errors.New("sdp: no v= line")
	}
	for i := range s.Media {
		if s.Media[i].Direction == "" {
			s.Media[i].Direction = sessionDir
		}
		if s.Media[i].Direction == "" {
			s.Media[i].Direction = "sendrecv"
		}
		s.Media[i].Fingerprint = s.Media[i].Fingerprint || sessionFingerprint
	}
	return s, nil
}

// parseMediaLine parses the value of an m= line: <media> <port>[/<count>] <proto> <fmt>…
func parseMediaLine(v string) (Media, error) {
	f := strings.Fields(v)
	if len(f) < 4 {
		return Media{}, errors.New("m= needs media, port, proto and at least one format")
	}
	portText, _, _ := strings.Cut(f[1], "/")
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return Media{}, fmt.Errorf("m= port %q", f[1])
	}
	return Media{Type: f[0], Port: port, Proto: f[2], Formats: f[3:], Rtpmap: map[string]string{}, Fmtp: map[string][]string{}}, nil
}

// SessionDescription returns the SDP of a SIP body of type contentType: the body itself
// for application/sdp, the application/sdp part of a multipart body (SBCs send SDP with ISUP
// or SIPREC metadata that way), nil when there is none.
func SessionDescription(contentType string, body []byte) []byte {
	if len(body) == 0 {
		return nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	switch {
	case err != nil:
		return nil
	case mt == "application/sdp":
		return body
	case !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "":
		return nil
	}
	r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		part, err := r.NextPart()
		if err != nil {
			return nil
		}
		if pt, _, err := mime.ParseMediaType(part.Header.Get("Content-Type")); err == nil && pt == "application/sdp" {
			sdp, err := io.ReadAll(io.LimitReader(part, int64(len(body))))
			if err != nil {
				return nil
			}
			return sdp
		}
	}
}

// SDPOrigin returns an SDP body's origin line (o=) without its line ending, "" when it has
// none. RFC 3264 §8: an offer whose origin (and so session version) is the
// previous one's changes nothing, which is what a session refresh sends.
func SDPOrigin(body []byte) string {
	for _, line := range strings.Split(string(body), "\n") {
		if line = strings.TrimRight(line, "\r"); strings.HasPrefix(line, "o=") {
			return line
		}
	}
	return ""
}
