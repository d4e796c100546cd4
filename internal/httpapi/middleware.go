package httpapi

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/wschat/chat/internal/chat"
)

const (
	accessCookie  = "access_token"
	refreshCookie = "refresh_token"
	refreshPath   = "/api/v1/auth"
)

// RequestInfo is what the middleware learns about a request; inner layers add the user.
type RequestInfo struct {
	Addr   string // the client's address, behind trusted proxies too
	HTTPS  bool
	Origin string // the server's own origin as the client reached it
	UserID int64
}

type infoKey struct{}

// Info returns the request's info, or an empty one outside the middleware.
func Info(ctx context.Context) *RequestInfo {
	if i, ok := ctx.Value(infoKey{}).(*RequestInfo); ok {
		return i
	}
	return &RequestInfo{}
}

// clientInfo works out the client's address and scheme, believing X-Forwarded-For and
// X-Forwarded-Proto only from trusted proxies.
func (s *Server) clientInfo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := &RequestInfo{HTTPS: r.TLS != nil}
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		info.Addr = host
		if s.trusted(host) {
			// The rightmost address that is not a trusted proxy is the client.
			hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
			for i := len(hops) - 1; i >= 0; i-- {
				h := strings.TrimSpace(hops[i])
				if h == "" {
					continue
				}
				info.Addr = h
				if !s.trusted(h) {
					break
				}
			}
			if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
				info.HTTPS = strings.EqualFold(p, "https")
			}
		}
		scheme := "http"
		if info.HTTPS {
			scheme = "https"
		}
		info.Origin = scheme + "://" + r.Host
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), infoKey{}, info)))
	})
}

func (s *Server) trusted(addr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// OriginAllowed reports whether a browser request comes from a page the server trusts: its own
// origin or one of the allowed ones. Requests without Origin and Referer (curl, native apps)
// are not from a foreign page and pass.
func (s *Server) OriginAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		if ref := r.Header.Get("Referer"); ref != "" {
			if u, err := url.Parse(ref); err == nil && u.Host != "" {
				origin = u.Scheme + "://" + u.Host
			} else {
				return false
			}
		}
	}
	if origin == "" {
		return r.Header.Get("Sec-Fetch-Site") != "cross-site"
	}
	return strings.EqualFold(origin, Info(r.Context()).Origin) || s.origins[origin]
}

