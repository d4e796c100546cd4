package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/wschat/chat/internal/chat"
)

type settingsIn struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		Notify     string     `json:"notify,omitempty" enum:"all,mentions,none" doc:"what I am notified of when not looking: every message, mentions of me only, or nothing; absent: unchanged"`
		MutedUntil *chat.Time `json:"muted_until,omitempty" nullable:"true" doc:"mute the chat until then; null unmutes; absent: unchanged"`
	}
	RawBody []byte
}

type settingsOut struct{ Body chat.ChatSettings }

func (s *Server) settingsRoutes() {
	huma.Register(s.api, huma.Operation{
		OperationID: "chat-settings", Method: http.MethodPatch, Path: "/api/v1/chats/{id}/settings", Tags: []string{"chats"},
		Summary: "My notification settings of a chat",
		Description: "Changes what is given and answers the settings. Every device of mine gets a chat.settings frame with them; " +
			"the chat list carries them too (notify, muted_until).",
		Security: authSecurity, Responses: errorResponses(chat.CodeUnauthenticated, chat.CodeInvalid, chat.CodeNotMember, chat.CodeNotFound),
	}, func(ctx context.Context, in *settingsIn) (*settingsOut, error) {
		c := chat.SettingsChange{ChatID: in.ID, Notify: in.Body.Notify}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(in.RawBody, &fields); err == nil {
			if v, ok := fields["muted_until"]; ok {
				c.SetMuted = true
				if !bytes.Equal(bytes.TrimSpace(v), []byte("null")) && in.Body.MutedUntil != nil {
					t := in.Body.MutedUntil.Time
					c.MutedUntil = &t
				}
			}
		}
		if c.MutedUntil != nil && c.MutedUntil.After(time.Now().AddDate(100, 0, 0)) {
			return nil, s.problem(ctx, chat.Invalid("body.muted_until", "muted_until is too far ahead; set notify to none to mute for good"))
		}
		st, err := s.svc.UpdateChatSettings(ctx, principal(ctx), c)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &settingsOut{Body: st}, nil
	})
}
