package httpapi

import (
	"errors"
	"net/http"

	"github.com/wschat/chat/internal/chat"
)

// Admit authenticates a WebSocket handshake: the Origin must be ours or allowed (no cross-site
// WebSocket hijacking), and the access token comes from the cookie, the Bearer header or, for
// clients that cannot set either, the access_token query parameter.
func (s *Server) Admit(r *http.Request) (chat.Principal, int, error) {
	if r.Header.Get("Origin") != "" && !s.OriginAllowed(r) {
		return chat.Principal{}, http.StatusForbidden, chat.Errorf(chat.CodeForbidden, "the Origin %q is not allowed", r.Header.Get("Origin"))
	}
	token, _ := Credential(r)
	if token == "" {
		token = r.URL.Query().Get("access_token")
	}
	p, err := s.svc.Authenticate(r.Context(), token)
	if err != nil {
		var e *chat.Error
		if errors.As(err, &e) {
			return chat.Principal{}, statusOf(e.Code), err
		}
		return chat.Principal{}, http.StatusInternalServerError, err
	}
	Info(r.Context()).UserID = p.UserID
	return p, 0, nil
}

// Refuse answers a refused handshake with a problem document: a domain error (Admit's) with its
// own status, any other (the WebSocket library's refusal of a malformed handshake) with status.
func (s *Server) Refuse(w http.ResponseWriter, r *http.Request, status int, err error) {
	var e *chat.Error
	if !errors.As(err, &e) && status >= 400 && status < 500 {
		writeProblem(w, newProblem(status, codeOf(status), err.Error()))
		return
	}
	writeProblem(w, s.problem(r.Context(), err))
}
