package httpapi

import (
	"context"
	"net/http"
	"reflect"

	"github.com/danielgtaylor/huma/v2"

	"github.com/wschat/chat/internal/chat"
)

// routes registers every operation of API.md; the whole surface is readable from here and
// auth_routes.go.
func (s *Server) routes() {
	s.authRoutes()
	s.userRoutes()
	s.chatRoutes()
	s.fileRoutes()
	s.adminRoutes()
	s.changeRoutes()
	s.searchRoutes()
	s.settingsRoutes()
	s.pushRoutes()
}

// readLimited wraps the handler of a read that queries the database: the caller's read budget
// (chat.Limits.ReadsPerUser) is taken first, and an exhausted one answers 429. The WebSocket
// endpoint's reads do not come through here.
func readLimited[I, O any](s *Server, h func(context.Context, *I) (*O, error)) func(context.Context, *I) (*O, error) {
	return func(ctx context.Context, in *I) (*O, error) {
		if err := s.svc.AllowRead(ctx, principal(ctx)); err != nil {
			return nil, s.problem(ctx, err)
		}
		return h(ctx, in)
	}
}

func (s *Server) schema(v any) *huma.Schema {
	return s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeOf(v), true, "")
}

type meOut struct{ Body UserOut }

type usersIn struct {
	Q     string `query:"q" maxLength:"100" doc:"prefix of a name or email, case-insensitive"`
	Limit int    `query:"limit" minimum:"1" maximum:"100" default:"20"`
}

type usersOut struct {
	Body struct {
		Users []chat.UserInfo `json:"users"`
	}
}

type userOutPub struct {
	Body struct {
		ID         int64      `json:"id"`
		Name       string     `json:"name"`
		Online     bool       `json:"online" doc:"connected now; true only for users who share a chat with you (to others everyone is offline)"`
		LastSeenAt *chat.Time `json:"last_seen_at,omitempty" doc:"when the user was last connected: only while they are offline, and only to users who share a chat with them"`
		Deleted    bool       `json:"deleted,omitempty" doc:"the user deleted their account (their name is \"Deleted user\")"`
	}
}

func (s *Server) userRoutes() {
	huma.Register(s.api, huma.Operation{
		OperationID: "me", Method: http.MethodGet, Path: "/api/v1/users/me", Tags: []string{"users"},
		Summary: "My account", Security: authSecurity, Responses: errorResponses(chat.CodeUnauthenticated),
	}, func(ctx context.Context, _ *sessionOnly) (*meOut, error) {
		u, err := s.svc.Me(ctx, principal(ctx))
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &meOut{Body: userOut(u)}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "search-users", Method: http.MethodGet, Path: "/api/v1/users", Tags: []string{"users"},
		Summary: "Find users", Description: "Case-insensitive prefix search on name or email.",
		Security: authSecurity, Responses: errorResponses(chat.CodeUnauthenticated, chat.CodeInvalid, chat.CodeRateLimited),
	}, readLimited(s, func(ctx context.Context, in *usersIn) (*usersOut, error) {
		users, err := s.svc.SearchUsers(ctx, principal(ctx), in.Q, in.Limit)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		out := &usersOut{}
		out.Body.Users = append(users, []chat.UserInfo{}...)
		return out, nil
	}))

	huma.Register(s.api, huma.Operation{
		OperationID: "get-user", Method: http.MethodGet, Path: "/api/v1/users/{id}", Tags: []string{"users"},
		Summary: "A user's profile", Security: authSecurity, Responses: errorResponses(chat.CodeUnauthenticated, chat.CodeNotFound, chat.CodeRateLimited),
	}, readLimited(s, func(ctx context.Context, in *idPath) (*userOutPub, error) {
		u, err := s.svc.User(ctx, principal(ctx), in.ID)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		out := &userOutPub{}
		out.Body.ID, out.Body.Name, out.Body.Online = u.ID, u.Name, u.Online
		out.Body.LastSeenAt, out.Body.Deleted = u.LastSeenAt, u.Deleted
		return out, nil
	}))
}

