package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wschat/chat/internal/auth"
	"github.com/wschat/chat/internal/limit"
)

// Options configure a Service. Zero values mean the defaults of PRODUCT.md.
type Options struct {
	Signup     bool
	RateLimits bool
	// Limits shape the rate limiters (when RateLimits is on) and cap group sizes and the chats
	// of a user; zero fields take DefaultLimits.
	Limits Limits
	// NewLimiter makes each rate limiter; nil makes this instance's in-memory ones. A cluster
	// passes limiters shared through Redis (internal/limit/redislimit), so that N instances
	// do not allow N times each rate.
	NewLimiter     LimiterFactory
	RefreshTTL     time.Duration
	PasswordParams auth.PasswordParams
	Now            func() time.Time
	Logger         *slog.Logger
	// EditWindow is how long after sending an author may edit a message: 0 takes
	// DefaultEditWindow, a negative value means forever (CHAT_EDIT_WINDOW=0).
	EditWindow time.Duration
}

// Service is the chat's rules: who may do what, in which order things are stored and which
// events follow. HTTP handlers and the WebSocket endpoint call it; it writes through a Store and
// publishes through a Publisher after commit.
type Service struct {
	store    Store
	tokens   *auth.Tokens
	pub      Publisher
	presence Presence
	opts     Options
	log      *slog.Logger

	loginByEmail RateLimiter
	loginByAddr  RateLimiter
	signupByAddr RateLimiter
	sendByUser   RateLimiter
	chatsByUser  RateLimiter
	readsByUser  RateLimiter
	marksByUser  RateLimiter
	typingGate   *limit.Limiter // ephemeral, per instance

	dummyHash string
	// hashSlots bounds the argon2id computations running at once: each takes the cost's memory
	// (19 MiB by default), so a burst of logins must queue rather than exhaust memory.
	hashSlots chan struct{}

	// janitors are woken when files become nobody's (filesDetached); each FileService over
	// this service adds its own.
	janitorsMu sync.Mutex
	janitors   []func()
}

// onFilesDetached adds wake to what filesDetached calls.
func (s *Service) onFilesDetached(wake func()) {
	s.janitorsMu.Lock()
	defer s.janitorsMu.Unlock()
	s.janitors = append(s.janitors, wake)
}

// filesDetached wakes the file janitors of this instance: a message or group deleted left
// files to nobody, which no longer count toward a quota (the store's fileUsage) and whose
// bytes should not wait for the next pass, so that deleting cannot pile up bytes beyond the
// quotas until then. Other instances' janitors find them at their next pass, if this one's
// has not deleted them by then.
func (s *Service) filesDetached() {
	s.janitorsMu.Lock()
	wake := slices.Clone(s.janitors)
	s.janitorsMu.Unlock()
	for _, w := range wake {
		w()
	}
}

// Principal is an authenticated caller: a user on one session (device).
type Principal struct {
	UserID    int64
	SessionID int64
	// Expires is when the access token that authenticated the caller expires (the claims
	// Authenticate verified): a WebSocket is closed with 4001 then.
	Expires time.Time
}

// NewService builds the service. pub and presence may be nil until the real-time layer
// provides them (SetPublisher, SetPresence).
func NewService(store Store, tokens *auth.Tokens, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RefreshTTL == 0 {
		opts.RefreshTTL = 720 * time.Hour
	}
	if opts.PasswordParams == (auth.PasswordParams{}) {
		opts.PasswordParams = auth.DefaultPasswordParams
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Limits.defaults()
	s := &Service{
		store:    store,
		tokens:   tokens,
		pub:      nopPublisher{},
		presence: nobodyOnline{},
		opts:     opts,
		log:      opts.Logger,
		// Typing events are ephemeral: at most one per user and chat every 2 s (API.md).
		typingGate: limit.New(0.5, 1, limiterKeys),
		hashSlots:  make(chan struct{}, 2*runtime.GOMAXPROCS(0)),
	}
	s.newLimiters()
	// A hash to check unknown emails against, so that they take as long as wrong passwords.
	s.dummyHash, _ = auth.HashPassword("dummy password", opts.PasswordParams)
	return s
}

// SetPublisher sets where events go after commit.
func (s *Service) SetPublisher(p Publisher) { s.pub = p }

// SetPresence sets who answers "is this user online".
func (s *Service) SetPresence(p Presence) { s.presence = p }

// Store returns the service's store, for the real-time layer's gap healing.
func (s *Service) Store() Store { return s.store }

func (s *Service) now() time.Time { return s.opts.Now().UTC().Truncate(time.Millisecond) }

// limiterNow is the time the rate limiters count with: Options.Now as it is. s.now strips the
// monotonic reading that time.Now carries (UTC and Truncate do), and a token bucket that counts
// with the wall clock refills at once when the clock steps forward (NTP, a virtual machine
// resumed after a pause) and stops refilling for as long as it stepped back, which would keep a
// user who spent their burst refused for that long. With the monotonic reading, a bucket's time
// is the time that really passed.
func (s *Service) limiterNow() time.Time { return s.opts.Now() }

// storeErr turns a store failure into the error the caller should see.
func storeErr(err error, format string, args ...any) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnavailable):
		return Unavailable(err, "the database is unavailable; try again")
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

