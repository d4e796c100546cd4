package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/wschat/chat/internal/chat"
)

type searchIn struct {
	Q      string `query:"q" minLength:"1" maxLength:"200" doc:"words and \"quoted phrases\"; a message matches when its text holds every one of them, case-insensitively, anywhere (also inside words: Versicherung finds Krankenversicherungskarte, and Chinese or Japanese need no spaces)"`
	ChatID int64  `query:"chat_id" minimum:"0" doc:"search this chat only (one I am a member of)"`
	Before int64  `query:"before" minimum:"0" doc:"only messages with a smaller id: the next_before of the previous page"`
	Limit  int    `query:"limit" minimum:"1" maximum:"50" default:"20"`
}

type searchOut struct {
	Body struct {
		Hits       []chat.SearchHit `json:"hits" doc:"newest first"`
		NextBefore *int64           `json:"next_before" doc:"pass as before to get the next page; null when the search has looked through every message. A page may hold fewer hits than limit (even none) and still have a next page: a query of only one- or two-character terms looks through a bounded window of recent messages per page."`
	}
}

func (s *Server) searchRoutes() {
	huma.Register(s.api, huma.Operation{
		OperationID: "search-messages", Method: http.MethodGet, Path: "/api/v1/search/messages", Tags: []string{"messages"},
		Summary: "Search messages",
		Description: "Text messages of the chats I am a member of now (never of a chat I left or was never in), newest first, " +
			"each with its chat and the offsets of the matches in its body. Messages sent a moment ago may take up to a second to be found.",
		Security: authSecurity, Responses: errorResponses(chat.CodeUnauthenticated, chat.CodeInvalid, chat.CodeNotMember, chat.CodeNotFound, chat.CodeRateLimited),
	}, readLimited(s, func(ctx context.Context, in *searchIn) (*searchOut, error) {
		page, err := s.svc.SearchMessages(ctx, principal(ctx), chat.SearchInput{Q: in.Q, ChatID: in.ChatID, Before: in.Before, Limit: in.Limit})
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		out := &searchOut{}
		out.Body.Hits = page.Hits
		if page.NextBefore != 0 {
			out.Body.NextBefore = &page.NextBefore
		}
		return out, nil
	}))
}
