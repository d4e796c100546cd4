package chat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wschat/chat/internal/auth"
)

// Credentials are what a sign-in hands to a device.
type Credentials struct {
	SessionID      int64
	AccessToken    string
	AccessExpires  time.Time
	AccessTTL      time.Duration
	RefreshToken   string
	RefreshExpires time.Time
}

// SignIn is a registration or login attempt from one device.
type SignIn struct {
	Email     string
	Name      string // registration only
	Password  string
	UserAgent string
	Addr      string // the client's address, for rate limits
}

// SessionInfo is one of the caller's devices.
type SessionInfo struct {
	ID         int64  `json:"id"`
	UserAgent  string `json:"user_agent"`
	CreatedAt  Time   `json:"created_at"`
	LastSeenAt Time   `json:"last_seen_at"`
	Current    bool   `json:"current"`
}

// Register creates an account and signs it in.
func (s *Service) Register(ctx context.Context, in SignIn) (User, Credentials, error) {
	if !s.opts.Signup {
		return User{}, Credentials{}, Errorf(CodeSignupDisabled, "sign-up is disabled on this server")
	}
	email, err := normalizeEmail("body.email", in.Email)
	if err != nil {
		return User{}, Credentials{}, err
	}
	name, err := checkName("body.name", in.Name)
	if err != nil {
		return User{}, Credentials{}, err
	}
	if err := checkText("body.password", in.Password, MinPasswordChars, MaxPasswordChars, false); err != nil {
		return User{}, Credentials{}, err
	}
	if err := s.take(ctx, s.signupByAddr, addrKey(in.Addr), 1); err != nil {
		return User{}, Credentials{}, err
	}
	var hash string
	if err := s.hashing(ctx, func() { hash, err = auth.HashPassword(in.Password, s.opts.PasswordParams) }); err != nil {
		return User{}, Credentials{}, err
	}
	if err != nil {
		return User{}, Credentials{}, err
	}
	u, err := s.store.CreateUser(ctx, User{Email: email, Name: name, PasswordHash: hash, CreatedAt: s.now()})
	if errors.Is(err, ErrEmailTaken) {
		return User{}, Credentials{}, &Error{Code: CodeEmailTaken, Field: "body.email", Message: "an account with this email already exists"}
	}
	if err != nil {
		return User{}, Credentials{}, storeErr(err, "create user")
	}
	creds, err := s.startSession(ctx, u.ID, in.UserAgent)
	return u, creds, err
}

// Login checks a password and starts a session. Unknown emails and wrong passwords get the same
// answer in about the same time.
func (s *Service) Login(ctx context.Context, in SignIn) (User, Credentials, error) {
	email := strings.ToLower(strings.TrimSpace(in.Email))
	if err := s.take(ctx, s.loginByAddr, addrKey(in.Addr), 1); err != nil {
		return User{}, Credentials{}, err
	}
	// The email's token is taken before the password is checked, not after it failed: a
	// check made first let 20 concurrent guesses through on one token. A success gives the
	// email all its tokens back.
	emailKey := limiterKey(email)
	if err := s.take(ctx, s.loginByEmail, emailKey, 1); err != nil {
		return User{}, Credentials{}, err
	}
	// An email no account can have (PostgreSQL refuses NUL and invalid UTF-8) is just wrong.
	if len(in.Password) > 4*MaxPasswordChars || len(email) > 4*MaxEmailChars || !utf8.ValidString(email) || strings.IndexByte(email, 0) >= 0 {
		return User{}, Credentials{}, Errorf(CodeInvalidCredentials, "wrong email or password")
	}
	u, err := s.store.UserByEmail(ctx, email)
	hash := u.PasswordHash
	if errors.Is(err, ErrNotFound) || (err == nil && hash == "") {
		// No account, or one no password signs in to (a locked demo user): the same work.
		hash = s.dummyHash
	} else if err != nil {
		return User{}, Credentials{}, storeErr(err, "load user by email")
	}
	var ok bool
	var herr error
	if err := s.hashing(ctx, func() { ok, herr = auth.CheckPassword(hash, in.Password) }); err != nil {
		return User{}, Credentials{}, err
	}
	if herr != nil {
		s.log.Error("stored password hash is malformed", "user_id", u.ID, "err", herr)
	}
	if err != nil || !ok || u.PasswordHash == "" {
		return User{}, Credentials{}, Errorf(CodeInvalidCredentials, "wrong email or password")
	}
	s.loginByEmail.Reset(ctx, emailKey)
	creds, err := s.startSession(ctx, u.ID, in.UserAgent)
	return u, creds, err
}