func rateLimited(wait time.Duration) error {
	secs := int((wait + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return &Error{Code: CodeRateLimited, Message: fmt.Sprintf("too many requests; retry in %d s", secs), RetryAfter: secs}
}

// UserInfo is another user as a caller sees them.
type UserInfo struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Email  string `json:"email,omitempty" doc:"shown only for you, users who share a chat with you, and a user whose exact email you searched for"`
	Online bool   `json:"online" doc:"connected now; true only for users who share a chat with you (to others everyone is offline)"`
	// LastSeenAt and Deleted are set by User (GET /users/{id}) only.
	LastSeenAt *Time `json:"last_seen_at,omitempty" doc:"when the user was last connected: only while they are offline, and only to users who share a chat with them"`
	Deleted    bool  `json:"deleted,omitempty" doc:"the user deleted their account"`
}

// Me returns the caller's account.
func (s *Service) Me(ctx context.Context, p Principal) (User, error) {
	u, err := s.store.UserByID(ctx, p.UserID)
	if errors.Is(err, ErrNotFound) {
		return User{}, Errorf(CodeUnauthenticated, "the account no longer exists")
	}
	return u, storeErr(err, "load user %d", p.UserID)
}

// SearchUsers finds users whose name starts with query, case-insensitively. Emails are
// private: an email prefix finds, and a result shows the email of, only the caller and users
// who share a chat with the caller; anyone else is found by email only when query is exactly
// their email (as someone who knows it would look them up).
func (s *Service) SearchUsers(ctx context.Context, p Principal, query string, lim int) ([]UserInfo, error) {
	if err := checkText("query.q", query, 0, 100, true); err != nil {
		return nil, err
	}
	if lim == 0 {
		lim = DefaultUserLimit
	}
	if lim < 1 || lim > MaxUserLimit {
		return nil, Invalid("query.limit", "limit must be between 1 and %d", MaxUserLimit)
	}
	exact := strings.ToLower(strings.TrimSpace(query))
	if !strings.Contains(exact, "@") {
		exact = ""
	}
	users, err := s.store.SearchUsers(ctx, UserSearch{ViewerID: p.UserID, Prefix: query, Email: exact, Limit: lim})
	if err != nil {
		return nil, storeErr(err, "search users")
	}
	// Who is online is told only to those who share a chat with them (presence.go).
	var ids []int64
	for _, u := range users {
		if u.Shared {
			ids = append(ids, u.ID)
		}
	}
	online := s.presence.Online(ctx, ids)
	out := make([]UserInfo, len(users))
	for i, u := range users {
		out[i] = UserInfo{ID: u.ID, Name: u.Name, Online: online[u.ID]}
		if u.Shared || (exact != "" && u.Email == exact) {
			out[i].Email = u.Email
		}
	}
	return out, nil
}

// Chats lists the caller's chats, most recent activity first.
func (s *Service) Chats(ctx context.Context, p Principal) ([]ChatSummary, error) {
	chats, err := s.store.ChatsOf(ctx, p.UserID)
	if err != nil {
		return nil, storeErr(err, "list chats of user %d", p.UserID)
	}
	s.fillPeersOnline(ctx, chats)
	return chats, nil
}

func (s *Service) fillPeersOnline(ctx context.Context, chats []ChatSummary) {
	var ids []int64
	for _, c := range chats {
		if c.Peer != nil {
			ids = append(ids, c.Peer.ID)
		}
	}
	if len(ids) == 0 {
		return
	}
	online := s.presence.Online(ctx, ids)
	for i := range chats {
		if p := chats[i].Peer; p != nil {
			p.Online = online[p.ID]
		}
	}
}

// visibleChat loads a chat the caller may see: a member sees it, everyone sees a public group.
// Anything else answers as if the chat did not exist.
func (s *Service) visibleChat(ctx context.Context, p Principal, chatID int64) (ChatSummary, error) {
	c, err := s.store.ChatFor(ctx, p.UserID, chatID)
	if errors.Is(err, ErrNotFound) || (err == nil && !c.IsMember && !(c.Kind == KindGroup && c.Public)) {
		return ChatSummary{}, Errorf(CodeNotFound, "chat %d not found", chatID)
	}
	return c, storeErr(err, "load chat %d", chatID)
}

// memberChat loads a chat for a member-only action.
func (s *Service) memberChat(ctx context.Context, p Principal, chatID int64) (ChatSummary, error) {
	c, err := s.visibleChat(ctx, p, chatID)
	if err != nil {
		return c, err
	}
	if !c.IsMember {
		return c, Errorf(CodeNotMember, "you are not a member of chat %d", chatID)
	}
	return c, nil
}

// refusal is the error for a member-only action the store refused: 404 for a chat the caller
// cannot see, else 403.
func (s *Service) refusal(ctx context.Context, p Principal, chatID int64) error {
	c, err := s.memberChat(ctx, p, chatID)
	if err != nil {
		return err
	}
	if c.ReadOnly { // the store has no senders for a read-only chat
		return readOnly(c)
	}
	// Became a member meanwhile: refuse all the same, the caller may retry.
	return Errorf(CodeNotMember, "you are not a member of chat %d", chatID)
}

// IsMember reports whether the user belongs to the chat, for frames that need no other data.
func (s *Service) IsMember(ctx context.Context, p Principal, chatID int64) error {
	_, err := s.memberChat(ctx, p, chatID)
	return err
}

// Chat returns a chat with its members.
func (s *Service) Chat(ctx context.Context, p Principal, chatID int64) (ChatDetail, error) {
	c, err := s.visibleChat(ctx, p, chatID)
	if err != nil {
		return ChatDetail{}, err
	}
	return s.detail(ctx, p.UserID, c)
}

// detail adds a chat's members to it, as viewerID sees them.
func (s *Service) detail(ctx context.Context, viewerID int64, c ChatSummary) (ChatDetail, error) {
	members, err := s.store.Members(ctx, c.ID)
	if err != nil {
		return ChatDetail{}, storeErr(err, "members of chat %d", c.ID)
	}
	ids := make([]int64, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	online := s.presence.Online(ctx, ids)
	for i := range members {
		m := &members[i]
		m.Online = online[m.ID]
		// Last seen: for the chat's members to see, of those who are offline.
		if m.Online || m.Deleted || !c.IsMember {
			m.LastSeenAt = nil
		}
	}
	if c.Peer != nil {
		c.Peer.Online = online[c.Peer.ID]
	}
	if !c.IsMember {
		// Who is online is told only to those who share a chat with them (presence.go), not
		// to anyone who looks at a public group: polling it showed when its members came and
		// went, as their last seen time, hidden here, would.
		if err := s.onlineToSharers(ctx, viewerID, members); err != nil {
			return ChatDetail{}, err
		}
		// Someone outside a public group sees what it is and who is in it, not what is said,
		// when, nor who read what: the history is the members' (403 not_member), and so is the
		// newest message and the chat's seq and rev, which polling this would otherwise show as
		// they moved.
		c.LastMessage = nil
		c.LastSeq, c.LastRev, c.ReadAllSeq, c.UnreadCount, c.UnreadMentions = 0, 0, 0, 0, 0
		for i := range members {
			members[i].LastReadSeq = 0
		}
	}
	return ChatDetail{ChatSummary: c, Members: members}, nil
}

// onlineToSharers leaves online, of users, only those who share a chat with the viewer (or
// are the viewer); one query, of those online only.
func (s *Service) onlineToSharers(ctx context.Context, viewerID int64, users []Member) error {
	var ids []int64
	for _, u := range users {
		if u.Online {
			ids = append(ids, u.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	sharers, err := s.store.SharedUsers(ctx, viewerID, ids)
	if err != nil {
		return storeErr(err, "users sharing a chat with %d", viewerID)
	}
	shared := make(map[int64]bool, len(sharers))
	for _, u := range sharers {
		shared[u.ID] = true
	}
	for i := range users {
		users[i].Online = users[i].Online && shared[users[i].ID]
	}
	return nil
}

// chatFor reloads a chat as a user sees it, with its members.
func (s *Service) chatFor(ctx context.Context, userID, chatID int64) (ChatDetail, error) {
	c, err := s.store.ChatFor(ctx, userID, chatID)
	if err != nil {
		return ChatDetail{}, storeErr(err, "load chat %d", chatID)
	}
	if !c.IsMember && !(c.Kind == KindGroup && c.Public) {
		// Deleted (or the user removed from a group that is not public) right after the
		// change that reads it back: what is left is not theirs to see, as a moment later.
		return ChatDetail{}, Errorf(CodeNotFound, "chat %d not found", chatID)
	}
	return s.detail(ctx, userID, c)
}

// CreateGroup creates a group owned by the caller, with memberIDs as its first members.
func (s *Service) CreateGroup(ctx context.Context, p Principal, title string, public bool, memberIDs []int64) (ChatDetail, error) {
	title, err := checkTitle("body.title", title)
	if err != nil {
		return ChatDetail{}, err
	}
	if len(memberIDs) > MaxFirstMembers {
		return ChatDetail{}, Invalid("body.member_ids", "a group starts with at most %d other members; invite the others later", MaxFirstMembers)
	}
	ids := make([]int64, 0, len(memberIDs))
	for _, id := range memberIDs {
		if id != p.UserID && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids)+1 > s.opts.Limits.GroupMembers {
		return ChatDetail{}, Invalid("body.member_ids", "a group has at most %d members", s.opts.Limits.GroupMembers)
	}
	// Each first member costs a membership change, like an invitation: three requests once
	// forced 30,000 memberships on strangers for three tokens.
	cost := max(1, len(ids))
	if s.opts.RateLimits && cost > s.opts.Limits.ChatsPerUser.Burst {
		return ChatDetail{}, Invalid("body.member_ids", "a group starts with at most %d other members on this server; invite the others later", s.opts.Limits.ChatsPerUser.Burst)
	}
	if err := s.allowChatChange(ctx, p, cost); err != nil {
		return ChatDetail{}, err
	}
	id, err := s.store.CreateGroup(ctx, NewGroup{CreatorID: p.UserID, Title: title, Public: public, MemberIDs: ids, Now: s.now()})
	if errors.Is(err, ErrUnknownUser) {
		return ChatDetail{}, Errorf(CodeUserNotFound, "a user in member_ids does not exist")
	}
	if err != nil {
		return ChatDetail{}, s.membershipErr(p, err, "create group")
	}
	d, err := s.chatFor(ctx, p.UserID, id)
	if err != nil {
		return ChatDetail{}, err
	}
	s.announceChat(ctx, d, p.UserID, append(ids, p.UserID), 0)
	return d, nil
}

// OpenPrivate returns the private chat of the caller and the one other user in memberIDs,
// creating it if needed.
func (s *Service) OpenPrivate(ctx context.Context, p Principal, memberIDs []int64) (ChatDetail, bool, error) {
	if len(memberIDs) != 1 {
		return ChatDetail{}, false, Invalid("body.member_ids", "a private chat needs exactly one other member")
	}
	other := memberIDs[0]
	if other == p.UserID {
		return ChatDetail{}, false, Invalid("body.member_ids", "a private chat needs another user than yourself")
	}
	if err := s.allowChatChange(ctx, p, 1); err != nil {
		return ChatDetail{}, false, err
	}
	id, created, err := s.store.CreatePrivate(ctx, p.UserID, other, s.now())
	if errors.Is(err, ErrUnknownUser) {
		return ChatDetail{}, false, Errorf(CodeUserNotFound, "user %d not found", other)
	}
	if err != nil {
		return ChatDetail{}, false, s.membershipErr(p, err, "create private chat")
	}
	d, err := s.chatFor(ctx, p.UserID, id)
	if err != nil {
		return ChatDetail{}, false, err
	}
	if created {
		s.announceChat(ctx, d, p.UserID, []int64{p.UserID, other}, 0)
	}
	return d, created, nil
}

// announceChat sends chat.added to every device of each user, with the chat as that user sees
// it; d is the chat as viewer sees it. The viewer's unread count is d's: someone who joins a
// busy group may find messages after their join already there, counted in its last seq, which
// will not come live. The others have just become members of a chat that nobody knew of
// before d was read (a new group, a new private chat), so nothing is unread for them.
// since is the seq of the system message that made the users members (0 for a new chat): d
// may have moved on since, and the membership it announces is that one (Event.Seq).
//
// d is read in two statements, the chat as viewer sees it, then its members. A user who is
// not among the members has left since the join (their leave's chat.removed says so), and
// neither has a viewer whom d shows out of the chat (d.IsMember false: left before it was
// read, and maybe back, by a later join, before the members were read, which announces
// itself): announcing the membership then would give it the chat as an outsider sees it
// (no last seq), from which the connections began their streams at seq 0.
func (s *Service) announceChat(ctx context.Context, d ChatDetail, viewer int64, userIDs []int64, since int64) {
	byID := make(map[int64]Member, len(d.Members))
	for _, m := range d.Members {
		byID[m.ID] = m
	}
	for _, uid := range userIDs {
		m, ok := byID[uid]
		if !ok || (uid == viewer && !d.IsMember) {
			continue
		}
		sum := d.ChatSummary
		sum.IsMember = true
		sum.MyLastReadSeq = m.LastReadSeq
		if uid != viewer {
			sum.UnreadCount = 0
		}
		if sum.Kind == KindPrivate {
			for _, o := range d.Members {
				if o.ID != uid {
					sum.Peer = &Peer{ID: o.ID, Name: o.Name, Online: o.Online}
					sum.Title = o.Name
				}
			}
		}
		s.pub.Publish(ctx, Event{Type: EventChatAdded, UserID: uid, Seq: since, Data: ChatAddedData{Chat: sum}})
	}
}

// membershipErr is storeErr for a change that makes users members of a chat: the store's
// refusal to make someone a member of more chats than one may belong to becomes 403
// forbidden, like a full group.
func (s *Service) membershipErr(p Principal, err error, format string, args ...any) error {
	var full *TooManyChatsError
	if !errors.As(err, &full) {
		return storeErr(err, format, args...)
	}
	if full.UserID == p.UserID {
		return Errorf(CodeForbidden, "you already belong to %d chats, the most one may; leave a group first", s.opts.Limits.UserChats)
	}
	return Errorf(CodeForbidden, "user %d already belongs to %d chats, the most one may", full.UserID, s.opts.Limits.UserChats)
}

// allowChatChange takes n of the caller's membership changes from the rate limiter.
func (s *Service) allowChatChange(ctx context.Context, p Principal, n int) error {
	return s.take(ctx, s.chatsByUser, userKey(p), n)
}

// AllowRead takes one of the caller's REST reads from the rate limiter (Limits.ReadsPerUser).
// The HTTP layer calls it before each read that queries the database; the WebSocket endpoint
// does not, so that paging and reconnecting never cost a client its hello or its sync.
func (s *Service) AllowRead(ctx context.Context, p Principal) error {
	return s.take(ctx, s.readsByUser, userKey(p), 1)
}

// Discover finds public groups the caller is not in, by title.
func (s *Service) Discover(ctx context.Context, p Principal, query string) ([]DiscoveredChat, error) {
	if err := checkText("query.q", query, 0, MaxTitleChars, true); err != nil {
		return nil, err
	}
	chats, err := s.store.Discover(ctx, p.UserID, query, 50)
	return chats, storeErr(err, "discover chats")
}

// Invite adds userID to a group the caller is a member of.
func (s *Service) Invite(ctx context.Context, p Principal, chatID, userID int64) (ChatDetail, error) {
	c, err := s.memberChat(ctx, p, chatID)
	if err != nil {
		return ChatDetail{}, err
	}
	if c.Kind == KindPrivate {
		return ChatDetail{}, Errorf(CodePrivateChat, "nobody can be invited to a private chat")
	}
	if err := s.allowChatChange(ctx, p, 1); err != nil {
		return ChatDetail{}, err
	}
	return s.addMember(ctx, p, chatID, userID, SysMemberInvited)
}

// Join adds the caller to a public group.
func (s *Service) Join(ctx context.Context, p Principal, chatID int64) (ChatDetail, error) {
	c, err := s.visibleChat(ctx, p, chatID)
	if err != nil {
		return ChatDetail{}, err
	}
	// A member can see the chat whatever it is: telling them it does not exist would be false.
	if c.IsMember {
		return ChatDetail{}, Errorf(CodeAlreadyMember, "you are already a member of chat %d", chatID)
	}
	if c.Kind != KindGroup || !c.Public {
		return ChatDetail{}, Errorf(CodeNotFound, "chat %d not found", chatID)
	}
	if err := s.allowChatChange(ctx, p, 1); err != nil {
		return ChatDetail{}, err
	}
	return s.addMember(ctx, p, chatID, p.UserID, SysMemberJoined)
}

func (s *Service) addMember(ctx context.Context, p Principal, chatID, userID int64, event string) (ChatDetail, error) {
	msg, err := s.store.AddMember(ctx, chatID, userID, p.UserID, event, s.now())
	switch {
	case errors.Is(err, ErrUnknownUser):
		return ChatDetail{}, Errorf(CodeUserNotFound, "user %d not found", userID)
	case errors.Is(err, ErrAlreadyMember):
		return ChatDetail{}, Errorf(CodeAlreadyMember, "user %d is already a member of chat %d", userID, chatID)
	case errors.Is(err, ErrPrivateChat):
		return ChatDetail{}, Errorf(CodePrivateChat, "nobody can be invited to a private chat")
	case errors.Is(err, ErrChatFull):
		return ChatDetail{}, Errorf(CodeForbidden, "chat %d has reached %d members", chatID, s.opts.Limits.GroupMembers)
	case errors.Is(err, ErrNotMember), errors.Is(err, ErrNotFound):
		// The inviter left or was removed, the group was deleted, or (a join) it stopped
		// being public, since it was loaded: answered as if the change had come first.
		return ChatDetail{}, s.refusal(ctx, p, chatID)
	case err != nil:
		return ChatDetail{}, s.membershipErr(p, err, "add user %d to chat %d", userID, chatID)
	}
	u, err := s.store.UserByID(ctx, userID)
	if err != nil {
		return ChatDetail{}, storeErr(err, "load user %d", userID)
	}
	// The newcomer is subscribed first (chat.added), so that they see the chat's own events.
	d, err := s.chatFor(ctx, userID, chatID)
	if err != nil {
		return ChatDetail{}, err
	}
	s.announceChat(ctx, d, userID, []int64{userID}, msg.Seq)
	s.pub.Publish(ctx, Event{Type: EventMessageNew, ChatID: chatID, Seq: msg.Seq, Data: MessageData{Message: msg}})
	s.pub.Publish(ctx, Event{Type: EventMemberJoined, ChatID: chatID, ExceptUser: userID, At: msg.Seq,
		Data: MemberJoinedData{ChatID: chatID, User: UserRef{ID: u.ID, Name: u.Name}}})
	if userID == p.UserID {
		if !d.IsMember { // removed from the public group right after joining it
			return ChatDetail{}, s.refusal(ctx, p, chatID)
		}
		return d, nil
	}
	return s.chatFor(ctx, p.UserID, chatID)
}

// Leave takes the caller out of a group.
func (s *Service) Leave(ctx context.Context, p Principal, chatID int64) error {
	c, err := s.memberChat(ctx, p, chatID)
	if err != nil {
		return err
	}
	if c.Kind == KindPrivate {
		return Errorf(CodePrivateChat, "a private chat cannot be left")
	}
	r, err := s.store.RemoveFromChat(ctx, Removal{ChatID: chatID, UserID: p.UserID, ActorID: p.UserID, Now: s.now()})
	switch {
	case errors.Is(err, ErrNotMember), errors.Is(err, ErrNotFound):
		// Left on another device, removed, or the group deleted, since it was loaded.
		return s.refusal(ctx, p, chatID)
	case errors.Is(err, ErrPrivateChat):
		return Errorf(CodePrivateChat, "a private chat cannot be left")
	case err != nil:
		return storeErr(err, "remove user %d from chat %d", p.UserID, chatID)
	}
	// The leaver's devices stop at the leave's message (its seq travels with chat.removed);
	// the members learn of it right after that message (admin.go).
	s.publishRemoval(ctx, p.UserID, r, "")
	return nil
}

// publishReadAll tells the members of a grown read-all mark, right after message at.
func (s *Service) publishReadAll(ctx context.Context, chatID int64, ra ReadAll, at int64) {
	if ra.Grown {
		ev := readAllEvent(chatID, ra.Seq)
		ev.At = max(at, ra.Seq)
		s.pub.Publish(ctx, ev)
	}
}

func readAllEvent(chatID, seq int64) Event {
	return Event{Type: EventChatReadAll, ChatID: chatID, Data: ReadAllData{ChatID: chatID, ReadAllSeq: seq}}
}

// HistoryPage is what History takes from the caller.
type HistoryPage struct {
	BeforeSeq int64
	AfterSeq  int64
	HasBefore bool // BeforeSeq was given: 0 then means below seq 0, nothing (else: no bound)
	HasAfter  bool
	Limit     int
}

// History returns a page of a chat's messages in ascending seq order.
func (s *Service) History(ctx context.Context, p Principal, chatID int64, pg HistoryPage) ([]Message, bool, error) {
	if pg.Limit == 0 {
		pg.Limit = DefaultPageSize
	}
	if pg.Limit < 1 || pg.Limit > MaxPageSize {
		return nil, false, Invalid("query.limit", "limit must be between 1 and %d", MaxPageSize)
	}
	if pg.BeforeSeq < 0 {
		return nil, false, Invalid("query.before_seq", "before_seq must not be negative")
	}
	if pg.AfterSeq < 0 {
		return nil, false, Invalid("query.after_seq", "after_seq must not be negative")
	}
	if _, err := s.memberChat(ctx, p, chatID); err != nil {
		return nil, false, err
	}
	if pg.HasBefore && pg.BeforeSeq == 0 {
		return []Message{}, false, nil // seqs start at 1
	}
	msgs, more, err := s.store.History(ctx, HistoryQuery{ChatID: chatID, Before: pg.BeforeSeq, After: pg.AfterSeq, HasAfter: pg.HasAfter, Limit: pg.Limit})
	if err != nil {
		return nil, false, storeErr(err, "history of chat %d", chatID)
	}
	return msgs, more, nil
}

// SendInput is a message to send.
type SendInput struct {
	ChatID   int64
	Body     string
	ClientID string
	// FileIDs are uploads of the sender into this chat to attach (at most
	// MaxFilesPerMessage); with files the body may be empty.
	FileIDs []int64
	// ReplyToSeq is the seq of the message of the chat this one answers (0: none).
	ReplyToSeq int64
	// Mentions are users the message mentions (@name), MentionAll is @all (mentions.go).
	Mentions   []int64
	MentionAll bool
	// Conn is the WebSocket connection that sent it, if any: it gets message.ack, not message.new.
	Conn string
}

// Send stores a message and publishes it. A repeated client id returns the first message and
// created=false, and publishes nothing new.
func (s *Service) Send(ctx context.Context, p Principal, in SendInput) (Message, bool, error) {
	return s.SendAsync(ctx, p, in)()
}

// SendAsync checks a send, takes it from the rate limit and queues it behind the chat's other
// sends at once; wait waits for its commit, publishes it and answers as Send does. A
// connection with several sends in flight queues each before it reads its next frame, so its
// messages to a chat are stored in the order it sent them.
func (s *Service) SendAsync(ctx context.Context, p Principal, in SendInput) (wait func() (Message, bool, error)) {
	fail := func(err error) func() (Message, bool, error) {
		return func() (Message, bool, error) { return Message{}, false, err }
	}
	if err := checkFileIDs(in.FileIDs); err != nil {
		return fail(err)
	}
	// A message has a body or files (or both).
	if len(in.FileIDs) == 0 {
		if err := checkBody("body.body", in.Body); err != nil {
			return fail(err)
		}
	} else if err := checkText("body.body", in.Body, 0, MaxBodyChars, false); err != nil {
		return fail(err)
	} else if err := checkMarks("body.body", in.Body); err != nil {
		return fail(err)
	}
	if err := checkText("body.client_id", in.ClientID, 1, MaxClientIDChars, true); err != nil {
		return fail(err)
	}
	if in.ReplyToSeq < 0 {
		return fail(Invalid("body.reply_to_seq", "reply_to_seq must not be negative"))
	}
	mentions, err := checkMentions(in.Mentions, p.UserID)
	if err != nil {
		return fail(err)
	}
	if err := s.take(ctx, s.sendByUser, userKey(p), 1); err != nil {
		return fail(err)
	}
	// The store checks membership inside the transaction; only a refusal costs a second query,
	// to tell "not a member" (403) from "no such chat" (404). The message is published as soon
	// as it is committed, by the committer, so that a chat's messages leave in seq order.
	nm := NewMessage{ChatID: in.ChatID, SenderID: p.UserID, Body: in.Body, ClientID: in.ClientID, FileIDs: in.FileIDs, ReplyToSeq: in.ReplyToSeq,
		Mentions: mentions, MentionAll: in.MentionAll, Now: s.now()}
	nm.Committed = func(sent Sent, err error) {
		if err == nil && sent.Created {
			s.publishSent(ctx, p, in, sent)
		}
	}
	stored := s.store.QueueMessage(ctx, nm)
	return func() (Message, bool, error) {
		sent, err := stored()
		if errors.Is(err, ErrNotMember) || errors.Is(err, ErrNotFound) {
			return Message{}, false, s.refusal(ctx, p, in.ChatID)
		}
		if errors.Is(err, ErrNoReplyTarget) {
			return Message{}, false, Invalid("body.reply_to_seq", "chat %d has no message %d to reply to", in.ChatID, in.ReplyToSeq)
		}
		if errors.Is(err, ErrFilesRefused) {
			return Message{}, false, s.filesRefusal(ctx, p, in, nm.Now)
		}
		if errors.Is(err, ErrMentionAllRefused) {
			return Message{}, false, s.mentionAllRefusal(ctx, p, in.ChatID)
		}
		if err != nil {
			return Message{}, false, storeErr(err, "send to chat %d", in.ChatID)
		}
		return sent.Message, sent.Created, nil
	}
}

// filesRefusal says which file of a refused send could not be attached, and why.
func (s *Service) filesRefusal(ctx context.Context, p Principal, in SendInput, now time.Time) error {
	claims, err := s.store.FileClaims(ctx, p.UserID, in.FileIDs)
	if err != nil {
		return storeErr(err, "files of a send to chat %d", in.ChatID)
	}
	if err := attachRefusal(claims, p.UserID, in.ChatID, in.FileIDs, now); err != nil {
		return err
	}
	// Every file may be attached now: another send of the same commit took one first and
	// was then refused, or the files changed since. The client may retry.
	return Errorf(CodeFileAttached, "a file of this message was being attached to another message: try again")
}

// publishSent publishes a stored message. Sending reads everything before: the sender's
// devices learn their new read mark, and the chat its read-all mark when the sender was the
// last to hold it back; both travel with the message.
func (s *Service) publishSent(ctx context.Context, p Principal, in SendInput, sent Sent) {
	m := sent.Message
	ev := Event{Type: EventMessageNew, ChatID: in.ChatID, Seq: m.Seq, ExceptConn: in.Conn, Data: MessageData{Message: m},
		Then: []Event{{Type: EventReadUpdated, UserID: p.UserID,
			Data: ReadUpdatedData{ChatID: in.ChatID, UserID: p.UserID, LastReadSeq: m.Seq, UnreadCount: 0}}}}
	if ra := sent.ReadAll; ra.Grown {
		ev.Then = append(ev.Then, readAllEvent(in.ChatID, ra.Seq))
	}
	s.pub.Publish(ctx, ev)
}

// MarkRead moves the caller's read progress in a chat forward to seq (clamped to the chat's
// last seq) and publishes the change. It is rate limited (Limits.ReadMarksPerUser), over
// HTTP and WebSocket alike.
func (s *Service) MarkRead(ctx context.Context, p Principal, chatID, seq int64) (ReadState, error) {
	return s.MarkReadAsync(ctx, p, chatID, seq)()
}

// MarkReadAsync checks a read mark and takes it from the rate limit at once; wait stores and
// publishes it and answers as MarkRead does. A connection marks in the order it reads its
// frames, so its limit is spent in that order too.
func (s *Service) MarkReadAsync(ctx context.Context, p Principal, chatID, seq int64) (wait func() (ReadState, error)) {
	if seq < 0 {
		return func() (ReadState, error) { return ReadState{}, Invalid("body.seq", "seq must not be negative") }
	}
	if err := s.take(ctx, s.marksByUser, userKey(p), 1); err != nil {
		return func() (ReadState, error) { return ReadState{}, err }
	}
	return func() (ReadState, error) {
		r, err := s.store.MarkRead(ctx, chatID, p.UserID, seq)
		if errors.Is(err, ErrNotMember) || errors.Is(err, ErrNotFound) {
			return ReadState{}, s.refusal(ctx, p, chatID)
		}
		if err != nil {
			return ReadState{}, storeErr(err, "mark chat %d read", chatID)
		}
		if r.Changed {
			s.pub.Publish(ctx, Event{Type: EventReadUpdated, UserID: p.UserID, Data: ReadUpdatedData{
				ChatID: chatID, UserID: p.UserID, LastReadSeq: r.State.MyLastReadSeq, UnreadCount: r.State.UnreadCount,
				UnreadMentions: r.State.UnreadMentions}})
		}
		// After the chat's last message, not the message of the mark: a send committed
		// before this mark carries an older mark with its message, which must come first,
		// and a member whose leave was committed before it must not hear of it.
		s.publishReadAll(ctx, chatID, r.ReadAll, r.LastSeq)
		return r.State, nil
	}
}

// TypingMember is Typing for a caller known to be a member of the chat as of message at (a
// WebSocket connection that follows the chat): it costs no query.
func (s *Service) TypingMember(ctx context.Context, p Principal, chatID, at int64) {
	if ok, _ := s.typingGate.Allow(fmt.Sprintf("%d:%d", p.UserID, chatID), s.limiterNow()); !ok {
		return
	}
	s.pub.Publish(ctx, Event{Type: EventTyping, ChatID: chatID, ExceptUser: p.UserID, At: at,
		Data: TypingData{ChatID: chatID, UserID: p.UserID}})
}

// Typing tells the chat's other members that the caller is typing, at most once every 2 s.
func (s *Service) Typing(ctx context.Context, p Principal, chatID int64) error {
	c, err := s.memberChat(ctx, p, chatID)
	if err != nil {
		return err
	}
	if c.ReadOnly {
		return readOnly(c)
	}
	if ok, _ := s.typingGate.Allow(fmt.Sprintf("%d:%d", p.UserID, chatID), s.limiterNow()); !ok {
		return nil
	}
	s.pub.Publish(ctx, Event{Type: EventTyping, ChatID: chatID, ExceptUser: p.UserID, At: c.LastSeq,
		Data: TypingData{ChatID: chatID, UserID: p.UserID}})
	return nil
}
