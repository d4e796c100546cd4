package metrics

import (
	"context"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// store times every query of a chat.Store by method name.
type store struct {
	s chat.Store
	m *Metrics
}

var _ chat.Store = store{}

func (st store) observe(name string, start time.Time, err error) {
	st.m.storeDur.WithLabelValues(name, outcome(err)).Observe(time.Since(start).Seconds())
}

func (st store) Ping(ctx context.Context) error {
	start := time.Now()
	err := st.s.Ping(ctx)
	st.observe("Ping", start, err)
	return err
}

func (st store) CreateUser(ctx context.Context, u chat.User) (chat.User, error) {
	start := time.Now()
	r0, err := st.s.CreateUser(ctx, u)
	st.observe("CreateUser", start, err)
	return r0, err
}

func (st store) UserByID(ctx context.Context, id int64) (chat.User, error) {
	start := time.Now()
	r0, err := st.s.UserByID(ctx, id)
	st.observe("UserByID", start, err)
	return r0, err
}

func (st store) UserByEmail(ctx context.Context, email string) (chat.User, error) {
	start := time.Now()
	r0, err := st.s.UserByEmail(ctx, email)
	st.observe("UserByEmail", start, err)
	return r0, err
}

func (st store) SearchUsers(ctx context.Context, q chat.UserSearch) ([]chat.FoundUser, error) {
	start := time.Now()
	r0, err := st.s.SearchUsers(ctx, q)
	st.observe("SearchUsers", start, err)
	return r0, err
}

func (st store) CreateSession(ctx context.Context, s chat.Session, refreshHash []byte) (chat.Session, error) {
	start := time.Now()
	r0, err := st.s.CreateSession(ctx, s, refreshHash)
	st.observe("CreateSession", start, err)
	return r0, err
}

func (st store) SessionByID(ctx context.Context, id int64) (chat.Session, error) {
	start := time.Now()
	r0, err := st.s.SessionByID(ctx, id)
	st.observe("SessionByID", start, err)
	return r0, err
}

func (st store) RotateRefresh(ctx context.Context, oldHash, newHash, client []byte, now, expires time.Time) (chat.Session, error) {
	start := time.Now()
	r0, err := st.s.RotateRefresh(ctx, oldHash, newHash, client, now, expires)
	st.observe("RotateRefresh", start, err)
	return r0, err
}

func (st store) TouchSession(ctx context.Context, id int64, now time.Time) error {
	start := time.Now()
	err := st.s.TouchSession(ctx, id, now)
	st.observe("TouchSession", start, err)
	return err
}

func (st store) RevokeSessions(ctx context.Context, userID, sessionID int64, now time.Time) ([]int64, error) {
	start := time.Now()
	r0, err := st.s.RevokeSessions(ctx, userID, sessionID, now)
	st.observe("RevokeSessions", start, err)
	return r0, err
}

func (st store) ListSessions(ctx context.Context, userID int64, now time.Time) ([]chat.Session, error) {
	start := time.Now()
	r0, err := st.s.ListSessions(ctx, userID, now)
	st.observe("ListSessions", start, err)
	return r0, err
}

func (st store) CreateGroup(ctx context.Context, g chat.NewGroup) (int64, error) {
	start := time.Now()
	r0, err := st.s.CreateGroup(ctx, g)
	st.observe("CreateGroup", start, err)
	return r0, err
}

func (st store) CreatePrivate(ctx context.Context, a, b int64, now time.Time) (int64, bool, error) {
	start := time.Now()
	r0, r1, err := st.s.CreatePrivate(ctx, a, b, now)
	st.observe("CreatePrivate", start, err)
	return r0, r1, err
}

func (st store) ChatsOf(ctx context.Context, userID int64) ([]chat.ChatSummary, error) {
	start := time.Now()
	r0, err := st.s.ChatsOf(ctx, userID)
	st.observe("ChatsOf", start, err)
	return r0, err
}

func (st store) ChatFor(ctx context.Context, viewerID, chatID int64) (chat.ChatSummary, error) {
	start := time.Now()
	r0, err := st.s.ChatFor(ctx, viewerID, chatID)
	st.observe("ChatFor", start, err)
	return r0, err
}

func (st store) Members(ctx context.Context, chatID int64) ([]chat.Member, error) {
	start := time.Now()
	r0, err := st.s.Members(ctx, chatID)
	st.observe("Members", start, err)
	return r0, err
}

func (st store) MemberIDs(ctx context.Context, chatID int64) ([]int64, error) {
	start := time.Now()
	r0, err := st.s.MemberIDs(ctx, chatID)
	st.observe("MemberIDs", start, err)
	return r0, err
}

func (st store) Discover(ctx context.Context, userID int64, query string, limit int) ([]chat.DiscoveredChat, error) {
	start := time.Now()
	r0, err := st.s.Discover(ctx, userID, query, limit)
	st.observe("Discover", start, err)
	return r0, err
}

func (st store) AddMember(ctx context.Context, chatID, userID, actorID int64, event string, now time.Time) (chat.Message, error) {
	start := time.Now()
	r0, err := st.s.AddMember(ctx, chatID, userID, actorID, event, now)
	st.observe("AddMember", start, err)
	return r0, err
}

func (st store) RemoveMember(ctx context.Context, chatID, userID int64, now time.Time) (chat.Message, chat.ReadAll, error) {
	start := time.Now()
	r0, r1, err := st.s.RemoveMember(ctx, chatID, userID, now)
	st.observe("RemoveMember", start, err)
	return r0, r1, err
}

func (st store) QueueMessage(ctx context.Context, m chat.NewMessage) func() (chat.Sent, error) {
	start := time.Now()
	wait := st.s.QueueMessage(ctx, m)
	return func() (chat.Sent, error) {
		r0, err := wait()
		st.observe("SendMessage", start, err)
		return r0, err
	}
}

func (st store) SendMessage(ctx context.Context, m chat.NewMessage) (chat.Sent, error) {
	start := time.Now()
	r0, err := st.s.SendMessage(ctx, m)
	st.observe("SendMessage", start, err)
	return r0, err
}

func (st store) FileClaims(ctx context.Context, viewerID int64, ids []int64) ([]chat.FileClaim, error) {
	start := time.Now()
	r0, err := st.s.FileClaims(ctx, viewerID, ids)
	st.observe("FileClaims", start, err)
	return r0, err
}

func (st store) History(ctx context.Context, q chat.HistoryQuery) ([]chat.Message, bool, error) {
	start := time.Now()
	r0, r1, err := st.s.History(ctx, q)
	st.observe("History", start, err)
	return r0, r1, err
}

func (st store) MarkRead(ctx context.Context, chatID, userID, seq int64) (chat.Read, error) {
	start := time.Now()
	r0, err := st.s.MarkRead(ctx, chatID, userID, seq)
	st.observe("MarkRead", start, err)
	return r0, err
}

func (st store) SearchMessages(ctx context.Context, q chat.SearchQuery) (chat.SearchBatch, error) {
	start := time.Now()
	r0, err := st.s.SearchMessages(ctx, q)
	st.observe("SearchMessages", start, err)
	return r0, err
}

func (st store) UpdateChatSettings(ctx context.Context, c chat.SettingsChange) (chat.ChatSettings, error) {
	start := time.Now()
	r0, err := st.s.UpdateChatSettings(ctx, c)
	st.observe("UpdateChatSettings", start, err)
	return r0, err
}

func (st store) PruneSessions(ctx context.Context, sessionsBefore, tokensBefore time.Time) (int64, error) {
	start := time.Now()
	n, err := st.s.PruneSessions(ctx, sessionsBefore, tokensBefore)
	st.observe("PruneSessions", start, err)
	return n, err
}

func (st store) EditMessage(ctx context.Context, e chat.MessageEdit) (chat.Changed, error) {
	start := time.Now()
	r0, err := st.s.EditMessage(ctx, e)
	st.observe("EditMessage", start, err)
	return r0, err
}

func (st store) DeleteMessage(ctx context.Context, chatID, seq, actorID int64, now time.Time) (chat.Changed, error) {
	start := time.Now()
	r0, err := st.s.DeleteMessage(ctx, chatID, seq, actorID, now)
	st.observe("DeleteMessage", start, err)
	return r0, err
}

func (st store) React(ctx context.Context, r chat.ReactionChange) (chat.Reacted, error) {
	start := time.Now()
	r0, err := st.s.React(ctx, r)
	st.observe("React", start, err)
	return r0, err
}

func (st store) Changes(ctx context.Context, chatID, afterRev int64, limit int) (chat.ChangePage, error) {
	start := time.Now()
	r0, err := st.s.Changes(ctx, chatID, afterRev, limit)
	st.observe("Changes", start, err)
	return r0, err
}

func (st store) ChatHeads(ctx context.Context, ids []int64) (map[int64]chat.ChatHead, error) {
	start := time.Now()
	r0, err := st.s.ChatHeads(ctx, ids)
	st.observe("ChatHeads", start, err)
	return r0, err
}

func (st store) Message(ctx context.Context, chatID, seq int64) (chat.Message, error) {
	start := time.Now()
	r0, err := st.s.Message(ctx, chatID, seq)
	st.observe("Message", start, err)
	return r0, err
}
