package chat

import (
	"context"
	"errors"
	"time"

	"github.com/wschat/chat/internal/auth"
)

// Account settings: the display name, the password, deleting the account, and "last seen".

// DeletedName is the name of every deleted account.
const DeletedName = "Deleted user"

// readOnly is the refusal of a send (or typing) to a private chat whose peer is gone.
func readOnly(ChatSummary) error {
	return Errorf(CodePeerDeleted, "the other member deleted their account: this chat is read-only")
}

// User returns one user's public profile. Whether they are online is told only to users who
// share a chat with them (presence.go: a stranger polling this learnt when anyone came and
// went), and so is their last seen time, only while they are offline.
func (s *Service) User(ctx context.Context, p Principal, id int64) (UserInfo, error) {
	u, shared, err := s.store.UserFor(ctx, p.UserID, id)
	if errors.Is(err, ErrNotFound) {
		return UserInfo{}, Errorf(CodeNotFound, "user %d not found", id)
	}
	if err != nil {
		return UserInfo{}, storeErr(err, "load user %d", id)
	}
	info := UserInfo{ID: u.ID, Name: u.Name, Deleted: u.Deleted}
	if shared && !u.Deleted {
		info.Online = s.presence.Online(ctx, []int64{id})[id]
	}
	if shared && !info.Online && !u.Deleted && !u.LastSeenAt.IsZero() {
		info.LastSeenAt = &Time{u.LastSeenAt}
	}
	return info, nil
}

// Rename changes the caller's display name. Every connection that shares a chat with them
// gets user.updated, once however many chats it shares; it costs one chat change (it reaches
// every chat of the user).
func (s *Service) Rename(ctx context.Context, p Principal, name string) (User, error) {
	name, err := checkName("body.name", name)
	if err != nil {
		return User{}, err
	}
	if err := s.allowChatChange(ctx, p, 1); err != nil {
		return User{}, err
	}
	if err := s.store.RenameUser(ctx, p.UserID, name); err != nil {
		return User{}, storeErr(err, "rename user %d", p.UserID)
	}
	u, err := s.Me(ctx, p)
	if err != nil {
		return User{}, err
	}
	s.publishUser(ctx, UserUpdate{ID: u.ID, Name: u.Name}, nil)
	return u, nil
}

// publishUser tells the devices of everyone who shares a chat with the user, and the user's
// own, of their new profile. chats are the user's chats when they are known already (a
// deleted account has left its groups); else they are read.
func (s *Service) publishUser(ctx context.Context, u UserUpdate, chats []int64) {
	if chats == nil {
		ids, err := s.store.ChatIDsOf(ctx, u.ID)
		if err != nil {
			s.log.Warn("chats of a renamed user", "user_id", u.ID, "err", err)
		}
		chats = ids
	}
	s.pub.Publish(ctx, Event{Type: EventUserUpdated, UserID: u.ID, Chats: chats, Data: UserUpdatedData{User: u}})
}

// PasswordChange is what ChangePassword takes.
type PasswordChange struct {
	Current string
	New     string
	// SignOutOthers revokes every other session of the user (their sockets close with 4001).
	SignOutOthers bool
}

// ChangePassword sets a new password after checking the current one.
func (s *Service) ChangePassword(ctx context.Context, p Principal, in PasswordChange) error {
	if err := checkText("body.new_password", in.New, MinPasswordChars, MaxPasswordChars, false); err != nil {
		return err
	}
	if _, err := s.checkPassword(ctx, p, "body.current_password", in.Current); err != nil {
		return err
	}
	var hash string
	var err error
	if herr := s.hashing(ctx, func() { hash, err = auth.HashPassword(in.New, s.opts.PasswordParams) }); herr != nil {
		return herr
	}
	if err != nil {
		return err
	}
	if err := s.store.SetPasswordHash(ctx, p.UserID, hash); err != nil {
		return storeErr(err, "set the password of user %d", p.UserID)
	}
	if !in.SignOutOthers {
		return nil
	}
	ids, err := s.store.RevokeOtherSessions(ctx, p.UserID, p.SessionID, s.now())
	if err != nil {
		return storeErr(err, "revoke the other sessions of user %d", p.UserID)
	}
	if len(ids) > 0 {
		s.pub.Publish(ctx, Event{Type: EventSessionRevoke, UserID: p.UserID, Sessions: ids})
	}
	return nil
}

// DeleteAccount deletes the caller's account after checking the password. Its messages stay,
// signed DeletedName; it leaves every group (a member_left message each; an owner hands the
// group on), its private chats become read-only for the other member, its email is freed for
// a new sign-up, and every session is revoked (sockets close with 4001).
func (s *Service) DeleteAccount(ctx context.Context, p Principal, password string) error {
	if _, err := s.checkPassword(ctx, p, "body.password", password); err != nil {
		return err
	}
	d, err := s.store.DeleteUser(ctx, p.UserID, s.now())
	if errors.Is(err, ErrNotFound) {
		return Errorf(CodeUnauthenticated, "the account no longer exists")
	}
	if err != nil {
		return storeErr(err, "delete user %d", p.UserID)
	}
	if len(d.Sessions) > 0 {
		s.pub.Publish(ctx, Event{Type: EventSessionRevoke, UserID: p.UserID, Sessions: d.Sessions,
			Data: SessionRevokeData{AccountDeleted: true}})
	}
	chats := append([]int64{}, d.Private...)
	for _, r := range d.Groups {
		s.publishRemoval(ctx, p.UserID, r, "")
		chats = append(chats, r.ChatID)
	}
	s.publishUser(ctx, UserUpdate{ID: p.UserID, Name: DeletedName, Deleted: true}, chats)
	return nil
}

// checkPassword checks the caller's password, for a change that needs it. Each check takes a
// token of the per-email login limit first, as a login does (a stolen access token must not
// guess passwords faster than a login can); a right password gives them back.
func (s *Service) checkPassword(ctx context.Context, p Principal, field, password string) (User, error) {
	u, err := s.Me(ctx, p)
	if err != nil {
		return User{}, err
	}
	key := limiterKey(u.Email)
	if err := s.take(ctx, s.loginByEmail, key, 1); err != nil {
		return User{}, err
	}
	wrong := &Error{Code: CodeWrongPassword, Field: field, Message: "the password is wrong"}
	if len(password) > 4*MaxPasswordChars || password == "" {
		return User{}, wrong
	}
	var ok bool
	var herr error
	if err := s.hashing(ctx, func() { ok, herr = auth.CheckPassword(u.PasswordHash, password) }); err != nil {
		return User{}, err
	}
	if herr != nil {
		s.log.Error("stored password hash is malformed", "user_id", u.ID, "err", herr)
	}
	if !ok {
		return User{}, wrong
	}
	s.loginByEmail.Reset(ctx, key)
	return u, nil
}

// Seen records that one of the user's WebSockets closed at the given time: their "last seen",
// shown to those who share a chat with them while they are offline. The real-time layer calls
// it, with the time its presence frames give.
func (s *Service) Seen(ctx context.Context, userID int64, at time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := s.store.TouchUser(ctx, userID, at); err != nil {
		s.log.Warn("record last seen", "user_id", userID, "err", err)
	}
}
