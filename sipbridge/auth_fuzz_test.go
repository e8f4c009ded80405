package sipbridge_test

import (
	"testing"

	"github.com/callctx/callctx/sipbridge"
)

// FuzzAuthCheck: whatever a Proxy-Authorization header holds, checking it never panics
// and never proves a user without the password.
func FuzzAuthCheck(f *testing.F) {
	for _, s := range []string{
		`Digest username="sbc-east",realm="callctx",nonce="GO3MJmkvtSHlM5c2XG1NaK8RL1MS5n3X",uri="sip:+4930555@127.0.0.1:5060",response="0c5af1a5188b88d09236be3ab3d8d423",algorithm=MD5,qop=auth,nc=00000001,cnonce="6b8b4567"`,
		`Digest username="sbc-east", realm="callctx", nonce="", uri="sip:127.0.0.1", response=""`,
		`Digest realm="callctx", algorithm=SHA-256, nc=zz`,
		`Basic c2JjOnMzY3JldA==`,
		`Digest username="a\"b", realm="callctx"`,
	} {
		f.Add(s)
	}
	cfg := sipbridge.AuthConfig{Users: []sipbridge.AuthUser{{Name: "sbc-east", Password: "s3cret"}}}
	f.Fuzz(func(t *testing.T, cred string) {
		ok, err := sipbridge.AuthCheckForTest(cfg, "sip:+4930555@127.0.0.1:5060", "127.0.0.1:5062", cred)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			t.Fatalf("credentials %q accepted without a nonce of ours", cred)
		}
	})
}
