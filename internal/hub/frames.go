package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/wschat/chat/internal/chat"
)

// Topic names: the one place that knows them. A broker may prefix them on the wire.
func chatTopic(id int64) string { return "chat." + strconv.FormatInt(id, 10) }
func userTopic(id int64) string { return "user." + strconv.FormatInt(id, 10) }

// usersTopic carries user.updated to every instance: each delivers it to its connections that
// share a chat with the user (envelope.Chats), once per connection.
const usersTopic = "users"

// inFrame is a frame from a client.
type inFrame struct {
	Type string          `json:"type"`
	Ref  json.RawMessage `json:"ref,omitempty"`
	Data json.RawMessage `json:"data"`
}

// encodeFrame builds a server frame {"type":..., "ref":..., "data":...}. Frames are not
// HTML-escaped (a "<" stays one byte, not six): they are never embedded in HTML, and the
// client inserts text with textContent.
func encodeFrame(typ string, ref json.RawMessage, data any) ([]byte, error) {
	buf := encodeBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 { // a rare big frame's buffer is not kept
			encodeBuffers.Put(buf)
		}
	}()
	buf.Reset()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(data); err != nil {
		return nil, err
	}
	d := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	b := make([]byte, 0, len(d)+len(typ)+len(ref)+32)
	b = append(b, `{"type":`...)
	b = strconv.AppendQuote(b, typ)
	if len(ref) > 0 {
		b = append(b, `,"ref":`...)
		b = append(b, ref...)
	}
	b = append(b, `,"data":`...)
	b = append(b, d...)
	return append(b, '}'), nil
}

// envelope is what travels over the broker: routing facts, then the frame already encoded, so
// that each instance decodes the small header once and every recipient shares the frame bytes.
type envelope struct {
	Type       string  `json:"t"`
	ChatID     int64   `json:"c,omitempty"`
	UserID     int64   `json:"u,omitempty"`
	Seq        int64   `json:"s,omitempty"`
	ExceptUser int64   `json:"xu,omitempty"`
	ExceptConn string  `json:"xc,omitempty"`
	Sessions   []int64 `json:"ss,omitempty"`
	// Deleted is, for session.revoke, that the sessions' account was deleted: its user goes
	// offline without the grace (chat.SessionRevokeData).
	Deleted bool `json:"dl,omitempty"`
	// For chat.added/chat.removed: the chat whose subscription changes, and the seq of the
	// change (the chat's last seq in chat.added, the leave's system message in chat.removed).
	AddChat    int64 `json:"ac,omitempty"`
	AddLastSeq int64 `json:"al,omitempty"`
	AddLastRev int64 `json:"ar,omitempty"` // and its last rev
	AddReadAll int64 `json:"aa,omitempty"` // and its read-all mark
	RemoveChat int64 `json:"rc,omitempty"`
	RemoveSeq  int64 `json:"rs,omitempty"`
	// At is, for a chat event that is not a message, the seq of the message it follows: it
	// reaches a connection right after that message (conn.go's streams).
	At int64 `json:"at,omitempty"`
	// Rev is, for message.updated and reaction.updated, the change's rev: a connection sends
	// a chat's changes in rev order and heals gaps from the store (conn.go).
	Rev int64 `json:"rv,omitempty"`
	// Rm is, for a system message that ends a user's membership, that user: their streams of
	// the chat end at it (rmEveryone: every member's, a deleted group).
	Rm int64 `json:"rm,omitempty"`
	// Chats are, for user.updated, the chats of the user it is about.
	Chats []int64 `json:"cs,omitempty"`
	// About is, for an event to a user's devices (read.updated), the chat it is about: only
	// the connections that follow that chat get it.
	About int64 `json:"ab,omitempty"`
	// For presence: the user whose state it is.
	PresenceUser int64 `json:"pu,omitempty"`
	Online       bool  `json:"on,omitempty"`
	LastSeen     int64 `json:"ls,omitempty"` // ms since the epoch, of an offline user
	// AddMembers is, for chat.added, the chat's member count: whether it is a big group.
	AddMembers int `json:"am,omitempty"`
	// AddSince is, for chat.added, the seq of the system message that began the membership
	// (0: a new chat), which the chat may have moved on from (AddLastSeq).
	AddSince int64 `json:"as,omitempty"`
	// PublishedAt (µs) and CommittedAt (ms, messages only) since the epoch, for metrics.
	PublishedAt int64 `json:"pt,omitempty"`
	CommittedAt int64 `json:"ct,omitempty"`
	// The effects of a sent message that travel with it (chat.Event.Then), as numbers: each
	// instance builds their small frames once. ReadBy is the sender, whose devices get
	// read.updated (their read mark is the message's seq); ReadAll is the chat's new read-all
	// mark, for chat.read_all to the chat's members.
	ReadBy  int64 `json:"rb,omitempty"`
	ReadAll int64 `json:"ra,omitempty"`
	frame   []byte
	// readAllFrame is ReadAll's chat.read_all frame, built by the instance that received it.
	readAllFrame []byte
	// readAllSeq is, for a chat.read_all event, its read-all mark, read from its frame by the
	// instance that received it.
	readAllSeq int64
	// heldAt is when the reorderer began holding the message for a predecessor (reorder.go).
	heldAt time.Time
}

