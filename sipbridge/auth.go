package sipbridge

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Digest algorithms the bridge offers (RFC 8760: SHA-256; RFC 2617: MD5).
const (
	AlgorithmSHA256 = "SHA-256"
	AlgorithmMD5    = "MD5"
)

// Defaults of an AuthConfig.
const (
	DefaultRealm    = "callctx"
	DefaultNonceTTL = 5 * time.Minute
)

// AuthConfig turns on SIP digest authentication for the peers that Allow does not pin by
// address: their INVITE is challenged with 407 Proxy Authentication Required and starts a
// call once it comes back with the credentials of a user. It is off without Users.
type AuthConfig struct {
	Realm string // DefaultRealm when ""
	Users []AuthUser
	// Algorithms are the challenges offered, in order of preference (a peer takes the first
	// it supports): AlgorithmSHA256 and AlgorithmMD5, both when empty.
	Algorithms []string
	// NonceTTL is how long a challenge can be answered (DefaultNonceTTL); a later answer
	// gets a new challenge marked stale, which peers answer without asking anyone.
	NonceTTL time.Duration
}

// AuthUser is a user that may start calls: its password, or for each algorithm the hex of
// H(name:realm:password) (HA1), so that the configuration need not hold the password.
type AuthUser struct {
	Name     string
	Password string
	HA1      map[string]string // by algorithm
}

// HA1 returns the hex H(name:realm:password) for an algorithm, what AuthUser.HA1 holds.
func HA1(algorithm, name, realm, password string) (string, error) {
	h, err := newHash(algorithm)
	if err != nil {
		return "", err
	}
	io.WriteString(h, name+":"+realm+":"+password)
	return hex.EncodeToString(h.Sum(nil)), nil
}

func newHash(algorithm string) (hash.Hash, error) {
	switch strings.ToUpper(algorithm) {
	case AlgorithmMD5:
		return md5.New(), nil
	case AlgorithmSHA256:
		return sha256.New(), nil
	}
	return nil, fmt.Errorf("digest algorithm %q: use %s or %s", algorithm, AlgorithmSHA256, AlgorithmMD5)
}

// authenticator checks digest credentials. Its nonces are stateless: a time and an HMAC
// of that time and the source address under a key made at start, so that a nonce is good
// for NonceTTL, from the address it was sent to, and until the process restarts.
type authenticator struct {
	realm      string
	algorithms []string
	ttl        time.Duration
	key        []byte
	users      map[string]map[string]string // name → algorithm → HA1
	now        func() time.Time
}

// newAuthenticator checks cfg; nil without users.
func newAuthenticator(cfg AuthConfig) (*authenticator, error) {
	if len(cfg.Users) == 0 {
		if len(cfg.Algorithms) > 0 || cfg.Realm != "" {
			return nil, errors.New("sip auth: realm and algorithms need users")
		}
		return nil, nil
	}
	a := &authenticator{realm: cfg.Realm, ttl: cfg.NonceTTL, users: map[string]map[string]string{}, now: time.Now}
	if a.realm == "" {
		a.realm = DefaultRealm
	}
	if strings.ContainsAny(a.realm, "\"\\\r\n") {
		return nil, fmt.Errorf("sip auth realm %q: quotes, backslashes and line breaks are not allowed", a.realm)
	}
	if a.ttl <= 0 {
		a.ttl = DefaultNonceTTL
	}
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = []string{AlgorithmSHA256, AlgorithmMD5}
	}
	for _, alg := range algs {
		if _, err := newHash(alg); err != nil {
			return nil, fmt.Errorf("sip auth: %w", err)
		}
		a.algorithms = append(a.algorithms, strings.ToUpper(alg))
	}
	for i, u := range cfg.Users {
		if u.Name == "" || strings.ContainsAny(u.Name, "\"\\\r\n") {
			return nil, fmt.Errorf("sip auth users[%d]: name %q is empty or has quotes, backslashes or line breaks", i, u.Name)
		}
		if _, dup := a.users[u.Name]; dup {
			return nil, fmt.Errorf("sip auth users[%d]: the name %q is used twice", i, u.Name)
		}
		if (u.Password == "") == (len(u.HA1) == 0) {
			return nil, fmt.Errorf("sip auth user %q: give a password or HA1 hashes, not both", u.Name)
		}
		ha1 := map[string]string{}
		for _, alg := range a.algorithms {
			if u.Password != "" {
				ha1[alg], _ = HA1(alg, u.Name, a.realm, u.Password)
			}
		}
		for alg, v := range u.HA1 {
			alg = strings.ToUpper(alg)
			h, err := newHash(alg)
			if err != nil {
				return nil, fmt.Errorf("sip auth user %q: %w", u.Name, err)
			}
			if b, err := hex.DecodeString(v); err != nil || len(b) != h.Size() {
				return nil, fmt.Errorf("sip auth user %q: the %s HA1 must be %d hex digits", u.Name, alg, 2*h.Size())
			}
			ha1[alg] = strings.ToLower(v)
		}
		a.users[u.Name] = ha1
	}
	a.key = make([]byte, 32)
	rand.Read(a.key)
	return a, nil
}

