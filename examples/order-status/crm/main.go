// Command crm is a toy CRM for the order-status example: it receives
// callctx's automations, checks their signatures, and answers lookups the
// way a real CRM would, by writing the caller's profile into the call's
// session through callctx's REST API.
//
//	CALLCTX_URL=http://127.0.0.1:8080 CRM_WEBHOOK_SECRET=... go run ./examples/order-status/crm
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// profiles is the CRM's "database": by phone number and by reference.
var profiles = map[string]map[string]any{
	"+4930123456": {"ivr.email": "jane@example.com", "ivr.premium": true, "ivr.track_id": "TRK-48213"},
	"AB12345":     {"ivr.email": "max@example.com", "ivr.premium": false, "ivr.track_id": "TRK-77001"},
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9090", "where the CRM listens for automations")
	flag.Parse()
	callctx := envOr("CALLCTX_URL", "http://127.0.0.1:8080")
	token := os.Getenv("CALLCTX_TOKEN") // empty when callctx runs without tokens
	secret := []byte(os.Getenv("CRM_WEBHOOK_SECRET"))
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	http.HandleFunc("POST /callctx/{what}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if !verify(secret, r.Header.Get("X-Callctx-Signature"), body) {
			log.Warn("bad signature", "path", r.URL.Path)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var req map[string]any
		_ = json.Unmarshal(body, &req)
		log.Info("automation", "path", r.URL.Path, "idempotency_key", r.Header.Get("Idempotency-Key"), "body", string(body))
		w.WriteHeader(http.StatusAccepted)
		if r.PathValue("what") != "lookup" {
			return // e.g. the e-mail: a real CRM would send it now
		}
		callID, _ := req["callId"].(string)
		key, _ := req["from"].(string)
		if ref, ok := req["reference"].(string); ok {
			key = ref
		}
		profile, ok := profiles[key]
		if !ok {
			profile = map[string]any{"ivr.lookup": "not_found"}
		}
		go writeBack(log, callctx, token, callID, profile) // answer asynchronously, as a CRM does
	})
	log.Info("toy CRM listening", "addr", *listen, "callctx", callctx)
	if err := http.ListenAndServe(*listen, nil); err != nil {
		log.Error("listen", "error", err)
		os.Exit(1)
	}
}

// writeBack writes a profile into the call's session: POST /v1/sessions/{id}.
func writeBack(log *slog.Logger, base, token, callID string, profile map[string]any) {
	time.Sleep(300 * time.Millisecond) // a lookup takes a moment
	js, _ := json.Marshal(profile)
	req, _ := http.NewRequest("POST", base+"/v1/sessions/"+callID, bytes.NewReader(js))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Error("write back", "call_id", callID, "error", err)
		return
	}
	res.Body.Close()
	log.Info("wrote the profile into the session", "call_id", callID, "status", res.StatusCode, "profile", string(js))
}

// verify checks X-Callctx-Signature: t=<unix>,v1=hex(HMAC-SHA256(secret,
// "<t>.<body>")), refusing signatures older than five minutes.
func verify(secret []byte, header string, body []byte) bool {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		if v, ok := strings.CutPrefix(part, "t="); ok {
			ts = v
		} else if v, ok := strings.CutPrefix(part, "v1="); ok {
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return hmac.Equal([]byte(hex.EncodeToString(mac.Sum(nil))), []byte(sig))
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