type chatsOut struct {
	Body struct {
		Chats []chat.ChatSummary `json:"chats"`
	}
}

type createChatIn struct {
	Body struct {
		Kind      string  `json:"kind" enum:"group,private"`
		Title     string  `json:"title,omitempty" maxLength:"100" doc:"required for a group"`
		Public    bool    `json:"public,omitempty" doc:"a public group can be found and joined by anyone"`
		MemberIDs []int64 `json:"member_ids,omitempty" maxItems:"100" minimum:"1" doc:"a group's first members, at most 100 (larger groups grow by invitation or joining; each first member counts as one chat change against the rate limit); for a private chat exactly the other user"`
	}
}

type detailOut struct {
	Status int
	Body   chat.ChatDetail
}

type discoverIn struct {
	Q string `query:"q" maxLength:"100" doc:"part of the title, case-insensitive"`
}

type discoverOut struct {
	Body struct {
		Chats []chat.DiscoveredChat `json:"chats"`
	}
}

type inviteIn struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		UserID int64 `json:"user_id" minimum:"1"`
	}
}

type historyIn struct {
	ID        int64 `path:"id" minimum:"1"`
	BeforeSeq int64 `query:"before_seq" minimum:"0" doc:"only messages with a smaller seq (paging back)"`
	AfterSeq  int64 `query:"after_seq" minimum:"0" doc:"only messages with a greater seq, oldest first (paging forward, catching up)"`
	Limit     int   `query:"limit" minimum:"1" maximum:"200" default:"50"`
	beforeSet bool
	afterSet  bool
}

// Resolve notes whether before_seq and after_seq were given at all: after_seq=0 pages from the
// start, before_seq=0 finds nothing (no seq is below 0). An empty value (before_seq=, what a
// client builds from a cursor it does not have yet) is not given, as huma reads it too.
func (h *historyIn) Resolve(ctx huma.Context) []error {
	u := ctx.URL()
	q := u.Query()
	h.beforeSet, h.afterSet = q.Get("before_seq") != "", q.Get("after_seq") != ""
	return nil
}

type historyOut struct {
	Body struct {
		Messages []chat.Message `json:"messages"`
		HasMore  bool           `json:"has_more" doc:"more messages exist in the paging direction"`
	}
}

type sendIn struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		Body       string  `json:"body,omitempty" maxLength:"4000" doc:"the text; may be empty (or left out) when the message carries files"`
		ClientID   string  `json:"client_id" minLength:"1" maxLength:"64" doc:"the sender's id for this message: a retry with the same client_id returns the first message"`
		FileIDs    []int64 `json:"file_ids,omitempty" maxItems:"10" doc:"files to attach, in order: each one the sender uploaded into this chat (POST /api/v1/chats/{id}/files) in the last 24 hours and not attached yet"`
		ReplyToSeq int64   `json:"reply_to_seq,omitempty" minimum:"0" doc:"the seq of the message of this chat that this one answers; the message carries reply_to, a quote of it"`
		Mentions   []int64 `json:"mentions,omitempty" maxItems:"50" doc:"ids of the members the message mentions (@name); users who are not members of the chat are dropped, and so is the sender"`
		MentionAll bool    `json:"mention_all,omitempty" doc:"@all: the message mentions every member; groups only, and only the owner and admins where the group keeps it to them (403 mention_all_refused)"`
	}
}

type messageOut struct {
	Status int
	Body   chat.Message
}

type readIn struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		Seq int64 `json:"seq" minimum:"0" doc:"every message up to this seq has been read"`
	}
}

type readOut struct{ Body chat.ReadState }

