package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/wschat/chat/internal/chat"
)

// Running a group (owner, admins, members) and account settings (issue 14).

type updateChatIn struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		Title       *string `json:"title,omitempty" minLength:"1" maxLength:"100" doc:"the new title"`
		Public      *bool   `json:"public,omitempty" doc:"whether anyone may find and join the group"`
		Description *string `json:"description,omitempty" maxLength:"500" doc:"the new description (empty: none); line breaks allowed"`
		MentionAll  *string `json:"mention_all,omitempty" enum:"everyone,admins" doc:"who may mention @all: every member, or only the owner and admins (a setting: no system message, but a chat.updated frame)"`
	}
}

type memberPath struct {
	ID     int64 `path:"id" minimum:"1" doc:"the chat"`
	UserID int64 `path:"user_id" minimum:"1" doc:"the member"`
}

type setRoleIn struct {
	ID     int64 `path:"id" minimum:"1" doc:"the chat"`
	UserID int64 `path:"user_id" minimum:"1" doc:"the member"`
	Body   struct {
		Role string `json:"role" enum:"admin,member" doc:"admin: may rename the group, change it and manage members; member: may not"`
	}
}

type transferIn struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		UserID int64 `json:"user_id" minimum:"1" doc:"the member who becomes the owner"`
	}
}

type renameIn struct {
	Body struct {
		Name string `json:"name" minLength:"1" maxLength:"64" example:"First Last"`
	}
}

type passwordIn struct {
	Body struct {
		CurrentPassword string `json:"current_password" maxLength:"512" doc:"your password now"`
		NewPassword     string `json:"new_password" minLength:"8" maxLength:"128"`
		SignOutOthers   bool   `json:"sign_out_others,omitempty" doc:"revoke every other session (device) of the account"`
	}
}

type deleteAccountIn struct {
	Body struct {
		Password string `json:"password" maxLength:"512" doc:"your password, to confirm"`
	}
}

