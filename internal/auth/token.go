package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are what an access token says: the user (sub) and the session (sid).
type Claims struct {
	UserID    int64
	SessionID int64
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Tokens signs and verifies access tokens with HS256. The first key signs; every key verifies,
// chosen by the token's kid, so a secret can be rotated without signing anyone out: keep the old
// one in the list until the tokens it signed have expired.
type Tokens struct {
	keys    map[string][]byte
	signKID string
	ttl     time.Duration
}

// ErrInvalidToken is returned for any token that does not verify.
var ErrInvalidToken = errors.New("invalid token")

// NewTokens builds a signer over secrets (the first one signs) with the given token lifetime.
func NewTokens(secrets [][]byte, ttl time.Duration) (*Tokens, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no jwt secret")
	}
	t := &Tokens{keys: make(map[string][]byte), ttl: ttl}
	for i, s := range secrets {
		if len(s) < 32 {
			return nil, fmt.Errorf("jwt secret %d is %d bytes; at least 32 are needed", i+1, len(s))
		}
		kid := KeyID(s)
		t.keys[kid] = s
		if i == 0 {
			t.signKID = kid
		}
	}
	return t, nil
}

// KeyID names a secret without revealing it: the first 8 bytes of its SHA-256, in hex.
func KeyID(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:8])
}

// TTL is the lifetime of the tokens that Issue makes.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue signs an access token for the session.
func (t *Tokens) Issue(userID, sessionID int64, now time.Time) (string, error) {
	jti := make([]byte, 12)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	claims := jwt.RegisteredClaims{
		Subject:   strconv.FormatInt(userID, 10),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
		ID:        base64.RawURLEncoding.EncodeToString(jti),
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, sessionClaims{RegisteredClaims: claims, SID: sessionID})
	tok.Header["kid"] = t.signKID
	return tok.SignedString(t.keys[t.signKID])
}

type sessionClaims struct {
	jwt.RegisteredClaims
	SID int64 `json:"sid"`
}

// IssuedAtSkew is how far in the future a token's iat may be: the difference between two
// instances' clocks that Verify tolerates.
const IssuedAtSkew = 30 * time.Second

// Verify checks an access token's signature (HS256 only), expiry and claims at time now.
func (t *Tokens) Verify(token string, now time.Time) (Claims, error) {
	var sc sessionClaims
	_, err := jwt.ParseWithClaims(token, &sc, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		key, ok := t.keys[kid]
		if !ok {
			return nil, fmt.Errorf("unknown key id %q", kid)
		}
		return key, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithExpirationRequired(),
	)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	// Instances on different hosts may disagree on the time by a little, so a token issued by
	// one whose clock runs ahead may look issued in the future here: that is allowed for
	// IssuedAtSkew. Expiry is exact (a leeway there would be a longer lifetime than
	// CHAT_ACCESS_TTL: with a clock behind, a token lives a little longer; with one ahead, the
	// client refreshes a little sooner).
	if sc.IssuedAt == nil || sc.IssuedAt.After(now.Add(IssuedAtSkew)) {
		return Claims{}, fmt.Errorf("%w: issued in the future", ErrInvalidToken)
	}
	uid, err := strconv.ParseInt(sc.Subject, 10, 64)
	if err != nil || uid <= 0 || sc.SID <= 0 || sc.ID == "" {
		return Claims{}, fmt.Errorf("%w: bad claims", ErrInvalidToken)
	}
	return Claims{UserID: uid, SessionID: sc.SID, IssuedAt: sc.IssuedAt.Time, ExpiresAt: sc.ExpiresAt.Time}, nil
}

// NewRefreshToken returns an opaque random refresh token and the hash under which it is stored.
func NewRefreshToken() (token string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashRefreshToken(token), nil
}

// NextRefreshToken is the refresh token that replaces old when it is rotated: an HMAC of old
// under the signing key, not a random one, so that every answer to old carries the same next
// token. A browser's tabs share one cookie jar: when several of them refresh with old at once
// (a retry of old within chat.RefreshRetryGrace is honoured), the jar keeps whichever answer
// came last, and with a token of its own in each answer the jar could end up with one the
// session had already left, whose next use revoked the session. Without the key the next
// token cannot be computed from old, so a thief of an old token still has to present it.
func (t *Tokens) NextRefreshToken(old string) (token string, hash []byte) {
	mac := hmac.New(sha256.New, t.keys[t.signKID])
	mac.Write([]byte("chat refresh rotation\x00"))
	mac.Write([]byte(old))
	token = base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	return token, HashRefreshToken(token)
}

// HashRefreshToken is the stored form of a refresh token. A fast hash is right here: the token
// has 256 random bits, so it cannot be guessed from its hash.
func HashRefreshToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}
