package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"

	"github.com/wschat/chat/internal/chat"
)

// UserOut is the caller's own account.
type UserOut struct {
	ID        int64     `json:"id"`
	Email     string    `json:"email" example:"first@example.com"`
	Name      string    `json:"name" example:"First"`
	CreatedAt chat.Time `json:"created_at"`
}

func userOut(u chat.User) UserOut {
	return UserOut{ID: u.ID, Email: u.Email, Name: u.Name, CreatedAt: chat.Time{Time: u.CreatedAt}}
}

// TokenBody is the answer of login and refresh.
type TokenBody struct {
	User        *UserOut `json:"user,omitempty"`
	AccessToken string   `json:"access_token"`
	TokenType   string   `json:"token_type" example:"bearer"`
	ExpiresIn   int      `json:"expires_in" example:"900" doc:"seconds until the access token expires"`
}

type tokenOut struct {
	SetCookie []http.Cookie `header:"Set-Cookie"`
	Body      TokenBody
}

type registerIn struct {
	UserAgent string `header:"User-Agent"`
	Body      struct {
		Email    string `json:"email" maxLength:"254" format:"email" example:"fourth@example.com"`
		Name     string `json:"name" minLength:"1" maxLength:"64" example:"Fourth"`
		Password string `json:"password" minLength:"8" maxLength:"128" example:"correct horse battery"`
	}
}

type loginIn struct {
	UserAgent   string `header:"User-Agent"`
	ContentType string `header:"Content-Type"`
	RawBody     []byte
}

// loginBodyReadTimeout is how long a login's body may take to arrive (408 after), huma's
// default for the other operations.
const loginBodyReadTimeout = 5 * time.Second

// LoginJSON is the JSON form of a login.
type LoginJSON struct {
	// Other fields are ignored, as OAuth2 clients send scope and client_id with the form.
	_        struct{} `additionalProperties:"true"`
	Email    string   `json:"email" example:"first@example.com"`
	Password string   `json:"password" example:"password"`
}

// LoginForm is the OAuth2 password-flow form of a login (what the docs page's Authorize sends).
type LoginForm struct {
	// Other fields (scope, client_id, client_secret: what OAuth2 clients send) are ignored.
	_         struct{} `additionalProperties:"true"`
	Username  string   `json:"username" example:"first@example.com"`
	Password  string   `json:"password" example:"password"`
	GrantType string   `json:"grant_type,omitempty" example:"password"`
}

type refreshIn struct {
	UserAgent string `header:"User-Agent"`
	Cookie    string `cookie:"refresh_token"`
	// The body is optional (a pointer, so huma does not require it): {refresh_token} for
	// clients that keep the token themselves; browsers send none and use the cookie.
	Body *struct {
		RefreshToken string `json:"refresh_token,omitempty"`
	}
}

type sessionOnly struct{}

type noContentOut struct {
	SetCookie []http.Cookie `header:"Set-Cookie"`
}

type sessionsOut struct {
	Body struct {
		Sessions []chat.SessionInfo `json:"sessions"`
	}
}

type idPath struct {
	ID int64 `path:"id" minimum:"1" doc:"an id"`
}

var authSecurity = []map[string][]string{{"oauth2": {}}, {"bearer": {}}, {"cookie": {}}}

