// Package pushtest is a push service for tests: an HTTP server that accepts Web Push
// requests as a browser vendor's would, checks the VAPID signature (RFC 8292) and decrypts
// the payload (RFC 8291, aes128gcm of RFC 8188) with the subscription's private key, which
// the test holds. What it received is kept for the test to look at.
package pushtest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Push is one push the server accepted.
type Push struct {
	Endpoint string
	TTL      int
	Topic    string
	Urgency  string
	Subject  string // the VAPID JWT's sub
	Payload  []byte // decrypted
}

// Server is a running push service.
type Server struct {
	tb   testing.TB
	srv  *httptest.Server
	mu   sync.Mutex
	subs map[string]*Subscription // by path
	got  []Push
	errs []error
	seq  int
	// VAPIDKey, if set, is the only application server key accepted (base64url).
	VAPIDKey string
}

// Subscription is a browser's side of a subscription: the keys the server encrypts for,
// with the private key to decrypt.
type Subscription struct {
	Endpoint string
	P256dh   string // base64url
	Auth     string // base64url
	key      *ecdh.PrivateKey
	auth     []byte
	status   int // what the server answers to pushes for it
}

// Start starts a push service that stops with the test.
func Start(tb testing.TB) *Server {
	s := &Server{tb: tb, subs: map[string]*Subscription{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.srv.Close)
	return s
}

// Subscribe makes a new subscription with fresh keys.
func (s *Server) Subscribe() *Subscription {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		s.tb.Fatal(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	path := "/push/" + strconv.Itoa(s.seq)
	sub := &Subscription{Endpoint: s.srv.URL + path, P256dh: base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes()),
		Auth: base64.RawURLEncoding.EncodeToString(auth), key: key, auth: auth, status: http.StatusCreated}
	s.subs[path] = sub
	return sub
}

// Gone makes the service answer 410 to pushes for sub from now on, as for an unsubscribed
// browser.
func (s *Server) Gone(sub *Subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub.status = http.StatusGone
}

// Pushes returns what was received so far, and fails the test for any request that broke
// the protocol.
func (s *Server) Pushes() []Push {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, err := range s.errs {
		s.tb.Errorf("push service: %v", err)
	}
	s.errs = nil
	return append([]Push(nil), s.got...)
}

// To returns the pushes received for one subscription.
func (s *Server) To(sub *Subscription) []Push {
	var out []Push
	for _, p := range s.Pushes() {
		if p.Endpoint == sub.Endpoint {
			out = append(out, p)
		}
	}
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	sub := s.subs[r.URL.Path]
	s.mu.Unlock()
	if sub == nil || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	p, err := s.check(r, sub)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs = append(s.errs, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if sub.status == http.StatusGone {
		w.WriteHeader(http.StatusGone)
		return
	}
	s.got = append(s.got, p)
	w.WriteHeader(sub.status)
}

// check verifies one push request and decrypts it.
func (s *Server) check(r *http.Request, sub *Subscription) (Push, error) {
	p := Push{Endpoint: sub.Endpoint, Topic: r.Header.Get("Topic"), Urgency: r.Header.Get("Urgency")}
	var err error
	if p.TTL, err = strconv.Atoi(r.Header.Get("TTL")); err != nil || p.TTL < 0 {
		return p, fmt.Errorf("TTL header %q", r.Header.Get("TTL"))
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "aes128gcm" {
		return p, fmt.Errorf("Content-Encoding %q, want aes128gcm", ce)
	}
	if p.Topic != "" && (len(p.Topic) > 32 || strings.Trim(p.Topic, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "") {
		return p, fmt.Errorf("Topic %q is not at most 32 base64url characters", p.Topic)
	}
	if p.Subject, err = s.checkVAPID(r.Header.Get("Authorization"), sub.Endpoint); err != nil {
		return p, err
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8192))
	if err != nil {
		return p, err
	}
	if p.Payload, err = decrypt(body, sub); err != nil {
		return p, fmt.Errorf("decrypt: %w", err)
	}
	return p, nil
}

// checkVAPID verifies "vapid t=<JWT>, k=<key>": an ES256 JWT signed by k, for the
// endpoint's origin, not expired, with a subject. It returns the subject.
func (s *Server) checkVAPID(h, endpoint string) (string, error) {
	rest, ok := strings.CutPrefix(h, "vapid ")
	if !ok {
		return "", fmt.Errorf("Authorization %q is not vapid", h)
	}
	var token, k string
	for part := range strings.SplitSeq(rest, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch name {
		case "t":
			token = val
		case "k":
			k = val
		}
	}
	if s.VAPIDKey != "" && k != s.VAPIDKey {
		return "", fmt.Errorf("VAPID key %q, want %q", k, s.VAPIDKey)
	}
	kb, err := base64.RawURLEncoding.DecodeString(k)
	if err != nil {
		return "", fmt.Errorf("VAPID k: %w", err)
	}
	x, y := elliptic.Unmarshal(elliptic.P256(), kb) //nolint:staticcheck // a raw uncompressed point, as VAPID sends it
	if x == nil {
		return "", errors.New("VAPID k is not a P-256 point")
	}
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("VAPID t is not a JWT")
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err := decodeJSON(parts[0], &hdr); err != nil || hdr.Alg != "ES256" {
		return "", fmt.Errorf("JWT header: alg %q, %v", hdr.Alg, err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return "", errors.New("JWT signature is not 64 bytes")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return "", errors.New("JWT signature does not verify with k")
	}
	var claims struct {
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Sub string `json:"sub"`
	}
	if err := decodeJSON(parts[1], &claims); err != nil {
		return "", fmt.Errorf("JWT claims: %w", err)
	}
	origin := endpoint[:strings.Index(endpoint[len("http://"):], "/")+len("http://")]
	if claims.Aud != origin {
		return "", fmt.Errorf("JWT aud %q, want %q", claims.Aud, origin)
	}
	if exp := time.Unix(claims.Exp, 0); time.Until(exp) <= 0 || time.Until(exp) > 24*time.Hour {
		return "", fmt.Errorf("JWT exp %v is not within 24 hours", exp)
	}
	if !strings.HasPrefix(claims.Sub, "mailto:") && !strings.HasPrefix(claims.Sub, "https:") {
		return "", fmt.Errorf("JWT sub %q is neither mailto: nor https:", claims.Sub)
	}
	return claims.Sub, nil
}

func decodeJSON(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// decrypt opens an aes128gcm body (RFC 8188) encrypted for sub (RFC 8291): salt, record size
// and the sender's ephemeral key in the header, one record, padding ended by 0x02.
func decrypt(body []byte, sub *Subscription) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("body shorter than its header")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if len(body) < 21+idlen || idlen != 65 {
		return nil, fmt.Errorf("key id of %d bytes, want the sender's 65-byte public key", idlen)
	}
	senderPub, err := ecdh.P256().NewPublicKey(body[21 : 21+idlen])
	if err != nil {
		return nil, fmt.Errorf("sender key: %w", err)
	}
	record := body[21+idlen:]
	if rs < 18 || len(record) > int(rs) {
		return nil, fmt.Errorf("record of %d bytes with record size %d: want one record", len(record), rs)
	}
	secret, err := sub.key.ECDH(senderPub)
	if err != nil {
		return nil, err
	}
	info := append([]byte("WebPush: info\x00"), sub.key.PublicKey().Bytes()...)
	info = append(info, senderPub.Bytes()...)
	prk, err := hkdf.Extract(sha256.New, secret, sub.auth)
	if err != nil {
		return nil, err
	}
	ikm, err := hkdf.Expand(sha256.New, prk, string(info), 32)
	if err != nil {
		return nil, err
	}
	prk2, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Expand(sha256.New, prk2, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Expand(sha256.New, prk2, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, record, nil)
	if err != nil {
		return nil, err
	}
	end := len(plain) - 1
	for end >= 0 && plain[end] == 0 {
		end--
	}
	if end < 0 || plain[end] != 2 {
		return nil, errors.New("no last-record delimiter (0x02)")
	}
	return plain[:end], nil
}