// hashing runs fn, an argon2id computation, in one of the service's hash slots, waiting for a
// free one as long as ctx allows.
func (s *Service) hashing(ctx context.Context, fn func()) error {
	select {
	case s.hashSlots <- struct{}{}:
	case <-ctx.Done():
		return &Error{Code: CodeUnavailable, Message: "the server is busy; try again"}
	}
	defer func() { <-s.hashSlots }()
	fn()
	return nil
}

// limiterKey is the login limiter's key for an email: a fixed-size digest, so that the
// limiter's table stays small however long the attempted addresses are, and a shared
// limiter's keys name no email.
func limiterKey(email string) string {
	sum := sha256.Sum256([]byte(email))
	return hex.EncodeToString(sum[:16])
}

func (s *Service) startSession(ctx context.Context, userID int64, userAgent string) (Credentials, error) {
	token, hash, err := auth.NewRefreshToken()
	if err != nil {
		return Credentials{}, err
	}
	now := s.now()
	sess, err := s.store.CreateSession(ctx, Session{
		UserID: userID, UserAgent: clip(userAgent, 256), CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.opts.RefreshTTL),
	}, hash)
	if err != nil {
		return Credentials{}, storeErr(err, "create session")
	}
	return s.credentials(sess, token, now)
}

func (s *Service) credentials(sess Session, refresh string, now time.Time) (Credentials, error) {
	access, err := s.tokens.Issue(sess.UserID, sess.ID, now)
	if err != nil {
		return Credentials{}, err
	}
	return Credentials{
		SessionID: sess.ID, AccessToken: access, AccessExpires: now.Add(s.tokens.TTL()), AccessTTL: s.tokens.TTL(),
		RefreshToken: refresh, RefreshExpires: sess.ExpiresAt,
	}, nil
}

// clip cuts s to at most n bytes on a rune boundary and drops invalid UTF-8 and NULs.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// RefreshRetryGrace is how long after a rotation the token it replaced is still answered,
// with the same next token (NextRefreshToken), instead of revoking the session, when the same
// client (user agent and address) presents it: a client whose refresh answer was lost on the
// way (a dropped connection, a timeout), or a browser's tabs refreshing with one cookie at
// once, must not be signed out for it. From another client, later, or after another rotation,
// that token can only have been stolen.
const RefreshRetryGrace = 30 * time.Second

// Client is where a request came from, as far as the server can tell.
type Client struct {
	UserAgent string
	Addr      string
}

// digest is what the store keeps of a client: it need only tell two apart.
func (c Client) digest() []byte {
	h := sha256.New()
	h.Write([]byte(c.UserAgent))
	h.Write([]byte{0})
	h.Write([]byte(c.Addr))
	return h.Sum(nil)[:16]
}

// Refresh rotates a refresh token to the one derived from it (NextRefreshToken): the old one
// stops working, and presenting it again revokes the whole session (it can only have been
// stolen), unless it is a prompt retry of the last rotation by the client that made it
// (RefreshRetryGrace), which gets the same new token again.
func (s *Service) Refresh(ctx context.Context, refreshToken string, from Client) (Credentials, error) {
	bad := Errorf(CodeInvalidRefresh, "the refresh token is invalid, expired or revoked; sign in again")
	if refreshToken == "" || len(refreshToken) > 256 {
		return Credentials{}, bad
	}
	token, newHash := s.tokens.NextRefreshToken(refreshToken)
	now := s.now()
	sess, err := s.store.RotateRefresh(ctx, auth.HashRefreshToken(refreshToken), newHash, from.digest(), now, now.Add(s.opts.RefreshTTL))
	switch {
	case errors.Is(err, ErrRefreshReused):
		s.log.Warn("refresh token reused; session revoked", "user_id", sess.UserID, "session_id", sess.ID)
		s.pub.Publish(ctx, Event{Type: EventSessionRevoke, UserID: sess.UserID, Sessions: []int64{sess.ID}})
		return Credentials{}, bad
	case errors.Is(err, ErrNotFound):
		return Credentials{}, bad
	case err != nil:
		return Credentials{}, storeErr(err, "rotate refresh token")
	}
	return s.credentials(sess, token, now)
}

// sessionTouchEvery is how stale a session's last_seen_at may get before a request updates it.
const sessionTouchEvery = time.Minute