// authResult is what the credentials of a request are worth.
type authResult int

const (
	authMissing authResult = iota // none for our realm: challenge
	authStale                     // right, but the nonce is too old: challenge again, stale
	authBad                       // wrong user, password or nonce: refuse
	authOK
)

// check reads the credentials of req for the realm and returns the user they prove.
func (a *authenticator) check(req *sip.Request, src netip.Addr) (string, authResult) {
	for _, name := range []string{"Proxy-Authorization", "Authorization"} {
		for _, h := range req.GetHeaders(name) {
			cred, err := digest.ParseCredentials(h.Value())
			if err != nil || cred.Realm != a.realm {
				continue
			}
			return cred.Username, a.verify(req, src, cred)
		}
	}
	return "", authMissing
}

func (a *authenticator) verify(req *sip.Request, src netip.Addr, cred *digest.Credentials) authResult {
	alg := strings.ToUpper(cred.Algorithm)
	if alg == "" {
		alg = AlgorithmMD5
	}
	ha1, ok := a.users[cred.Username][alg]
	if !ok || !a.offers(alg) || !sameURI(cred.URI, req.Recipient) {
		return authBad
	}
	issued, ok := a.nonceTime(cred.Nonce, src)
	if !ok {
		return authBad
	}
	chal := &digest.Challenge{Realm: a.realm, Nonce: cred.Nonce, Algorithm: alg}
	if cred.QOP != "" {
		chal.QOP = []string{cred.QOP}
	}
	want, err := digest.Digest(chal, digest.Options{
		Method: string(req.Method), URI: cred.URI, Username: cred.Username, A1: ha1,
		Cnonce: cred.Cnonce, Count: cred.Nc,
		GetBody: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(req.Body())), nil },
	})
	if err != nil || subtle.ConstantTimeCompare([]byte(strings.ToLower(cred.Response)), []byte(want.Response)) != 1 {
		return authBad
	}
	if a.now().Sub(issued) > a.ttl {
		return authStale
	}
	return authOK
}

func (a *authenticator) offers(alg string) bool {
	for _, x := range a.algorithms {
		if x == alg {
			return true
		}
	}
	return false
}

// sameURI reports whether the digest-uri of credentials names the Request-URI (RFC 2617
// §3.2.2.5): its host and port, and its user when it has one (sipp, for one, sends
// sip:host:port), so that credentials for one number do not start a call to another.
func sameURI(credURI string, ruri sip.Uri) bool {
	var u sip.Uri
	if err := sip.ParseUri(credURI, &u); err != nil {
		return false
	}
	return strings.EqualFold(u.Scheme, ruri.Scheme) && (u.User == "" || u.User == ruri.User) &&
		strings.EqualFold(u.Host, ruri.Host) && u.Port == ruri.Port
}

// challenges returns the Proxy-Authenticate headers of a 407, one per algorithm.
func (a *authenticator) challenges(src netip.Addr, stale bool) []sip.Header {
	nonce := a.nonce(src)
	hs := make([]sip.Header, 0, len(a.algorithms))
	for _, alg := range a.algorithms {
		c := digest.Challenge{Realm: a.realm, Nonce: nonce, Algorithm: alg, QOP: []string{"auth"}, Stale: stale}
		hs = append(hs, sip.NewHeader("Proxy-Authenticate", c.String()))
	}
	return hs
}

// nonce is base64url(time in Unix nanoseconds ‖ HMAC-SHA256(key, time ‖ source)[:16]).
func (a *authenticator) nonce(src netip.Addr) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(a.now().UnixNano()))
	copy(b[8:], a.mac(b[:8], src))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// nonceTime returns when a nonce this process made for src was made.
func (a *authenticator) nonceTime(nonce string, src netip.Addr) (time.Time, bool) {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 24 || !hmac.Equal(b[8:], a.mac(b[:8], src)) {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[:8]))), true
}

func (a *authenticator) mac(ts []byte, src netip.Addr) []byte {
	m := hmac.New(sha256.New, a.key)
	m.Write(ts)
	ip, _ := src.Unmap().MarshalBinary()
	m.Write(ip)
	return m.Sum(nil)[:16]
}
