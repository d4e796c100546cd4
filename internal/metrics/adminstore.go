package metrics

import (
	"context"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// The chat.AdminStore methods of the timing store (store.go).

func (st store) UpdateChat(ctx context.Context, u chat.ChatUpdate) ([]chat.Message, error) {
	start := time.Now()
	r0, err := st.s.UpdateChat(ctx, u)
	st.observe("UpdateChat", start, err)
	return r0, err
}

func (st store) RemoveFromChat(ctx context.Context, r chat.Removal) (chat.Removed, error) {
	start := time.Now()
	r0, err := st.s.RemoveFromChat(ctx, r)
	st.observe("RemoveFromChat", start, err)
	return r0, err
}

func (st store) SetRole(ctx context.Context, r chat.RoleChange) (chat.Message, bool, error) {
	start := time.Now()
	r0, r1, err := st.s.SetRole(ctx, r)
	st.observe("SetRole", start, err)
	return r0, r1, err
}

func (st store) TransferOwner(ctx context.Context, chatID, actorID, toID int64, now time.Time) (chat.Message, error) {
	start := time.Now()
	r0, err := st.s.TransferOwner(ctx, chatID, actorID, toID, now)
	st.observe("TransferOwner", start, err)
	return r0, err
}

func (st store) DeleteChat(ctx context.Context, chatID, actorID int64, now time.Time) (chat.DeletedChat, error) {
	start := time.Now()
	r0, err := st.s.DeleteChat(ctx, chatID, actorID, now)
	st.observe("DeleteChat", start, err)
	return r0, err
}

func (st store) UserFor(ctx context.Context, viewerID, userID int64) (chat.User, bool, error) {
	start := time.Now()
	r0, r1, err := st.s.UserFor(ctx, viewerID, userID)
	st.observe("UserFor", start, err)
	return r0, r1, err
}

func (st store) RenameUser(ctx context.Context, userID int64, name string) error {
	start := time.Now()
	err := st.s.RenameUser(ctx, userID, name)
	st.observe("RenameUser", start, err)
	return err
}

func (st store) SetPasswordHash(ctx context.Context, userID int64, hash string) error {
	start := time.Now()
	err := st.s.SetPasswordHash(ctx, userID, hash)
	st.observe("SetPasswordHash", start, err)
	return err
}

func (st store) RevokeOtherSessions(ctx context.Context, userID, keep int64, now time.Time) ([]int64, error) {
	start := time.Now()
	r0, err := st.s.RevokeOtherSessions(ctx, userID, keep, now)
	st.observe("RevokeOtherSessions", start, err)
	return r0, err
}

func (st store) DeleteUser(ctx context.Context, userID int64, now time.Time) (chat.DeletedAccount, error) {
	start := time.Now()
	r0, err := st.s.DeleteUser(ctx, userID, now)
	st.observe("DeleteUser", start, err)
	return r0, err
}

func (st store) TouchUser(ctx context.Context, userID int64, now time.Time) error {
	start := time.Now()
	err := st.s.TouchUser(ctx, userID, now)
	st.observe("TouchUser", start, err)
	return err
}

func (st store) ChatIDsOf(ctx context.Context, userID int64) ([]int64, error) {
	start := time.Now()
	r0, err := st.s.ChatIDsOf(ctx, userID)
	st.observe("ChatIDsOf", start, err)
	return r0, err
}

func (st store) ChatIDsOfUsers(ctx context.Context, userIDs []int64) (map[int64][]int64, error) {
	start := time.Now()
	r0, err := st.s.ChatIDsOfUsers(ctx, userIDs)
	st.observe("ChatIDsOfUsers", start, err)
	return r0, err
}

func (st store) EndedSessions(ctx context.Context, ids []int64, now time.Time) ([]int64, error) {
	start := time.Now()
	r0, err := st.s.EndedSessions(ctx, ids, now)
	st.observe("EndedSessions", start, err)
	return r0, err
}

func (st store) LeaveReason(ctx context.Context, userID, chatID, after int64) (string, error) {
	start := time.Now()
	r0, err := st.s.LeaveReason(ctx, userID, chatID, after)
	st.observe("LeaveReason", start, err)
	return r0, err
}
