package auth

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestPasswords(t *testing.T) {
	h, err := HashPassword("correct horse", FastPasswordParams)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		password string
		want     bool
	}{
		{"correct horse", true},
		{"correct horsE", false},
		{"", false},
		{strings.Repeat("x", 500), false},
	} {
		got, err := CheckPassword(h, tc.password)
		if err != nil || got != tc.want {
			t.Errorf("CheckPassword(%q) = %v, %v; want %v", tc.password, got, err, tc.want)
		}
	}
	h2, _ := HashPassword("correct horse", FastPasswordParams)
	if h == h2 {
		t.Error("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA", "$argon2id$v=18$m=64,t=1,p=1$c2FsdA$aGFzaA",
		"$argon2id$v=19$m=0,t=1,p=1$c2FsdA$aGFzaA", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdA$aGFzaA", "$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaA"} {
		if ok, err := CheckPassword(bad, "x"); ok || err == nil {
			t.Errorf("CheckPassword(%q) = %v, %v; want an error", bad, ok, err)
		}
	}
}

var (
	key1 = []byte("0123456789abcdef0123456789abcdef")
	key2 = []byte("fedcba9876543210fedcba9876543210")
)

func TestTokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tok, _ := NewTokens([][]byte{key1}, 15*time.Minute)
	s, err := tok.Issue(7, 42, now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tok.Verify(s, now.Add(time.Minute))
	if err != nil || c.UserID != 7 || c.SessionID != 42 {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	if _, err := tok.Verify(s, now.Add(16*time.Minute)); err == nil {
		t.Error("an expired token verified")
	}
	// Expiry is exact: no leeway lengthens CHAT_ACCESS_TTL (it once gave 30 s more).
	if _, err := tok.Verify(s, now.Add(15*time.Minute+time.Second)); err == nil {
		t.Error("a token verified a second after it expired")
	}
	if _, err := tok.Verify(s, now.Add(15*time.Minute-time.Second)); err != nil {
		t.Errorf("a token a second before it expires: %v", err)
	}
	// Another instance's clock may run a little ahead: its fresh token's iat is then in the
	// future here, which is allowed up to IssuedAtSkew.
	if _, err := tok.Verify(s, now.Add(-20*time.Second)); err != nil {
		t.Errorf("a token issued 20 s in the future: %v", err)
	}
	if _, err := tok.Verify(s, now.Add(-IssuedAtSkew-time.Second)); err == nil {
		t.Error("a token issued beyond IssuedAtSkew in the future verified")
	}
	other, _ := NewTokens([][]byte{key2}, time.Hour)
	if _, err := other.Verify(s, now); err == nil {
		t.Error("a token signed with another key verified")
	}
	// alg none, and HS512 with the right key, are refused: the algorithm is pinned.
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "7", "sid": 42, "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "jti": "x"})
	none.Header["kid"] = KeyID(key1)
	ns, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if _, err := tok.Verify(ns, now); err == nil {
		t.Error("an alg:none token verified")
	}
	hs512 := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"sub": "7", "sid": 42, "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "jti": "x"})
	hs512.Header["kid"] = KeyID(key1)
	hs, _ := hs512.SignedString(key1)
	if _, err := tok.Verify(hs, now); err == nil {
		t.Error("an HS512 token verified")
	}
	// A tampered payload fails.
	parts := strings.Split(s, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"sub":"7"`, `"sub":"8"`, 1)))
	if _, err := tok.Verify(strings.Join(parts, "."), now); err == nil {
		t.Error("a tampered token verified")
	}
	for _, junk := range []string{"", "a.b.c", "..", "eyJ.eyJ.x", strings.Repeat("a", 10000)} {
		if _, err := tok.Verify(junk, now); err == nil {
			t.Errorf("Verify(%.20q) succeeded", junk)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	old, _ := NewTokens([][]byte{key1}, time.Hour)
	s, _ := old.Issue(1, 2, now)
	rotated, _ := NewTokens([][]byte{key2, key1}, time.Hour) // new key signs, old one still verifies
	if _, err := rotated.Verify(s, now); err != nil {
		t.Errorf("a token of the previous key was refused while it is listed: %v", err)
	}
	s2, _ := rotated.Issue(1, 2, now)
	if _, err := old.Verify(s2, now); err == nil {
		t.Error("the old signer accepted a token of the new key")
	}
	dropped, _ := NewTokens([][]byte{key2}, time.Hour)
	if _, err := dropped.Verify(s, now); err == nil {
		t.Error("a token of a removed key verified")
	}
	if _, err := NewTokens([][]byte{[]byte("short")}, time.Hour); err == nil {
		t.Error("a 5-byte secret was accepted")
	}
}

func TestRefreshTokens(t *testing.T) {
	a, ha, err := NewRefreshToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := NewRefreshToken()
	if a == b || len(a) < 40 {
		t.Errorf("refresh tokens %q and %q: want distinct 256-bit values", a, b)
	}
	if string(HashRefreshToken(a)) != string(ha) || string(HashRefreshToken(b)) == string(ha) {
		t.Error("hashes do not identify their tokens")
	}
}

// TestNextRefreshToken: the token a rotation answers is the same for every presentation of
// one token (tabs sharing a cookie jar), another for another token, and out of reach of
// whoever holds a token but not the key.
func TestNextRefreshToken(t *testing.T) {
	tok, _ := NewTokens([][]byte{key1}, time.Hour)
	old, _, _ := NewRefreshToken()
	next, hash := tok.NextRefreshToken(old)
	if again, _ := tok.NextRefreshToken(old); again != next {
		t.Errorf("two rotations of one token: %q and %q, want one", next, again)
	}
	if string(HashRefreshToken(next)) != string(hash) || len(next) != len(old) || next == old {
		t.Errorf("next token %q of %q: want a new 256-bit token with its hash", next, old)
	}
	if after, _ := tok.NextRefreshToken(next); after == next || after == old {
		t.Errorf("the token after %q is %q", next, after)
	}
	other, _ := NewTokens([][]byte{key2}, time.Hour)
	if n2, _ := other.NextRefreshToken(old); n2 == next {
		t.Error("another key made the same next token: it does not depend on the key")
	}
}