func (s *Server) adminRoutes() {
	visibility := []string{chat.CodeUnauthenticated, chat.CodeNotFound}
	admin := append([]string{chat.CodeNotMember, chat.CodePrivateChat, chat.CodeRateLimited}, visibility...)

	huma.Register(s.api, huma.Operation{
		OperationID: "update-chat", Method: http.MethodPatch, Path: "/api/v1/chats/{id}", Tags: []string{"groups"},
		Summary: "Rename a group, change its visibility, description or who may mention @all",
		Description: "The owner and admins only. Each change that differs from what is is a system message " +
			"(chat_renamed, visibility_changed, description_changed) followed by a chat.updated frame; the same values change nothing.",
		Security:  authSecurity,
		Responses: errorResponses(append(admin, chat.CodeNotAdmin, chat.CodeInvalid)...),
	}, func(ctx context.Context, in *updateChatIn) (*detailOut, error) {
		d, err := s.svc.UpdateChat(ctx, principal(ctx), in.ID, chat.ChatPatch{Title: in.Body.Title, Public: in.Body.Public,
			Description: in.Body.Description, MentionAll: in.Body.MentionAll})
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &detailOut{Status: http.StatusOK, Body: d}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "delete-chat", Method: http.MethodDelete, Path: "/api/v1/chats/{id}", Tags: []string{"groups"},
		Summary: "Delete a group",
		Description: "The owner only. The group's messages and members are deleted; every member's devices get chat.removed " +
			"(reason \"deleted\") and nothing more of it. Afterwards the group answers 404 to everyone.",
		DefaultStatus: http.StatusNoContent, Security: authSecurity,
		Responses: errorResponses(append(admin, chat.CodeNotOwner)...),
	}, func(ctx context.Context, in *idPath) (*struct{}, error) {
		if err := s.svc.DeleteChat(ctx, principal(ctx), in.ID); err != nil {
			return nil, s.problem(ctx, err)
		}
		return nil, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "remove-member", Method: http.MethodDelete, Path: "/api/v1/chats/{id}/members/{user_id}", Tags: []string{"groups"},
		Summary: "Remove a member from a group",
		Description: "The owner removes anyone; an admin removes members (not_owner for an admin, forbidden for the owner). " +
			"A member_removed system message; the removed user's devices get chat.removed (reason \"removed\") and nothing more " +
			"of the group; the others get member.left. To leave yourself, use POST /chats/{id}/leave.",
		DefaultStatus: http.StatusNoContent, Security: authSecurity,
		Responses: errorResponses(append(admin, chat.CodeNotAdmin, chat.CodeNotOwner, chat.CodeForbidden, chat.CodeInvalid)...),
	}, func(ctx context.Context, in *memberPath) (*struct{}, error) {
		if err := s.svc.RemoveMember(ctx, principal(ctx), in.ID, in.UserID); err != nil {
			return nil, s.problem(ctx, err)
		}
		return nil, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "set-role", Method: http.MethodPut, Path: "/api/v1/chats/{id}/members/{user_id}/role", Tags: []string{"groups"},
		Summary: "Make a member an admin, or an admin a member",
		Description: "The owner and admins promote; only the owner demotes an admin (an admin may step down). The owner's role " +
			"changes only by a transfer. A role_changed system message and a member.role frame; the role the member has already changes nothing.",
		Security:  authSecurity,
		Responses: errorResponses(append(admin, chat.CodeNotAdmin, chat.CodeNotOwner, chat.CodeForbidden, chat.CodeInvalid)...),
	}, func(ctx context.Context, in *setRoleIn) (*detailOut, error) {
		d, err := s.svc.SetRole(ctx, principal(ctx), in.ID, in.UserID, in.Body.Role)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &detailOut{Status: http.StatusOK, Body: d}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "transfer-chat", Method: http.MethodPost, Path: "/api/v1/chats/{id}/transfer", Tags: []string{"groups"},
		Summary:     "Hand a group over to another member",
		Description: "The owner only. The member becomes the owner and the former owner an admin: an owner_transferred system message and two member.role frames.",
		Security:    authSecurity,
		Responses:   errorResponses(append(admin, chat.CodeNotOwner, chat.CodeInvalid)...),
	}, func(ctx context.Context, in *transferIn) (*detailOut, error) {
		d, err := s.svc.TransferOwnership(ctx, principal(ctx), in.ID, in.Body.UserID)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &detailOut{Status: http.StatusOK, Body: d}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "rename-me", Method: http.MethodPatch, Path: "/api/v1/users/me", Tags: []string{"users"},
		Summary: "Change my display name",
		Description: "Every device of everyone who shares a chat with you, and yours, gets user.updated. " +
			"Counts as a chat change against the rate limit.",
		Security:  authSecurity,
		Responses: errorResponses(chat.CodeUnauthenticated, chat.CodeInvalid, chat.CodeRateLimited),
	}, func(ctx context.Context, in *renameIn) (*meOut, error) {
		u, err := s.svc.Rename(ctx, principal(ctx), in.Body.Name)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &meOut{Body: userOut(u)}, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "change-password", Method: http.MethodPost, Path: "/api/v1/users/me/password", Tags: []string{"users"},
		Summary: "Change my password",
		Description: "Needs the current password (403 wrong_password; each attempt counts against the login limit of your " +
			"email). With sign_out_others every other session is revoked and its WebSockets closed (4001).",
		DefaultStatus: http.StatusNoContent, Security: authSecurity,
		Responses: errorResponses(chat.CodeUnauthenticated, chat.CodeInvalid, chat.CodeWrongPassword, chat.CodeRateLimited),
	}, func(ctx context.Context, in *passwordIn) (*struct{}, error) {
		err := s.svc.ChangePassword(ctx, principal(ctx), chat.PasswordChange{Current: in.Body.CurrentPassword,
			New: in.Body.NewPassword, SignOutOthers: in.Body.SignOutOthers})
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return nil, nil
	})

	huma.Register(s.api, huma.Operation{
		OperationID: "delete-me", Method: http.MethodDelete, Path: "/api/v1/users/me", Tags: []string{"users"},
		Summary: "Delete my account",
		Description: "Needs the password (403 wrong_password). Your messages stay, signed \"Deleted user\"; you leave every " +
			"group (an owner hands it on); your private chats become read-only for the other member (sending answers 403 " +
			"peer_deleted); every session is revoked, its WebSockets closed (4001), the cookies cleared; your email is free " +
			"for a new account.",
		DefaultStatus: http.StatusNoContent, Security: authSecurity,
		Responses: errorResponses(chat.CodeUnauthenticated, chat.CodeInvalid, chat.CodeWrongPassword, chat.CodeRateLimited),
	}, func(ctx context.Context, in *deleteAccountIn) (*noContentOut, error) {
		if err := s.svc.DeleteAccount(ctx, principal(ctx), in.Body.Password); err != nil {
			return nil, s.problem(ctx, err)
		}
		return &noContentOut{SetCookie: s.clearedCookies(ctx)}, nil
	})
}