// localHost refuses a request that reached a loopback address under a name that is not one
// of this machine's own (DNS rebinding): a foreign page whose DNS name was made to resolve to
// 127.0.0.1 is, to the browser, its own origin there, so the Origin check passes it, and it
// could sign in with the demo users' published password (or any it guesses, at the login
// limits) and read their chats from a server that listens on loopback precisely so that no
// one else can reach it. A loopback address is reached by an IP address, localhost or
// *.localhost; other names only through a trusted proxy (whose Host is the public one) or as
// the host of an origin in CHAT_ALLOWED_ORIGINS. A request without a local address (not from
// a listener) or without a Host is not a browser's and passes.
func (s *Server) localHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.foreignName(r) {
			writeProblem(w, newProblem(http.StatusForbidden, chat.CodeForbidden, "the Host "+strconv.Quote(r.Host)+
				" is not a name of this server: a server on a loopback address answers to an IP address, localhost, "+
				"the hosts of CHAT_ALLOWED_ORIGINS, and any name through a proxy of CHAT_TRUSTED_PROXIES"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) foreignName(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok || r.Host == "" {
		return false
	}
	ap, err := netip.ParseAddrPort(local.String())
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		return false
	}
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil || s.trusted(peer) {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if _, err := netip.ParseAddr(host); err == nil {
		return false
	}
	return host != "localhost" && !strings.HasSuffix(host, ".localhost") && !s.originHosts[host]
}

// mediaTypes rewrites a request's Content-Type into the form huma looks up byte for byte:
// the media type in lower case, without parameters (charset, profile). A media type is
// case-insensitive and may have spaces before its parameters (RFC 9110), so
// "Application/JSON ; charset=utf-8" is JSON; huma answered it 415. A multipart type keeps its
// parameters: the boundary is one of them.
func mediaTypes(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, params, err := mime.ParseMediaType(ct)
			switch {
			case strings.HasPrefix(mt, "multipart/"):
				if err == nil {
					r.Header.Set("Content-Type", mime.FormatMediaType(mt, params))
				}
			case err == nil || errors.Is(err, mime.ErrInvalidMediaParameter):
				r.Header.Set("Content-Type", mt)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// hsts keeps browsers on https for two years (HSTS preload lists ask at least one), for this
// host only: other hosts of the domain may serve plain http.
const hsts = "max-age=63072000"

// securityHeaders sets the headers every answer carries (and Strict-Transport-Security every
// answer over https, as the client reached us: a trusted proxy's X-Forwarded-Proto); csp is docsui.CSP, with the object
// store's origin among the image sources when downloads are redirected there (the web client
// shows thumbnails and images from it).
func securityHeaders(csp string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		if Info(r.Context()).HTTPS {
			// A browser that reached us over https once must never be sent to plain http (an
			// address typed without https://, a link, a stripping man in the middle), where
			// the sign-in page could be forged and its password read.
			h.Set("Strict-Transport-Security", hsts)
		}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// cors lets the pages of CHAT_ALLOWED_ORIGINS call the API from the browser, with credentials.
// Any other origin gets no Access-Control-Allow-* header, so the browser keeps every answer
// from it and refuses its preflights: CORS is closed unless an origin is listed.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.origins) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin == "" || !s.origins[origin] {
			next.ServeHTTP(w, r)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", "Retry-After")
		next.ServeHTTP(w, r)
	})
}

// DefaultWriteIdle is how long a write of an answer may wait for the client to take it
// (Options.WriteIdle): a client that stopped reading held the connection, its goroutine and
// what the answer held (a history page of up to 5 MB, an open file) for ever, as many times as
// it asked.
const DefaultWriteIdle = 30 * time.Second

// statusWriter remembers the status for the log line. It passes Flush and Hijack through (via
// Unwrap and http.ResponseController) so that WebSockets work behind it. Each write must get
// through within idle, a long one each writeChunk of it: the connection's write deadline moves
// ahead before each, so a long download keeps going as long as the client keeps taking bytes; what is still buffered after
// the last one goes out under its deadline too, and net/http clears the deadline when the
// request is done. A hijacked connection (a WebSocket) sets deadlines of its own.
type statusWriter struct {
	http.ResponseWriter
	status int
	rc     *http.ResponseController
	idle   time.Duration
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status >= 200 || w.status == http.StatusSwitchingProtocols {
		// Too late: the answer has begun. coder/websocket answers 500 after its 101 when the
		// client is gone before the hijack; net/http would only log "superfluous WriteHeader".
		return
	}
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// writeChunk is the most of an answer one write passes on under one deadline (statusWriter):
// an answer written whole (a JSON body of several MB: a history page, a long chat list) had
// idle for all of it, and a client on a slow link that kept taking its bytes was cut once
// the kernel's buffers were full, as one that had stopped reading.
const writeChunk = 64 << 10

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n := 0
	for {
		chunk := b[:min(len(b), writeChunk)]
		if err := w.rc.SetWriteDeadline(time.Now().Add(w.idle)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return n, fmt.Errorf("write an answer: set the write deadline: %w", err)
		}
		m, err := w.ResponseWriter.Write(chunk)
		n += m
		b = b[len(chunk):]
		if err != nil || len(b) == 0 {
			return n, err
		}
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests writes one line per request: method, route, status, duration, user. A panic in a
// handler becomes a 500 and a log line, never a crash.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, rc: http.NewResponseController(w), idle: cmp.Or(s.opts.WriteIdle, DefaultWriteIdle)}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic", "method", r.Method, "path", r.URL.Path, "panic", v)
				if sw.status == 0 {
					writeProblem(sw, newProblem(http.StatusInternalServerError, chat.CodeInternal, "internal error"))
				}
			}
			d := time.Since(start)
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			info := Info(r.Context())
			s.log.Info("request", "method", r.Method, "route", route, "status", sw.status,
				"duration_ms", float64(d.Microseconds())/1000, "user_id", info.UserID, "addr", info.Addr)
			if s.opts.Observe != nil {
				s.opts.Observe(route, sw.status, d)
			}
		}()
		r.Body = http.MaxBytesReader(sw, r.Body, s.bodyLimit(r))
		if r.ContentLength != 0 {
			// An answer given before the body was read (401, a refused Origin or Host, an
			// unknown path) is sent by net/http only after it has read the rest of a small
			// body: one that never came held the connection, unanswered, for ever. Huma's
			// reads, the login's and an upload's set deadlines of their own as they read.
			sw.rc.SetReadDeadline(time.Now().Add(loginBodyReadTimeout))
		}
		next.ServeHTTP(sw, r)
	})
}