func (s *Server) authRoutes() {
	huma.Register(s.api, huma.Operation{
		OperationID: "register", Method: http.MethodPost, Path: "/api/v1/auth/register", Tags: []string{"auth"},
		Summary: "Create an account", Description: "Creates an account and signs it in on this device, like login.",
		DefaultStatus: http.StatusCreated, Errors: nil,
		Responses: errorResponses(chat.CodeEmailTaken, chat.CodeInvalid, chat.CodeSignupDisabled, chat.CodeRateLimited),
	}, func(ctx context.Context, in *registerIn) (*tokenOut, error) {
		u, creds, err := s.svc.Register(ctx, chat.SignIn{Email: in.Body.Email, Name: in.Body.Name, Password: in.Body.Password,
			UserAgent: in.UserAgent, Addr: Info(ctx).Addr})
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return s.tokens(ctx, &u, creds), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "login", Method: http.MethodPost, Path: "/api/v1/auth/login", Tags: []string{"auth"},
		Summary:     "Sign in",
		Description: "Starts a session (one device). Takes JSON {email, password} or the OAuth2 password form (username, password). Sets the access_token and refresh_token cookies.",
		RequestBody: &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
			"application/json":                  {Schema: s.schema(LoginJSON{})},
			"application/x-www-form-urlencoded": {Schema: s.schema(LoginForm{})},
		}},
		// parseLogin validates both media types; huma would check every body against the JSON
		// schema and answer 415 to the form.
		SkipValidateBody: true,
		// huma bounds the read of a Body (5 s), not of a RawBody: without this, a login whose
		// body never comes would hold its connection for ever.
		BodyReadTimeout: loginBodyReadTimeout,
		Responses: errorResponses(chat.CodeInvalidCredentials, chat.CodeRateLimited, chat.CodeInvalid,
			codeOf(http.StatusUnsupportedMediaType)),
	}, func(ctx context.Context, in *loginIn) (*tokenOut, error) {
		email, password, err := parseLogin(in.ContentType, in.RawBody)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		u, creds, err := s.svc.Login(ctx, chat.SignIn{Email: email, Password: password, UserAgent: in.UserAgent, Addr: Info(ctx).Addr})
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return s.tokens(ctx, &u, creds), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "refresh", Method: http.MethodPost, Path: "/api/v1/auth/refresh", Tags: []string{"auth"},
		Summary:     "Rotate the refresh token",
		Description: "Takes the refresh_token cookie (or {refresh_token}) and returns a new access token with rotated cookies. A refresh token works once: presenting a rotated one again revokes its session, except a retry of the last rotation within 30 s from the same client (user agent and address): an answer lost, or tabs refreshing at once, which gets the same new refresh token again.",
		Responses:   errorResponses(chat.CodeInvalidRefresh),
	}, func(ctx context.Context, in *refreshIn) (*tokenOut, error) {
		token := in.Cookie
		if in.Body != nil && in.Body.RefreshToken != "" {
			token = in.Body.RefreshToken
		}
		creds, err := s.svc.Refresh(ctx, token, chat.Client{UserAgent: in.UserAgent, Addr: Info(ctx).Addr})
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return s.tokens(ctx, nil, creds), nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "logout", Method: http.MethodPost, Path: "/api/v1/auth/logout", Tags: []string{"auth"},
		Summary: "Sign out this device", Description: "Revokes this session, clears the cookies and closes this session's WebSockets.",
		DefaultStatus: http.StatusNoContent, Security: authSecurity, Responses: errorResponses(chat.CodeUnauthenticated),
	}, func(ctx context.Context, _ *sessionOnly) (*noContentOut, error) {
		if err := s.svc.Logout(ctx, principal(ctx)); err != nil {
			return nil, s.problem(ctx, err)
		}
		return &noContentOut{SetCookie: s.clearedCookies(ctx)}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "logout-all", Method: http.MethodPost, Path: "/api/v1/auth/logout-all", Tags: []string{"auth"},
		Summary: "Sign out every device", Description: "Revokes every session of the user and closes all their WebSockets.",
		DefaultStatus: http.StatusNoContent, Security: authSecurity, Responses: errorResponses(chat.CodeUnauthenticated),
	}, func(ctx context.Context, _ *sessionOnly) (*noContentOut, error) {
		if err := s.svc.LogoutAll(ctx, principal(ctx)); err != nil {
			return nil, s.problem(ctx, err)
		}
		return &noContentOut{SetCookie: s.clearedCookies(ctx)}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "list-sessions", Method: http.MethodGet, Path: "/api/v1/auth/sessions", Tags: []string{"auth"},
		Summary: "List my devices", Security: authSecurity, Responses: errorResponses(chat.CodeUnauthenticated, chat.CodeRateLimited),
	}, readLimited(s, func(ctx context.Context, _ *sessionOnly) (*sessionsOut, error) {
		list, err := s.svc.Sessions(ctx, principal(ctx))
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		out := &sessionsOut{}
		out.Body.Sessions = list
		return out, nil
	}))

	huma.Register(s.api, huma.Operation{
		OperationID: "revoke-session", Method: http.MethodDelete, Path: "/api/v1/auth/sessions/{id}", Tags: []string{"auth"},
		Summary: "Sign out one device", Description: "Revokes one of my sessions and closes its WebSockets.",
		DefaultStatus: http.StatusNoContent, Security: authSecurity, Responses: errorResponses(chat.CodeUnauthenticated, chat.CodeNotFound),
	}, func(ctx context.Context, in *idPath) (*noContentOut, error) {
		p := principal(ctx)
		if err := s.svc.RevokeSession(ctx, p, in.ID); err != nil {
			return nil, s.problem(ctx, err)
		}
		out := &noContentOut{}
		if in.ID == p.SessionID {
			out.SetCookie = s.clearedCookies(ctx)
		}
		return out, nil
	})
}

