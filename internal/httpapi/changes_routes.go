package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/wschat/chat/internal/chat"
)

// Messages that change (issue 13): edit, delete, reactions.

type messagePath struct {
	ID  int64 `path:"id" minimum:"1" doc:"the chat"`
	Seq int64 `path:"seq" minimum:"1" doc:"the message's seq"`
}

type editIn struct {
	ID   int64 `path:"id" minimum:"1" doc:"the chat"`
	Seq  int64 `path:"seq" minimum:"1" doc:"the message's seq"`
	Body struct {
		Body string `json:"body" minLength:"1" maxLength:"4000" doc:"the new body"`
	}
}

type reactionIn struct {
	ID    int64  `path:"id" minimum:"1" doc:"the chat"`
	Seq   int64  `path:"seq" minimum:"1" doc:"the message's seq"`
	Emoji string `path:"emoji" maxLength:"64" doc:"one emoji, URL-encoded (%F0%9F%91%8D for 👍); answered in its fully-qualified spelling (❤ U+2764 is ❤️ U+2764 U+FE0F)"`
}

type reactionOut struct {
	Body chat.ReactionUpdatedData
}

func (s *Server) changeRoutes() {
	member := []string{chat.CodeNotMember, chat.CodeUnauthenticated, chat.CodeNotFound, chat.CodeInvalid, chat.CodeRateLimited}

	huma.Register(s.api, huma.Operation{
		OperationID: "edit-message", Method: http.MethodPatch, Path: "/api/v1/chats/{id}/messages/{seq}", Tags: []string{"messages"},
		Summary: "Edit a message",
		Description: "The author only, within the edit window (CHAT_EDIT_WINDOW, default 24 h). The message gets edited_at and the chat's next rev; " +
			"every member's devices get message.updated. The same body changes nothing.",
		Security: authSecurity,
		Responses: errorResponses(append(member, chat.CodeNotAuthor, chat.CodeEditWindow, chat.CodeSystemMessage, chat.CodeMessageDeleted,
			chat.CodePeerDeleted)...),
	}, func(ctx context.Context, in *editIn) (*messageOut, error) {
		m, err := s.svc.EditMessage(ctx, principal(ctx), in.ID, in.Seq, in.Body.Body)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &messageOut{Status: http.StatusOK, Body: m}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "delete-message", Method: http.MethodDelete, Path: "/api/v1/chats/{id}/messages/{seq}", Tags: []string{"messages"},
		Summary: "Delete a message",
		Description: "The author, or a group's owner or an admin. The message keeps its seq and becomes a tombstone: deleted_at set, body and " +
			"reactions erased from the database. Every member's devices get message.updated. Deleting a deleted message changes nothing.",
		DefaultStatus: http.StatusNoContent, Security: authSecurity,
		Responses: errorResponses(append(member, chat.CodeNotAuthor, chat.CodeSystemMessage)...),
	}, func(ctx context.Context, in *messagePath) (*struct{}, error) {
		if err := s.svc.DeleteMessage(ctx, principal(ctx), in.ID, in.Seq); err != nil {
			return nil, s.problem(ctx, err)
		}
		return nil, nil
	})

	reactionErrors := errorResponses(append(member, chat.CodeSystemMessage, chat.CodeMessageDeleted, chat.CodeTooManyReactions, chat.CodePeerDeleted)...)
	for _, op := range []struct {
		id, method, summary string
		add                 bool
	}{
		{"add-reaction", http.MethodPut, "React to a message", true},
		{"remove-reaction", http.MethodDelete, "Take a reaction back", false},
	} {
		huma.Register(s.api, huma.Operation{
			OperationID: op.id, Method: op.method, Path: "/api/v1/chats/{id}/messages/{seq}/reactions/{emoji}", Tags: []string{"messages"},
			Summary: op.summary,
			Description: "Idempotent. The answer is the reaction's state (added: mine is there now; count: exact). A change takes the chat's " +
				"next rev and every member's devices get reaction.updated. A message carries at most 20 different emoji.",
			Security: authSecurity, Responses: reactionErrors,
		}, func(ctx context.Context, in *reactionIn) (*reactionOut, error) {
			d, err := s.svc.React(ctx, principal(ctx), in.ID, in.Seq, in.Emoji, op.add)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			return &reactionOut{Body: d}, nil
		})
	}
}