func (s *Server) chatRoutes() {
	visibility := []string{chat.CodeUnauthenticated, chat.CodeNotFound}
	member := append([]string{chat.CodeNotMember}, visibility...)

	huma.Register(s.api, huma.Operation{
		OperationID: "list-chats", Method: http.MethodGet, Path: "/api/v1/chats", Tags: []string{"chats"},
		Summary: "My chats", Description: "Every chat I am a member of, most recent activity first, with unread counts and the last message.",
		Security: authSecurity, Responses: errorResponses(chat.CodeUnauthenticated, chat.CodeRateLimited),
	}, readLimited(s, func(ctx context.Context, _ *sessionOnly) (*chatsOut, error) {
		chats, err := s.svc.Chats(ctx, principal(ctx))
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		out := &chatsOut{}
		out.Body.Chats = chats
		return out, nil
	}))

	huma.Register(s.api, huma.Operation{
		OperationID: "create-chat", Method: http.MethodPost, Path: "/api/v1/chats", Tags: []string{"chats"},
		Summary:       "Create a group or open a private chat",
		Description:   "A group: 201 with the new chat. A private chat: 201 when new, 200 with the existing chat of the pair.",
		DefaultStatus: http.StatusCreated, Security: authSecurity,
		Responses: withAnswer(errorResponses(chat.CodeUnauthenticated, chat.CodeInvalid, chat.CodeUserNotFound, chat.CodeForbidden, chat.CodeRateLimited),
			http.StatusOK, "the private chat of the pair, which already existed", s.schema(chat.ChatDetail{})),
	}, func(ctx context.Context, in *createChatIn) (*detailOut, error) {
		p := principal(ctx)
		var d chat.ChatDetail
		var err error
		status := http.StatusCreated
		if in.Body.Kind == chat.KindPrivate {
			var created bool
			if d, created, err = s.svc.OpenPrivate(ctx, p, in.Body.MemberIDs); err == nil && !created {
				status = http.StatusOK
			}
		} else {
			d, err = s.svc.CreateGroup(ctx, p, in.Body.Title, in.Body.Public, in.Body.MemberIDs)
		}
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &detailOut{Status: status, Body: d}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "discover-chats", Method: http.MethodGet, Path: "/api/v1/chats/discover", Tags: []string{"chats"},
		Summary: "Find public groups", Description: "Public groups I am not a member of, by title.",
		Security: authSecurity, Responses: errorResponses(chat.CodeUnauthenticated, chat.CodeInvalid, chat.CodeRateLimited),
	}, readLimited(s, func(ctx context.Context, in *discoverIn) (*discoverOut, error) {
		chats, err := s.svc.Discover(ctx, principal(ctx), in.Q)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		out := &discoverOut{}
		out.Body.Chats = chats
		return out, nil
	}))

	huma.Register(s.api, huma.Operation{
		OperationID: "get-chat", Method: http.MethodGet, Path: "/api/v1/chats/{id}", Tags: []string{"chats"},
		Summary: "A chat with its members", Description: "404 for a chat that does not exist or that I may not see.",
		Security: authSecurity, Responses: errorResponses(append(visibility, chat.CodeRateLimited)...),
	}, readLimited(s, func(ctx context.Context, in *idPath) (*detailOut, error) {
		d, err := s.svc.Chat(ctx, principal(ctx), in.ID)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &detailOut{Status: http.StatusOK, Body: d}, nil
	}))

	huma.Register(s.api, huma.Operation{
		OperationID: "invite", Method: http.MethodPost, Path: "/api/v1/chats/{id}/members", Tags: []string{"chats"},
		Summary: "Invite a user to a group", Description: "Any member may invite; the invitee joins at once.",
		DefaultStatus: http.StatusCreated, Security: authSecurity,
		Responses: errorResponses(append(member, chat.CodeAlreadyMember, chat.CodePrivateChat, chat.CodeUserNotFound, chat.CodeForbidden, chat.CodeRateLimited)...),
	}, func(ctx context.Context, in *inviteIn) (*detailOut, error) {
		d, err := s.svc.Invite(ctx, principal(ctx), in.ID, in.Body.UserID)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &detailOut{Status: http.StatusCreated, Body: d}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "join", Method: http.MethodPost, Path: "/api/v1/chats/{id}/join", Tags: []string{"chats"},
		Summary: "Join a public group", Security: authSecurity,
		Responses: errorResponses(append(visibility, chat.CodeAlreadyMember, chat.CodeForbidden, chat.CodeRateLimited)...),
	}, func(ctx context.Context, in *idPath) (*detailOut, error) {
		d, err := s.svc.Join(ctx, principal(ctx), in.ID)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &detailOut{Status: http.StatusOK, Body: d}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "leave", Method: http.MethodPost, Path: "/api/v1/chats/{id}/leave", Tags: []string{"chats"},
		Summary: "Leave a group", Description: "Private chats cannot be left.",
		DefaultStatus: http.StatusNoContent, Security: authSecurity,
		Responses: errorResponses(append(member, chat.CodePrivateChat)...),
	}, func(ctx context.Context, in *idPath) (*struct{}, error) {
		if err := s.svc.Leave(ctx, principal(ctx), in.ID); err != nil {
			return nil, s.problem(ctx, err)
		}
		return nil, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "history", Method: http.MethodGet, Path: "/api/v1/chats/{id}/messages", Tags: []string{"messages"},
		Summary:     "Message history",
		Description: "Ascending by seq. Without cursors: the newest `limit`. With before_seq: the newest `limit` below it (has_more: older exist). With after_seq: the oldest `limit` above it (has_more: newer exist; with before_seq too, newer below before_seq). An empty parameter is the same as none.",
		Security:    authSecurity, Responses: errorResponses(append(member, chat.CodeInvalid, chat.CodeRateLimited)...),
	}, readLimited(s, func(ctx context.Context, in *historyIn) (*historyOut, error) {
		msgs, more, err := s.svc.History(ctx, principal(ctx), in.ID, chat.HistoryPage{
			BeforeSeq: in.BeforeSeq, AfterSeq: in.AfterSeq, HasBefore: in.beforeSet, HasAfter: in.afterSet, Limit: in.Limit})
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		out := &historyOut{}
		out.Body.Messages, out.Body.HasMore = msgs, more
		return out, nil
	}))

	huma.Register(s.api, huma.Operation{
		OperationID: "send", Method: http.MethodPost, Path: "/api/v1/chats/{id}/messages", Tags: []string{"messages"},
		Summary:       "Send a message",
		Description:   "201 with the stored message; 200 with the original when this sender already sent this client_id in this chat. A message has a body, files (file_ids), or both; a file that cannot be attached is a 422 naming it (file_not_found, file_not_yours, file_other_chat, file_attached, file_expired) and nothing is stored.",
		DefaultStatus: http.StatusCreated, Security: authSecurity,
		Responses: withAnswer(errorResponses(append(member, chat.CodeInvalid, chat.CodeRateLimited, chat.CodeFileNotFound, chat.CodeFileNotYours,
			chat.CodeFileOtherChat, chat.CodeFileAttached, chat.CodeFileExpired, chat.CodeMentionAllRefused, chat.CodePeerDeleted)...),
			http.StatusOK, "a retry: this sender already sent this client_id in this chat; the message as it stands", s.schema(chat.Message{})),
	}, func(ctx context.Context, in *sendIn) (*messageOut, error) {
		m, created, err := s.svc.Send(ctx, principal(ctx), chat.SendInput{ChatID: in.ID, Body: in.Body.Body, ClientID: in.Body.ClientID,
			FileIDs: in.Body.FileIDs, ReplyToSeq: in.Body.ReplyToSeq, Mentions: in.Body.Mentions, MentionAll: in.Body.MentionAll})
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		status := http.StatusCreated
		if !created {
			status = http.StatusOK
		}
		return &messageOut{Status: status, Body: m}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "mark-read", Method: http.MethodPost, Path: "/api/v1/chats/{id}/read", Tags: []string{"messages"},
		Summary:     "Mark messages read",
		Description: "Moves my read progress forward to seq (never back; clamped to the chat's last seq).",
		Security:    authSecurity, Responses: errorResponses(append(member, chat.CodeInvalid, chat.CodeRateLimited)...),
	}, func(ctx context.Context, in *readIn) (*readOut, error) {
		st, err := s.svc.MarkRead(ctx, principal(ctx), in.ID, in.Body.Seq)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &readOut{Body: st}, nil
	})
}