func (s *Server) tokens(ctx context.Context, u *chat.User, c chat.Credentials) *tokenOut {
	out := &tokenOut{SetCookie: s.authCookies(ctx, c)}
	out.Body = TokenBody{AccessToken: c.AccessToken, TokenType: "bearer", ExpiresIn: int(c.AccessTTL.Seconds())}
	if u != nil {
		uo := userOut(*u)
		out.Body.User = &uo
	}
	return out
}

// textRefused is the problem of a body whose text decoding would change, as huma's decoding
// answers it for every other operation (unmarshalJSON): 422 invalid, the reason at body.
func textRefused(err error) *Problem {
	p := newProblem(http.StatusUnprocessableEntity, chat.CodeInvalid, "the request is invalid")
	p.Errors = []*huma.ErrorDetail{{Location: "body", Message: err.Error()}}
	return p
}

// parseLogin reads a login body: JSON {email, password} or the OAuth2 password form.
func parseLogin(contentType string, body []byte) (email, password string, err error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return "", "", chat.Invalid("body", "the form is malformed")
		}
		if gt := v.Get("grant_type"); gt != "" && gt != "password" {
			return "", "", chat.Invalid("body.grant_type", "grant_type must be password")
		}
		for k, vals := range v {
			// Each value alone: halves of one character in two values are UTF-8 only joined.
			if !utf8.ValidString(k) || slices.ContainsFunc(vals, func(s string) bool { return !utf8.ValidString(s) }) {
				return "", "", textRefused(errors.New("the body is not valid UTF-8"))
			}
		}
		email, password = v.Get("username"), v.Get("password")
		if email == "" {
			return "", "", chat.Invalid("body.username", "username (your email) is required")
		}
	case "application/json", "":
		// As every other JSON body (chat.DecodeJSON): a password not UTF-8 was read with U+FFFD
		// in place of each bad byte, and checked as that (401).
		if err := chat.CheckJSONText(body, "the body"); err != nil {
			return "", "", textRefused(err)
		}
		var b LoginJSON
		if err := json.Unmarshal(body, &b); err != nil {
			return "", "", chat.Invalid("body", "the body must be JSON {\"email\": \"...\", \"password\": \"...\"}")
		}
		email, password = b.Email, b.Password
		if email == "" {
			return "", "", chat.Invalid("body.email", "email is required")
		}
	default:
		// 415, as huma answers every other operation a body it cannot read.
		return "", "", newProblem(http.StatusUnsupportedMediaType, codeOf(http.StatusUnsupportedMediaType),
			"send application/json or application/x-www-form-urlencoded")
	}
	if password == "" {
		return "", "", chat.Invalid("body.password", "password is required")
	}
	return email, password, nil
}
