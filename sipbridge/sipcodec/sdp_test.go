package sipcodec_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/callctx/callctx/sipbridge/sipcodec"
)

// media returns the media descriptions of an answer, after its session lines.
func media(t *testing.T, answer []byte) string {
	t.Helper()
	head := "v=0\r\no=callctx 7 7 IN IP4 127.0.0.1\r\ns=callctx\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
	if !bytes.HasPrefix(answer, []byte(head)) {
		t.Fatalf("answer does not start with the session lines:\n%s", answer)
	}
	return string(answer[len(head):])
}

func lines(s ...string) string { return strings.Join(s, "\r\n") + "\r\n" }

// TestAnswerSDP_realOffers answers the offers of real user agents and SBCs (see
// testdata/offers/README.md): the codec is the offer's first, with its own payload number,
// rtpmap and fmtp; telephone-event goes with it at the same clock rate; every other stream
// is rejected with port 0.
func TestAnswerSDP_realOffers(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"baresip-1.0.0-pcmu-first.sdp", lines("m=audio 9 RTP/AVP 0 101", "a=rtpmap:0 PCMU/8000",
			"a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=recvonly")},
		// Opus at 48 kHz and telephone-event at 8 kHz only: no DTMF format fits the codec.
		{"baresip-1.0.0-opus-first.sdp", lines("m=audio 9 RTP/AVP 96", "a=rtpmap:96 opus/48000/2",
			"a=fmtp:96 stereo=1;sprop-stereo=1", "a=recvonly")},
		// What Linphone needs to keep the call: the rtpmap of dynamic payload 96.
		{"linphonec-5.1.65-default.sdp", lines("m=audio 9 RTP/AVP 96 99", "a=rtpmap:96 opus/48000/2",
			"a=fmtp:96 useinbandfec=1", "a=rtpmap:99 telephone-event/48000", "a=recvonly")},
		{"linphonec-5.1.65-pcmu-only.sdp", lines("m=audio 9 RTP/AVP 0 96", "a=rtpmap:96 telephone-event/8000", "a=recvonly")},
		{"linphonec-5.1.65-pcmu-only-hold.sdp", lines("m=audio 9 RTP/AVP 0 96", "a=rtpmap:96 telephone-event/8000", "a=recvonly")},
		// Several fmtp lines for one format, T.38 inside the audio stream.
		{"audiocodes-mediant-g729-t38.sdp", lines("m=audio 9 RTP/AVP 18 96", "a=rtpmap:18 G729/8000",
			"a=fmtp:18 annexb=no", "a=rtpmap:96 telephone-event/8000", "a=fmtp:96 0-15", "a=recvonly")},
		{"audiocodes-siprec-two-streams.sdp", lines("m=audio 9 RTP/AVP 8 96", "a=rtpmap:8 PCMA/8000",
			"a=rtpmap:96 telephone-event/8000", "a=fmtp:96 0-15", "a=recvonly", "m=audio 0 RTP/AVP 8")},
		// RTP/AVP with SDES lines (best-effort SRTP): answered as plain RTP, without them.
		{"ms-sdpext-client-offer-audio.sdp", lines("m=audio 9 RTP/AVP 117 101", "a=rtpmap:117 G722/8000/2",
			"a=fmtp:117 bitrate=128000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=recvonly")},
		{"rfc3264-audio-two-video.sdp", lines("m=audio 9 RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=recvonly",
			"m=video 0 RTP/AVP 31", "m=video 0 RTP/AVP 32")},
		// A rejected stream stays rejected; a second audio stream (DTMF only) is rejected.
		{"rfc3264-reoffer-added-audio.sdp", lines("m=audio 9 RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=recvonly",
			"m=video 0 RTP/AVP 31", "m=video 0 RTP/AVP 32", "m=audio 0 RTP/AVP 110")},
		// DTLS-SRTP cannot be keyed without DTLS: rejected, and the call goes on without media.
		{"webrtc-dtls-srtp.sdp", lines("m=audio 0 UDP/TLS/RTP/SAVPF 111")},
	} {
		t.Run(tc.file, func(t *testing.T) {
			offer, err := os.ReadFile(filepath.Join("testdata", "offers", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			answer, err := sipcodec.AnswerSDP(offer, nil, "127.0.0.1", 7)
			if err != nil {
				t.Fatalf("AnswerSDP: %v", err)
			}
			if got := media(t, answer); got != tc.want {
				t.Errorf("answer media\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

var cryptoLine = regexp.MustCompile(`(?m)^a=crypto:(\S+) (\S+) inline:([A-Za-z0-9+/]+=*)\r$`)

// TestAnswerSDP_SRTP: an RTP/SAVP offer keyed with SDES, as Teams Direct Routing and ACS
// send, gets the first crypto suite callctx knows with a key of its own; a re-answer keeps
// the key; without a suite it knows, or keyed with DTLS, the stream is rejected.
func TestAnswerSDP_SRTP(t *testing.T) {
	offer := lines("v=0", "o=- 1 0 IN IP4 192.0.2.10", "s=session", "c=IN IP4 192.0.2.10", "b=CT:10000000", "t=0 0",
		"m=audio 52000 RTP/SAVP 104 9 0 8 101 13", "a=rtcp-mux",
		"a=crypto:1 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^31",
		"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31|1:1",
		"a=sendrecv", "a=rtpmap:104 SILK/16000", "a=fmtp:104 useinbandfec=1; usedtx=0", "a=rtpmap:9 G722/8000",
		"a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20")
	answer, err := sipcodec.AnswerSDP([]byte(offer), nil, "127.0.0.1", 7)
	if err != nil {
		t.Fatal(err)
	}
	m := cryptoLine.FindStringSubmatch(string(answer))
	if m == nil || m[1] != "2" || m[2] != "AES_CM_128_HMAC_SHA1_80" || len(m[3]) != 40 {
		t.Fatalf("answer has no fitting crypto line (tag 2, AES_CM_128_HMAC_SHA1_80, a 30-byte key):\n%s", answer)
	}
	if strings.Contains(string(answer), "WVNfX19z") {
		t.Errorf("the answer repeats the offerer's key:\n%s", answer)
	}
	if !strings.Contains(string(answer), "m=audio 9 RTP/SAVP 104\r\na=rtpmap:104 SILK/16000\r\na=fmtp:104 useinbandfec=1; usedtx=0\r\n") {
		t.Errorf("answer:\n%s", answer)
	}
	again, err := sipcodec.AnswerSDP([]byte(offer), answer, "127.0.0.1", 99)
	if err != nil || !bytes.Equal(again, answer) {
		t.Errorf("a re-answer to the same offer changed (%v):\n%s\nwas\n%s", err, again, answer)
	}

	for name, offer := range map[string]string{
		"unknown suite": lines("v=0", "c=IN IP4 192.0.2.10", "m=audio 52000 RTP/SAVP 0", "a=crypto:1 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm"),
		"no crypto":     lines("v=0", "c=IN IP4 192.0.2.10", "m=audio 52000 RTP/SAVP 0"),
		"DTLS":          lines("v=0", "a=fingerprint:sha-256 F3:A4", "m=audio 52000 RTP/SAVPF 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"),
	} {
		answer, err := sipcodec.AnswerSDP([]byte(offer), nil, "127.0.0.1", 7)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := media(t, answer); !strings.HasPrefix(got, "m=audio 0 ") {
			t.Errorf("%s: answer media %q, want the stream rejected", name, got)
		}
	}
}

// TestAnswerSDP_reinvite: re-INVITEs are answered per offer in the same session: the
// session ID stays, and the version goes up by one exactly when the answer changes (RFC 3264
// §8), so a hold and a resume that change nothing for callctx keep it.
func TestAnswerSDP_reinvite(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "offers", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first, err := sipcodec.AnswerSDP(read("linphonec-5.1.65-pcmu-only.sdp"), nil, "127.0.0.1", 7)
	if err != nil {
		t.Fatal(err)
	}
	hold, err := sipcodec.AnswerSDP(read("linphonec-5.1.65-pcmu-only-hold.sdp"), first, "127.0.0.1", 8)
	if err != nil || !bytes.Equal(hold, first) {
		t.Fatalf("hold answered %q (%v), want the first answer unchanged %q", hold, err, first)
	}
	resume, err := sipcodec.AnswerSDP(read("linphonec-5.1.65-pcmu-only-resume.sdp"), hold, "127.0.0.1", 9)
	if err != nil || !bytes.Equal(resume, first) {
		t.Fatalf("resume answered %q (%v), want the first answer unchanged", resume, err)
	}
	// Another codec, then a video stream added: each a new version.
	opus, err := sipcodec.AnswerSDP(read("linphonec-5.1.65-default.sdp"), resume, "127.0.0.1", 9)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sipcodec.SDPOrigin(opus), "o=callctx 7 8 IN IP4 127.0.0.1"; got != want {
		t.Errorf("origin after a codec change %q, want %q", got, want)
	}
	video, err := sipcodec.AnswerSDP(append(read("linphonec-5.1.65-default.sdp"), "m=video 27002 RTP/AVP 97\r\na=rtpmap:97 VP8/90000\r\n"...), opus, "127.0.0.1", 9)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sipcodec.SDPOrigin(video), "o=callctx 7 9 IN IP4 127.0.0.1"; got != want || !strings.HasSuffix(string(video), "a=recvonly\r\nm=video 0 RTP/AVP 97\r\n") {
		t.Errorf("origin %q (want %q) of the answer\n%s", got, want, video)
	}
}

func TestAnswerSDP_edges(t *testing.T) {
	for _, tc := range []struct{ name, offer, want string }{
		// A dynamic payload type without rtpmap is unusable; the static one after it is not.
		{"dynamic without rtpmap", lines("v=0", "m=audio 4000 RTP/AVP 118 8", "a=fmtp:118 x=1"), lines("m=audio 9 RTP/AVP 8", "a=recvonly")},
		{"static with fmtp only", lines("v=0", "m=audio 4000 RTP/AVP 18 101", "a=fmtp:18 annexb=yes", "a=rtpmap:101 telephone-event/8000"),
			lines("m=audio 9 RTP/AVP 18 101", "a=fmtp:18 annexb=yes", "a=rtpmap:101 telephone-event/8000", "a=recvonly")},
		{"DTMF and comfort noise only", lines("v=0", "m=audio 4000 RTP/AVP 13 101", "a=rtpmap:101 telephone-event/8000"), lines("m=audio 0 RTP/AVP 13")},
		{"T.38 image stream", lines("v=0", "m=image 4000 udptl t38", "m=audio 4002 RTP/AVP 0"), lines("m=image 0 udptl t38", "m=audio 9 RTP/AVP 0", "a=recvonly")},
		{"offer rejected the audio", lines("v=0", "m=audio 0 RTP/AVP 0", "m=audio 4000 RTP/AVP 8"), lines("m=audio 0 RTP/AVP 0", "m=audio 9 RTP/AVP 8", "a=recvonly")},
		{"session-level sendonly, LF only", "v=0\na=sendonly\nm=audio 4000 RTP/AVP 0\n", lines("m=audio 9 RTP/AVP 0", "a=recvonly")},
		{"recvonly", lines("v=0", "m=audio 4000 RTP/AVP 0", "a=recvonly"), lines("m=audio 9 RTP/AVP 0", "a=inactive")},
		{"inactive over a session-level sendrecv", lines("v=0", "a=sendrecv", "m=audio 4000 RTP/AVP 0", "a=inactive"), lines("m=audio 9 RTP/AVP 0", "a=inactive")},
		{"port count", lines("v=0", "m=audio 4000/2 RTP/AVP 0"), lines("m=audio 9 RTP/AVP 0", "a=recvonly")},
		{"no media", lines("v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer, err := sipcodec.AnswerSDP([]byte(tc.offer), nil, "127.0.0.1", 7)
			if err != nil {
				t.Fatal(err)
			}
			if got := media(t, answer); got != tc.want {
				t.Errorf("answer media\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "hello", "v=0\r\nm=audio x RTP/AVP 0\r\n", "v=0\r\nm=audio 4000 RTP/AVP\r\n", "m=audio 4000 RTP/AVP 0\r\n",
		"v=0\r\nm=audio 70000 RTP/AVP 0\r\n", "v=0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\x00\r\n", "v=0\r\nm=audio 4000 RTP/AVP 0\r\na=fmtp:0 a\rb\r\n",
		"v=0\r\n" + strings.Repeat("m=audio 4000 RTP/AVP 0\r\n", 33)} {
		if _, err := sipcodec.AnswerSDP([]byte(bad), nil, "127.0.0.1", 7); err == nil {
			t.Errorf("AnswerSDP(%q) succeeded, want an error (488)", bad)
		}
	}
	ipv6, err := sipcodec.AnswerSDP([]byte(lines("v=0", "m=audio 4000 RTP/AVP 0")), nil, "::1", 7)
	if err != nil || !strings.Contains(string(ipv6), "o=callctx 7 7 IN IP6 ::1\r\ns=callctx\r\nc=IN IP6 ::1\r\n") {
		t.Errorf("IPv6 host: %q, %v", ipv6, err)
	}
}

func TestOfferSDP(t *testing.T) {
	got := sipcodec.OfferSDP("127.0.0.1", 7)
	if want := lines("m=audio 9 RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=recvonly"); media(t, got) != want {
		t.Errorf("offer %q", got)
	}
	if _, err := sipcodec.ParseSDP(got); err != nil {
		t.Error(err)
	}
}

func TestSDPOrigin(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"v=0\r\no=ivr 1 2 IN IP4 10.0.0.1\r\ns=-\r\n", "o=ivr 1 2 IN IP4 10.0.0.1"},
		{"v=0\no=agent 7 7 IN IP6 ::1\ns=-\n", "o=agent 7 7 IN IP6 ::1"},
		{"v=0\r\ns=-\r\n", ""},
		{"", ""},
		{"o=last 1 1 IN IP4 10.0.0.1", "o=last 1 1 IN IP4 10.0.0.1"},
	} {
		if got := sipcodec.SDPOrigin([]byte(tc.body)); got != tc.want {
			t.Errorf("SDPOrigin(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// FuzzAnswerSDP: whatever an offer holds, parsing it never panics, and every offer that
// parses gets an answer that parses too, ends every line with CRLF, has the offer's streams
// in the offer's order (RFC 3264 §6) with formats the offer named, accepts at most one, in
// a direction that never sends, and stays the same when the same offer is answered again.
func FuzzAnswerSDP(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "offers", "*.sdp"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("v=0\r\nm=audio 1 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n"))
	f.Fuzz(func(t *testing.T, offer []byte) {
		o, err := sipcodec.ParseSDP(offer)
		if err != nil {
			return
		}
		answer, err := sipcodec.AnswerSDP(offer, nil, "192.0.2.1", 42)
		if err != nil {
			t.Fatalf("the offer parses but AnswerSDP fails: %v", err)
		}
		if !bytes.HasSuffix(answer, []byte("\r\n")) || bytes.Count(answer, []byte("\n")) != bytes.Count(answer, []byte("\r\n")) || bytes.Count(answer, []byte("\r")) != bytes.Count(answer, []byte("\r\n")) {
			t.Fatalf("answer lines do not all end with CRLF: %q", answer)
		}
		a, err := sipcodec.ParseSDP(answer)
		if err != nil {
			t.Fatalf("the answer does not parse: %v\n%q", err, answer)
		}
		if len(a.Media) != len(o.Media) {
			t.Fatalf("%d streams answered, %d offered", len(a.Media), len(o.Media))
		}
		accepted := 0
		for i, m := range a.Media {
			if m.Type != o.Media[i].Type || m.Proto != o.Media[i].Proto {
				t.Fatalf("stream %d answered as %s %s, offered %s %s", i, m.Type, m.Proto, o.Media[i].Type, o.Media[i].Proto)
			}
			for _, f := range m.Formats {
				if !slices.Contains(o.Media[i].Formats, f) {
					t.Fatalf("stream %d answers format %s, which the offer did not name", i, f)
				}
			}
			if m.Port != 0 {
				accepted++
				want := "recvonly" // callctx never sends
				if d := o.Media[i].Direction; d == "recvonly" || d == "inactive" {
					want = "inactive"
				}
				if m.Direction != want || o.Media[i].Port == 0 {
					t.Fatalf("stream %d accepted as %s (offered %s, port %d)", i, m.Direction, o.Media[i].Direction, o.Media[i].Port)
				}
			}
		}
		if accepted > 1 {
			t.Fatalf("%d streams accepted", accepted)
		}
		again, err := sipcodec.AnswerSDP(offer, answer, "192.0.2.1", 43)
		if err != nil || !bytes.Equal(again, answer) {
			t.Fatalf("answering the same offer again changed the answer: %q, %v", again, err)
		}
	})
}

func TestSessionDescription(t *testing.T) {
	sdp := lines("v=0", "o=AudiocodesGW 921244928 921244893 IN IP4 10.33.8.70", "s=SBC-Call", "c=IN IP4 10.33.8.70", "t=0 0", "m=audio 6020 RTP/AVP 8 96")
	// The shape of the AudioCodes SIPREC INVITE (Mediant 3000 User's Manual): SDP, then the
	// recording metadata.
	multi := "--boundary_ac1fffff85b\r\nContent-Type: application/sdp\r\n\r\n" + sdp +
		"--boundary_ac1fffff85b\r\nContent-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n<recording xmlns='urn:ietf:params:xml:ns:recording:1'/>\r\n--boundary_ac1fffff85b--\r\n"
	for _, tc := range []struct{ ct, body, want string }{
		{"application/sdp", sdp, sdp},
		{"Application/SDP; charset=utf-8", sdp, sdp},
		{"multipart/mixed;boundary=boundary_ac1fffff85b", multi, strings.TrimSuffix(sdp, "\r\n")},
		{"multipart/mixed;boundary=other", multi, ""},
		{"multipart/mixed", multi, ""},
		{"application/isup;version=itu-t92+", "\x01\x02", ""},
		{"", sdp, ""},
		{"application/sdp", "", ""},
	} {
		if got := string(sipcodec.SessionDescription(tc.ct, []byte(tc.body))); got != tc.want {
			t.Errorf("SessionDescription(%q) = %q, want %q", tc.ct, got, tc.want)
		}
	}
}
