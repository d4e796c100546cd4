package httpapi_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/wschat/chat/internal/testlog"
)

// TestSecretsNeverEchoed: a rejected request never carries its password or token back in the
// answer (huma echoes the offending value of a failed validation: a too-short password came
// back as "value"), and never writes it to the log. One case per endpoint that takes a secret.
func TestSecretsNeverEchoed(t *testing.T) {
	logs := &testlog.Buffer{}
	bothBackends(t, envOptions{logs: logs}, func(t *testing.T, e *env) {
		ann := e.newUser(t, "Ann")
		long := "Long-" + strings.Repeat("x", 130) // over the 128 characters a password may have
		cases := []struct {
			name   string
			secret string
			r      req
			status int
		}{
			{"register, password too short", "Sh0rt!7", req{method: "POST", path: "/api/v1/auth/register",
				body: map[string]string{"email": "new@example.test", "name": "New", "password": "Sh0rt!7"}}, http.StatusUnprocessableEntity},
			{"register, password too long", long, req{method: "POST", path: "/api/v1/auth/register",
				body: map[string]string{"email": "new@example.test", "name": "New", "password": long}}, http.StatusUnprocessableEntity},
			{"register, bad name beside a password", "Sekr3t-beside-a-bad-name", req{method: "POST", path: "/api/v1/auth/register",
				body: map[string]string{"email": "new@example.test", "name": "", "password": "Sekr3t-beside-a-bad-name"}}, http.StatusUnprocessableEntity},
			{"register, email taken", "Sekr3t-taken-email", req{method: "POST", path: "/api/v1/auth/register",
				body: map[string]string{"email": ann.Email, "name": "Again", "password": "Sekr3t-taken-email"}}, http.StatusConflict},
			{"login JSON, wrong password", "Sekr3t-wrong-json", req{method: "POST", path: "/api/v1/auth/login",
				body: map[string]string{"email": ann.Email, "password": "Sekr3t-wrong-json"}}, http.StatusUnauthorized},
			{"login JSON, no email", "Sekr3t-no-email", req{method: "POST", path: "/api/v1/auth/login",
				body: map[string]string{"password": "Sekr3t-no-email"}}, http.StatusUnprocessableEntity},
			{"login JSON, malformed", "Sekr3t-malformed", req{method: "POST", path: "/api/v1/auth/login",
				body: `{"email":"` + ann.Email + `","password":"Sekr3t-malformed"`}, http.StatusUnprocessableEntity},
			{"login JSON, password too long", long, req{method: "POST", path: "/api/v1/auth/login",
				body: map[string]string{"email": ann.Email, "password": long}}, http.StatusUnauthorized},
			{"login form, wrong password", "Sekr3t-wrong-form", req{method: "POST", path: "/api/v1/auth/login",
				body: "username=" + ann.Email + "&password=Sekr3t-wrong-form", contentType: "application/x-www-form-urlencoded"}, http.StatusUnauthorized},
			{"login form, no username", "Sekr3t-no-username", req{method: "POST", path: "/api/v1/auth/login",
				body: "password=Sekr3t-no-username", contentType: "application/x-www-form-urlencoded"}, http.StatusUnprocessableEntity},
			{"login form, bad grant type", "Sekr3t-grant", req{method: "POST", path: "/api/v1/auth/login",
				body: "username=" + ann.Email + "&password=Sekr3t-grant&grant_type=client_credentials", contentType: "application/x-www-form-urlencoded"}, http.StatusUnprocessableEntity},
			{"login form, malformed", "Sekr3t-escape", req{method: "POST", path: "/api/v1/auth/login",
				body: "username=" + ann.Email + "&password=Sekr3t-escape%zz", contentType: "application/x-www-form-urlencoded"}, http.StatusUnprocessableEntity},
			{"refresh body, unknown token", "Sekr3t-refresh-token-unknown", req{method: "POST", path: "/api/v1/auth/refresh",
				body: map[string]string{"refresh_token": "Sekr3t-refresh-token-unknown"}}, http.StatusUnauthorized},
			{"refresh body, token too long", long, req{method: "POST", path: "/api/v1/auth/refresh",
				body: map[string]string{"refresh_token": long}}, http.StatusUnauthorized},
			{"refresh body, malformed", "Sekr3t-refresh-malformed", req{method: "POST", path: "/api/v1/auth/refresh",
				body: `{"refresh_token":"Sekr3t-refresh-malformed"`}, http.StatusUnprocessableEntity},
			{"refresh body, a fixture's token", ann.Refresh, req{method: "POST", path: "/api/v1/auth/refresh",
				body: map[string]string{"refresh_token": ann.Refresh}}, http.StatusOK},
			// An unexpected property is reported at "body.x" with the whole object as its value:
			// the secret beside it must not come back.
			{"register, unexpected property", "Sekr3t-beside-x", req{method: "POST", path: "/api/v1/auth/register",
				body: map[string]any{"email": "new@example.test", "name": "New", "password": "Sekr3t-beside-x", "x": 1}}, http.StatusUnprocessableEntity},
			{"refresh body, unexpected property", "Sekr3t-refresh-beside-x", req{method: "POST", path: "/api/v1/auth/refresh",
				body: map[string]any{"refresh_token": "Sekr3t-refresh-beside-x", "x": 1}}, http.StatusUnprocessableEntity},
			{"refresh body, a secret inside the unexpected property", "Sekr3t-nested", req{method: "POST", path: "/api/v1/auth/refresh",
				body: map[string]any{"x": map[string]any{"deeper": []any{map[string]string{"access_token": "Sekr3t-nested"}}}}}, http.StatusUnprocessableEntity},
			{"password change, unexpected property (current)", "Sekr3t-current-beside-x", req{method: "POST", path: "/api/v1/users/me/password", token: ann.Token,
				body: map[string]any{"current_password": "Sekr3t-current-beside-x", "new_password": "Sekr3t-new-beside-x", "x": 1}}, http.StatusUnprocessableEntity},
			{"password change, unexpected property (new)", "Sekr3t-new-beside-x", req{method: "POST", path: "/api/v1/users/me/password", token: ann.Token,
				body: map[string]any{"current_password": "Sekr3t-current-beside-x", "new_password": "Sekr3t-new-beside-x", "x": 1}}, http.StatusUnprocessableEntity},
			{"account deletion, unexpected property", "Sekr3t-delete-beside-x", req{method: "DELETE", path: "/api/v1/users/me", token: ann.Token,
				body: map[string]any{"password": "Sekr3t-delete-beside-x", "x": 1}}, http.StatusUnprocessableEntity},
		}
		for _, c := range cases {
			got := e.do(t, c.r)
			if c.status != 0 && got.status != c.status {
				t.Errorf("%s: got %d %s, want %d", c.name, got.status, got.body, c.status)
			}
			if bytes.Contains(got.body, []byte(c.secret)) {
				t.Errorf("%s: the answer echoes the secret: %s", c.name, got.body)
			}
			for k, v := range got.header {
				if k != "Set-Cookie" && strings.Contains(strings.Join(v, " "), c.secret) {
					t.Errorf("%s: header %s echoes the secret", c.name, k)
				}
			}
		}
		// Replaying the rotated token (a retry, then from another client) revokes the session;
		// the answers still must not carry it.
		for i, header := range []map[string]string{nil, {"User-Agent": "Another Agent/1.0"}} {
			got := e.do(t, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refresh_token": ann.Refresh}, header: header})
			if bytes.Contains(got.body, []byte(ann.Refresh)) {
				t.Errorf("replay %d of a rotated refresh token: the answer echoes it: %s", i+1, got.body)
			}
			if want := []int{http.StatusOK, http.StatusUnauthorized}[i]; got.status != want {
				t.Errorf("replay %d of a rotated refresh token: got %d, want %d", i+1, got.status, want)
			}
		}
		for _, c := range cases {
			if strings.Contains(logs.String(), c.secret) {
				t.Errorf("%s: the log holds the secret", c.name)
			}
		}
	})
}
