package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify feeds arbitrary strings to Verify: it never panics, and whatever it accepts is an
// HS256 token whose signature one of our keys computes over exactly its header and payload,
// for a live session of a positive user. Nothing unsigned (alg none), signed with another
// algorithm or another key, or expired gets through.
//
//	go test ./internal/auth -run '^$' -fuzz FuzzVerify -fuzztime 30s
func FuzzVerify(f *testing.F) {
	signing := []byte("fuzz-signing-key-0123456789abcdef-0123456789")
	old := []byte("fuzz-old-key-0123456789abcdef-0123456789abc")
	now := time.Unix(1_800_000_000, 0)
	tokens, err := NewTokens([][]byte{signing, old}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	keys := map[string][]byte{KeyID(signing): signing, KeyID(old): old}

	issue := func(secret []byte, at time.Time) string {
		t, err := NewTokens([][]byte{secret}, time.Hour)
		if err != nil {
			f.Fatal(err)
		}
		s, err := t.Issue(7, 9, at)
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	claims := jwt.MapClaims{"sub": "7", "sid": 9, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "j"}
	sign := func(m jwt.SigningMethod, key any, kid string) string {
		tok := jwt.NewWithClaims(m, claims)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	enc := base64.RawURLEncoding
	payload, _ := json.Marshal(claims)
	valid := issue(signing, now)
	for _, seed := range []string{
		valid,
		issue(old, now),
		issue([]byte("someone-else-0123456789abcdef-0123456789"), now),
		issue(signing, now.Add(-3*time.Hour)), // expired
		issue(signing, now.Add(time.Hour)),    // issued in the future
		sign(jwt.SigningMethodHS512, signing, KeyID(signing)),
		sign(jwt.SigningMethodHS256, signing, ""),
		sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, KeyID(signing)),
		enc.EncodeToString([]byte(`{"alg":"none","kid":"`+KeyID(signing)+`"}`)) + "." + enc.EncodeToString(payload) + ".",
		enc.EncodeToString([]byte(`{"alg":"HS256","kid":"`+KeyID(signing)+`"}`)) + "." + enc.EncodeToString(payload) + ".",
		valid[:len(valid)-1] + "A",
		valid + "=",
		strings.Replace(valid, ".", "..", 1),
		"", ".", "..", "a.b.c", "Bearer " + valid,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := tokens.Verify(token, now)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v is not ErrInvalidToken", err)
			}
			return
		}
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted a token of %d parts", len(parts))
		}
		hb, err := enc.DecodeString(parts[0])
		if err != nil {
			t.Fatalf("accepted a malformed header: %v", err)
		}
		var h struct {
			Alg string `json:"alg"`
			Kid string `json:"kid"`
		}
		if err := json.Unmarshal(hb, &h); err != nil || h.Alg != "HS256" {
			t.Fatalf("accepted a token with header %s", hb)
		}
		key, ok := keys[h.Kid]
		if !ok {
			t.Fatalf("accepted a token with kid %q", h.Kid)
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(parts[0] + "." + parts[1]))
		sig, err := enc.DecodeString(parts[2])
		if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
			t.Fatalf("accepted a token our key did not sign: %q", token)
		}
		if c.UserID <= 0 || c.SessionID <= 0 || !now.Before(c.ExpiresAt) || c.IssuedAt.After(now) {
			t.Fatalf("accepted claims %+v at %v", c, now)
		}
	})
}
