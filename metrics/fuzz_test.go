package metrics_test

import (
	"regexp"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/callctx/callctx/metrics"
)

// FuzzMetrics_Labels feeds what peers control (a SIP method, a status, an
// HTTP method) and what our code passes (a transfer outcome) into the
// metrics: every label value that comes out is one of a bounded set, so no
// input can blow up the number of series or write a broken exposition.
func FuzzMetrics_Labels(f *testing.F) {
	f.Add("INVITE", 200, "refer", "completed")
	f.Add("invite", 486, "REFER", "Timed-Out")
	f.Add("X-EVIL\r\nInjected: 1", 0, "teleport", "")
	f.Add("ÄÖÜ", 99999, "", "a very long outcome that goes on and on past thirty-two letters")
	f.Add("", -1, "invite", "\x00\xff")

	methods := regexp.MustCompile(`^(INVITE|ACK|BYE|CANCEL|OPTIONS|REGISTER|PRACK|SUBSCRIBE|NOTIFY|PUBLISH|INFO|REFER|MESSAGE|UPDATE|other)$`)
	httpMethods := regexp.MustCompile(`^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|CONNECT|TRACE|other)$`)
	codes := regexp.MustCompile(`^([1-6][0-9][0-9]|none|other)$`)
	word := regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
	transferMethods := regexp.MustCompile(`^(refer|invite|redirect|other)$`)

	f.Fuzz(func(t *testing.T, method string, status int, transferMethod, outcome string) {
		m := metrics.New(metrics.Options{})
		m.SIPRequest(status%2 == 0, method, status)
		m.Transfer(transferMethod, outcome)
		m.ObserveRequest(method, "/v1/calls", 200, time.Millisecond, false)

		fams, err := m.Registry().Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		check := func(label, value string, re *regexp.Regexp) {
			if !utf8.ValidString(value) || !re.MatchString(value) {
				t.Fatalf("label %s=%q is outside its bounded set", label, value)
			}
		}
		for _, fam := range fams {
			for _, s := range fam.GetMetric() {
				for _, l := range s.GetLabel() {
					switch fam.GetName() + "/" + l.GetName() {
					case "callctx_sip_requests_total/method":
						check("method", l.GetValue(), methods)
					case "callctx_sip_requests_total/code":
						check("code", l.GetValue(), codes)
					case "callctx_transfers_total/method":
						check("method", l.GetValue(), transferMethods)
					case "callctx_transfers_total/outcome":
						check("outcome", l.GetValue(), word)
					case "callctx_http_requests_total/method", "callctx_http_request_duration_seconds/method":
						check("method", l.GetValue(), httpMethods)
					}
				}
			}
		}
	})
}