// Authenticate verifies an access token and that its session is still live. The session is
// read from the store on every call, so revocation takes effect at once on every instance.
func (s *Service) Authenticate(ctx context.Context, accessToken string) (Principal, error) {
	unauth := Errorf(CodeUnauthenticated, "missing, invalid or expired credentials")
	if accessToken == "" {
		return Principal{}, unauth
	}
	now := s.opts.Now()
	claims, err := s.tokens.Verify(accessToken, now)
	if err != nil {
		return Principal{}, unauth
	}
	sess, err := s.store.SessionByID(ctx, claims.SessionID)
	if errors.Is(err, ErrNotFound) {
		return Principal{}, unauth
	}
	if err != nil {
		return Principal{}, storeErr(err, "load session %d", claims.SessionID)
	}
	if sess.Revoked || sess.UserID != claims.UserID || !now.Before(sess.ExpiresAt) {
		return Principal{}, unauth
	}
	if now.Sub(sess.LastSeenAt) > sessionTouchEvery {
		if err := s.store.TouchSession(ctx, sess.ID, s.now()); err != nil {
			s.log.Warn("touch session", "session_id", sess.ID, "err", err)
		}
	}
	return Principal{UserID: sess.UserID, SessionID: sess.ID, Expires: claims.ExpiresAt}, nil
}

// Logout revokes the caller's session.
func (s *Service) Logout(ctx context.Context, p Principal) error {
	return s.revoke(ctx, p.UserID, p.SessionID)
}

// LogoutAll revokes every session of the caller.
func (s *Service) LogoutAll(ctx context.Context, p Principal) error {
	return s.revoke(ctx, p.UserID, 0)
}

// RevokeSession revokes one of the caller's sessions.
func (s *Service) RevokeSession(ctx context.Context, p Principal, sessionID int64) error {
	ids, err := s.store.RevokeSessions(ctx, p.UserID, sessionID, s.now())
	if err != nil {
		return storeErr(err, "revoke session %d", sessionID)
	}
	if len(ids) == 0 {
		return Errorf(CodeNotFound, "session %d not found", sessionID)
	}
	s.pub.Publish(ctx, Event{Type: EventSessionRevoke, UserID: p.UserID, Sessions: ids})
	return nil
}

func (s *Service) revoke(ctx context.Context, userID, sessionID int64) error {
	ids, err := s.store.RevokeSessions(ctx, userID, sessionID, s.now())
	if err != nil {
		return storeErr(err, "revoke sessions")
	}
	if len(ids) > 0 {
		s.pub.Publish(ctx, Event{Type: EventSessionRevoke, UserID: userID, Sessions: ids})
	}
	return nil
}

// Sessions lists the caller's live sessions, the current one marked.
func (s *Service) Sessions(ctx context.Context, p Principal) ([]SessionInfo, error) {
	list, err := s.store.ListSessions(ctx, p.UserID, s.now())
	if err != nil {
		return nil, storeErr(err, "list sessions")
	}
	out := make([]SessionInfo, len(list))
	for i, x := range list {
		out[i] = SessionInfo{ID: x.ID, UserAgent: x.UserAgent, CreatedAt: Time{x.CreatedAt}, LastSeenAt: Time{x.LastSeenAt}, Current: x.ID == p.SessionID}
	}
	return out, nil
}

// pruneEvery is how often RunJanitor deletes dead sessions.
const pruneEvery = time.Hour

// RunJanitor deletes sessions that expired or were revoked more than a day ago, and rotated
// refresh tokens older than the refresh lifetime (a reuse that old meets an expired session
// anyway), every hour until ctx ends. Several instances may run it at once.
func (s *Service) RunJanitor(ctx context.Context) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		now := s.now()
		n, err := s.store.PruneSessions(ctx, now.Add(-24*time.Hour), now.Add(-s.opts.RefreshTTL))
		if err != nil && ctx.Err() == nil {
			s.log.Warn("prune sessions", "err", err)
		} else if n > 0 {
			s.log.Info("pruned sessions", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// addrKey is what the per-address limits count a client address under: an IPv4 address (an
// IPv4-mapped IPv6 one as IPv4), or an IPv6 address's /64. A host or home is given a /64 whole,
// so keyed by the whole address every address of it would be a client of its own, and the
// limits on sign-ups and logins would hold no one on IPv6.
func addrKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		// A proxy may write "[v6]", "[v6]:port" or "v4:port".
		host := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
		if h, _, err := net.SplitHostPort(addr); err == nil {
			host = h
		}
		if a, err = netip.ParseAddr(host); err != nil {
			return addr
		}
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(64)
	if err != nil {
		return addr
	}
	return p.String()
}