type principalKey struct{}

// principal is the authenticated caller of an operation that declares security.
func principal(ctx context.Context) chat.Principal {
	p, _ := ctx.Value(principalKey{}).(chat.Principal)
	return p
}

// Credential returns the access token of a request: a Bearer header wins over the cookie. An
// Authorization header of another scheme is not ours (the Basic credentials a browser sends on
// every request to a site behind a password-protected proxy): the cookie still counts.
func Credential(r *http.Request) (token string, fromCookie bool) {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:]), false
	}
	if c, err := r.Cookie(accessCookie); err == nil {
		return c.Value, true
	}
	return "", false
}

// authenticate runs before every operation: it refuses state-changing requests from foreign
// pages when they carry our cookies, and authenticates operations that declare security.
func (s *Server) authenticate(ctx huma.Context, next func(huma.Context)) {
	r, _ := humago.Unwrap(ctx)
	token, fromCookie := Credential(r)
	safe := r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions
	_, noRefresh := r.Cookie(refreshCookie)
	carriesCookies := fromCookie || noRefresh == nil || strings.HasPrefix(r.URL.Path, refreshPath+"/")
	if !safe && carriesCookies && !s.OriginAllowed(r) {
		s.writeHumaProblem(ctx, newProblem(http.StatusForbidden, chat.CodeForbidden, "cross-origin request refused: the Origin is not allowed"))
		return
	}
	if len(ctx.Operation().Security) == 0 {
		next(ctx)
		return
	}
	p, err := s.svc.Authenticate(ctx.Context(), token)
	if err != nil {
		s.writeHumaProblem(ctx, s.problem(ctx.Context(), err))
		return
	}
	Info(ctx.Context()).UserID = p.UserID
	next(huma.WithValue(ctx, principalKey{}, p))
}

func (s *Server) writeHumaProblem(ctx huma.Context, p *Problem) {
	for k, v := range p.GetHeaders() {
		for _, x := range v {
			ctx.AppendHeader(k, x)
		}
	}
	ctx.SetHeader("Content-Type", "application/problem+json")
	ctx.SetStatus(p.Status)
	json.NewEncoder(ctx.BodyWriter()).Encode(p)
}

func (s *Server) secure(ctx context.Context) bool {
	switch s.opts.CookieSecure {
	case "true":
		return true
	case "false":
		return false
	}
	return Info(ctx).HTTPS
}

// authCookies are the cookies of fresh credentials.
func (s *Server) authCookies(ctx context.Context, c chat.Credentials) []http.Cookie {
	sec := s.secure(ctx)
	now := time.Now()
	return []http.Cookie{
		{Name: accessCookie, Value: c.AccessToken, Path: "/", HttpOnly: true, Secure: sec, SameSite: http.SameSiteLaxMode,
			MaxAge: int(c.AccessExpires.Sub(now).Seconds()), Expires: c.AccessExpires},
		{Name: refreshCookie, Value: c.RefreshToken, Path: refreshPath, HttpOnly: true, Secure: sec, SameSite: http.SameSiteStrictMode,
			MaxAge: int(c.RefreshExpires.Sub(now).Seconds()), Expires: c.RefreshExpires},
	}
}

// clearedCookies remove both cookies from the browser.
func (s *Server) clearedCookies(ctx context.Context) []http.Cookie {
	sec := s.secure(ctx)
	return []http.Cookie{
		{Name: accessCookie, Value: "", Path: "/", HttpOnly: true, Secure: sec, SameSite: http.SameSiteLaxMode, MaxAge: -1},
		{Name: refreshCookie, Value: "", Path: refreshPath, HttpOnly: true, Secure: sec, SameSite: http.SameSiteStrictMode, MaxAge: -1},
	}
}
