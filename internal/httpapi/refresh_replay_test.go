package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/wschat/chat/internal/chat"
)

// TestRefreshReplayAfterTheSessionEnds: the retry grace answers a token rotated less than 30 s
// ago from the client that rotated it with the session's current token; once the session has
// ended (a sign-out, signing out everywhere, a revocation from another device, a password change
// that signs the others out) neither that token nor its successor gets anything, even from that
// client within the grace, and no answer carries the successor. Nor does a token rotated twice
// since.
func TestRefreshReplayAfterTheSessionEnds(t *testing.T) {
	const agent = "Same Browser/1.0"
	bothBackends(t, envOptions{}, func(t *testing.T, e *env) {
		refresh := func(token string) resp {
			return e.do(t, req{method: "POST", path: refreshPath, body: map[string]string{"refresh_token": token},
				header: map[string]string{"User-Agent": agent}})
		}
		ends := []struct {
			name string
			end  func(t *testing.T, u *user, access string)
		}{
			{"logout", func(t *testing.T, u *user, access string) {
				e.do(t, req{method: "POST", path: "/api/v1/auth/logout", token: access}).want(t, http.StatusNoContent, "")
			}},
			{"logout-all", func(t *testing.T, u *user, access string) {
				e.do(t, req{method: "POST", path: "/api/v1/auth/logout-all", token: access}).want(t, http.StatusNoContent, "")
			}},
			{"revoked from another device", func(t *testing.T, u *user, access string) {
				other := decode[wireTokens](t, e.login(t, u, "Other Device/1.0")).AccessToken
				e.do(t, req{method: "DELETE", path: sessionsPath + "/" + strconv.FormatInt(u.SessionID, 10), token: other}).want(t, http.StatusNoContent, "")
			}},
			{"password changed elsewhere", func(t *testing.T, u *user, access string) {
				other := decode[wireTokens](t, e.login(t, u, "Other Device/1.0")).AccessToken
				e.do(t, req{method: "POST", path: "/api/v1/users/me/password", token: other, body: map[string]any{
					"current_password": u.Password, "new_password": "another password", "sign_out_others": true,
				}}).want(t, http.StatusNoContent, "")
			}},
		}
		for _, end := range ends {
			t.Run(end.name, func(t *testing.T) {
				u := e.newUser(t, "Rae")
				first := refresh(u.Refresh)
				first.want(t, http.StatusOK, "")
				next := cookie(first.cookies, "refresh_token")
				if next == nil {
					t.Fatal("no refresh_token cookie")
				}
				end.end(t, u, decode[wireTokens](t, first).AccessToken)
				for _, token := range []string{u.Refresh, next.Value} {
					got := refresh(token)
					got.want(t, http.StatusUnauthorized, chat.CodeInvalidRefresh)
					if c := cookie(got.cookies, "refresh_token"); bytes.Contains(got.body, []byte(next.Value)) || c != nil && c.Value == next.Value {
						t.Errorf("a refresh after the session ended hands out the session's token (body %s, cookies %v)", got.body, got.cookies)
					}
				}
			})
		}

		t.Run("rotated twice since", func(t *testing.T) {
			u := e.newUser(t, "Rob")
			second := refresh(u.Refresh)
			second.want(t, http.StatusOK, "")
			refresh(cookie(second.cookies, "refresh_token").Value).want(t, http.StatusOK, "")
			refresh(u.Refresh).want(t, http.StatusUnauthorized, chat.CodeInvalidRefresh)
			if s, err := e.store.SessionByID(context.Background(), u.SessionID); err != nil || !s.Revoked {
				t.Errorf("a token rotated twice since, from the client that rotated it: session %+v, %v; want it revoked", s, err)
			}
		})
	})
}
