package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/wschat/chat/internal/chat"
)

// Topic names: the one place that knows them. A broker may prefix them on the wire.
func chatTopic(id int64) string { return "chat." + strconv.FormatInt(id, 10) }
func userTopic(id int64) string { return "user." + strconv.FormatInt(id, 10) }

// inFrame is a frame from a client.
type inFrame struct {
	Type string          `json:"type"`
	Ref  json.RawMessage `json:"ref,omitempty"`
	Data json.RawMessage `json:"data"`
}

// encodeFrame builds a server frame {"type":..., "ref":..., "data":...}.
func encodeFrame(typ string, ref json.RawMessage, data any) ([]byte, error) {
	d, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
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
	// For chat.added/chat.removed: the chat whose subscription changes, and its last seq.
	AddChat    int64 `json:"ac,omitempty"`
	AddLastSeq int64 `json:"al,omitempty"`
	RemoveChat int64 `json:"rc,omitempty"`
	// For presence: the user whose state it is.
	PresenceUser int64 `json:"pu,omitempty"`
	Online       bool  `json:"on,omitempty"`
	// PublishedAt (µs) and CommittedAt (ms, messages only) since the epoch, for metrics.
	PublishedAt int64 `json:"pt,omitempty"`
	CommittedAt int64 `json:"ct,omitempty"`
	// Then are the envelopes of the events that travel with this one (chat.Event.Then), each
	// with its frame in F; they are delivered after it, in order.
	Then  []*envelope     `json:"th,omitempty"`
	F     json.RawMessage `json:"f,omitempty"`
	frame []byte
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
	for _, t := range e.Then {
		if t == nil || len(t.Then) > 0 || (t.ChatID == 0 && t.UserID == 0) {
			return nil, errBadEnvelope
		}
		t.frame, t.F = t.F, nil
	}
	return &e, nil
}

// envelopeFor turns a service event into an envelope with its frame.
func envelopeFor(ev chat.Event) (*envelope, string, error) {
	e := &envelope{Type: ev.Type, ChatID: ev.ChatID, UserID: ev.UserID, Seq: ev.Seq, ExceptUser: ev.ExceptUser,
		ExceptConn: ev.ExceptConn, Sessions: ev.Sessions}
	switch d := ev.Data.(type) {
	case chat.MessageData:
		e.CommittedAt = d.Message.CreatedAt.UnixMilli()
	case chat.ChatAddedData:
		e.AddChat, e.AddLastSeq = d.Chat.ID, d.Chat.LastSeq
	case chat.ChatRemovedData:
		e.RemoveChat = d.ChatID
	}
	if ev.Type != chat.EventSessionRevoke {
		f, err := encodeFrame(ev.Type, nil, ev.Data)
		if err != nil {
			return nil, "", err
		}
		e.frame = f
	}
	topic := userTopic(ev.UserID)
	if ev.ChatID != 0 {
		topic = chatTopic(ev.ChatID)
	}
	if len(ev.Then) > 0 && ev.ChatID == 0 {
		return nil, "", errors.New("events travel with a chat's event only")
	}
	for _, tev := range ev.Then {
		if len(tev.Then) > 0 || tev.Type == chat.EventSessionRevoke || tev.Type == chat.EventChatAdded || tev.Type == chat.EventChatRemoved {
			return nil, "", fmt.Errorf("%s cannot travel with another event", tev.Type)
		}
		t, _, err := envelopeFor(tev)
		if err != nil {
			return nil, "", err
		}
		t.F, t.frame = t.frame, nil
		e.Then = append(e.Then, t)
	}
	return e, topic, nil
}

// Client frame payloads.
type (
	sendData struct {
		ChatID   int64  `json:"chat_id"`
		ClientID string `json:"client_id"`
		Body     string `json:"body"`
	}
	readData struct {
		ChatID int64 `json:"chat_id"`
		Seq    int64 `json:"seq"`
	}
	typingData struct {
		ChatID int64 `json:"chat_id"`
	}
	syncData struct {
		Cursors map[string]int64 `json:"cursors"`
	}
	errorData struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	helloChat struct {
		ID            int64 `json:"id"`
		LastSeq       int64 `json:"last_seq"`
		MyLastReadSeq int64 `json:"my_last_read_seq"`
		ReadAllSeq    int64 `json:"read_all_seq"`
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

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