func (e *envelope) marshal() ([]byte, error) {
	h, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(h)+1+len(e.frame))
	out = append(out, h...)
	out = append(out, '\n')
	return append(out, e.frame...), nil
}

var errBadEnvelope = errors.New("malformed envelope")

func unmarshalEnvelope(b []byte) (*envelope, error) {
	i := 0
	for i < len(b) && b[i] != '\n' {
		i++
	}
	if i == len(b) {
		return nil, errBadEnvelope
	}
	var e envelope
	if err := json.Unmarshal(b[:i], &e); err != nil {
		return nil, err
	}
	e.frame = b[i+1:]
	if (e.ReadBy != 0 || e.ReadAll != 0) && (e.Type != chat.EventMessageNew || e.ChatID == 0 || e.Seq <= 0 || e.ReadBy < 0 || e.ReadAll < 0) {
		return nil, errBadEnvelope
	}
	if isChange(e.Type) && (e.ChatID <= 0 || e.Rev <= 0 || e.At <= 0) {
		return nil, errBadEnvelope
	}
	if e.Type == chat.EventChatReadAll {
		var f struct {
			Data chat.ReadAllData `json:"data"`
		}
		if err := json.Unmarshal(e.frame, &f); err != nil || f.Data.ReadAllSeq < 0 {
			return nil, errBadEnvelope
		}
		e.readAllSeq = f.Data.ReadAllSeq
	}
	return &e, nil
}

// envelopeFor turns a service event into an envelope with its frame.
func envelopeFor(ev chat.Event) (*envelope, string, error) {
	e := &envelope{Type: ev.Type, ChatID: ev.ChatID, UserID: ev.UserID, Seq: ev.Seq, ExceptUser: ev.ExceptUser,
		ExceptConn: ev.ExceptConn, Sessions: ev.Sessions, At: ev.At, Rev: ev.Rev}
	switch d := ev.Data.(type) {
	case chat.MessageData:
		if ev.Type == chat.EventMessageNew {
			e.CommittedAt = d.Message.CreatedAt.UnixMilli()
			e.Rm = removedBy(d.Message)
		}
	case chat.ChatAddedData:
		e.AddChat, e.AddLastSeq, e.AddLastRev, e.AddReadAll, e.AddMembers = d.Chat.ID, d.Chat.LastSeq, d.Chat.LastRev, d.Chat.ReadAllSeq, d.Chat.MemberCount
		e.AddSince, e.Seq = ev.Seq, 0
	case chat.ChatRemovedData:
		e.RemoveChat, e.RemoveSeq, e.Seq = d.ChatID, ev.Seq, 0
	case chat.ReadUpdatedData:
		e.About = d.ChatID
	case chat.ChatSettings:
		e.About = d.ChatID
	case chat.SessionRevokeData:
		e.Deleted = d.AccountDeleted
	}
	if ev.Type != chat.EventSessionRevoke {
		f, err := encodeFrame(ev.Type, nil, ev.Data)
		if err != nil {
			return nil, "", err
		}
		e.frame = f
	}
	topic := userTopic(ev.UserID)
	switch {
	case ev.ChatID != 0:
		topic = chatTopic(ev.ChatID)
	case ev.Type == chat.EventUserUpdated:
		topic, e.Chats = usersTopic, ev.Chats
	}
	for _, t := range ev.Then {
		if err := e.attach(ev, t); err != nil {
			return nil, "", err
		}
	}
	return e, topic, nil
}

// attach records an event that travels with a message event: the sender's read.updated at the
// message, or the chat's chat.read_all. No other event can travel with another.
func (e *envelope) attach(ev, t chat.Event) error {
	if ev.Type == chat.EventMessageNew && ev.ChatID != 0 && ev.Seq > 0 {
		switch d := t.Data.(type) {
		case chat.ReadUpdatedData:
			if t.Type == chat.EventReadUpdated && t.UserID != 0 && d.UserID == t.UserID && d.ChatID == ev.ChatID &&
				d.LastReadSeq == ev.Seq && d.UnreadCount == 0 && e.ReadBy == 0 {
				e.ReadBy = t.UserID
				return nil
			}
		case chat.ReadAllData:
			if t.Type == chat.EventChatReadAll && t.ChatID == ev.ChatID && d.ChatID == ev.ChatID && d.ReadAllSeq > 0 && e.ReadAll == 0 {
				e.ReadAll = d.ReadAllSeq
				return nil
			}
		}
	}
	return fmt.Errorf("%s cannot travel with %s", t.Type, ev.Type)
}

// chatRemovedFrame is a chat.removed the hub makes itself, for a leave whose own frame it does
// not have (the audit's mend, a hello's drop, a comeback's leave told first). Encoding a chat
// id and a reason cannot fail.
func chatRemovedFrame(chatID int64, reason string) []byte {
	f, _ := encodeFrame(chat.EventChatRemoved, nil, chat.ChatRemovedData{ChatID: chatID, Reason: reason})
	return f
}

// readUpdatedFrame is the read.updated frame of ReadBy's devices.
func (e *envelope) readUpdatedFrame() ([]byte, error) {
	return encodeFrame(chat.EventReadUpdated, nil, chat.ReadUpdatedData{ChatID: e.ChatID, UserID: e.ReadBy, LastReadSeq: e.Seq})
}

// Client frame payloads.
type (
	sendData struct {
		ChatID   int64   `json:"chat_id"`
		ClientID string  `json:"client_id"`
		Body     string  `json:"body"`
		FileIDs  []int64 `json:"file_ids"`
		// ReplyToSeq is the seq of the message of the chat this one answers (0: none).
		ReplyToSeq int64 `json:"reply_to_seq"`
		// Mentions are the users the message mentions, MentionAll is @all (chat.SendInput).
		Mentions   []int64 `json:"mentions"`
		MentionAll bool    `json:"mention_all"`
	}
	readData struct {
		ChatID int64  `json:"chat_id"`
		Seq    *int64 `json:"seq"` // required: nil when the frame has none
	}
	typingData struct {
		ChatID int64 `json:"chat_id"`
	}
	presenceSubscribeData struct {
		UserIDs []int64 `json:"user_ids"`
	}
	chatOpenData struct {
		ChatID *int64 `json:"chat_id"` // 0 or null: no chat open
	}
	syncData struct {
		// Cursors are per chat the last seq seen (a number), or {"seq": S, "rev": R}: the
		// last seq and the last rev seen (syncCursor).
		Cursors map[string]syncCursor `json:"cursors"`
	}
	errorData struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		// Field names the input at fault, as a REST answer's errors[].location does
		// ("body.reply_to_seq"), when the error is about one field.
		Field string `json:"field,omitempty"`
	}
	helloChat struct {
		ID            int64 `json:"id"`
		LastSeq       int64 `json:"last_seq"`
		LastRev       int64 `json:"last_rev"`
		MyLastReadSeq int64 `json:"my_last_read_seq"`
		ReadAllSeq    int64 `json:"read_all_seq"`
		// UnreadCount and UnreadMentions are as GET /chats has them at the hello's last_seq.
		UnreadCount    int64 `json:"unread_count"`
		UnreadMentions int64 `json:"unread_mentions"`
		// Notify and MutedUntil are the user's notification settings of the chat, as in the
		// chat list: a device that reconnects learns changes it missed while away.
		Notify     string     `json:"notify"`
		MutedUntil *chat.Time `json:"muted_until"`
	}
	helloUser struct {
		ID        int64     `json:"id"`
		Email     string    `json:"email"`
		Name      string    `json:"name"`
		CreatedAt chat.Time `json:"created_at"`
	}
	helloData struct {
		User        helloUser   `json:"user"`
		SessionID   int64       `json:"session_id"`
		HeartbeatMS int64       `json:"heartbeat_ms"`
		Chats       []helloChat `json:"chats"`
	}
	syncTruncatedData struct {
		ChatID  int64 `json:"chat_id"`
		FromSeq int64 `json:"from_seq"`
	}
)

var encodeBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// isChange reports whether a frame type is a change of messages, ordered by rev.
func isChange(typ string) bool {
	return typ == chat.EventMessageUpdated || typ == chat.EventReactionUpdated
}

// syncCursor is one chat's cursor of a sync frame: a plain number (the last seq seen; no
// changes asked for) or {"seq": S, "rev": R} (and every change after rev R).
type syncCursor struct {
	Seq     int64
	Rev     int64
	WithRev bool
}

func (c *syncCursor) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var v struct {
			Seq *int64 `json:"seq"`
			Rev *int64 `json:"rev"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		if v.Seq == nil || v.Rev == nil {
			return errors.New("a cursor object needs seq and rev")
		}
		*c = syncCursor{Seq: *v.Seq, Rev: *v.Rev, WithRev: true}
		return nil
	}
	*c = syncCursor{}
	// null would unmarshal as nothing, a cursor of 0: the whole history, which no client means.
	if err := json.Unmarshal(b, &c.Seq); err != nil || string(b) == "null" {
		return errors.New(`a cursor is a seq (an integer written in digits only) or {"seq": S, "rev": R}`)
	}
	return nil
}
