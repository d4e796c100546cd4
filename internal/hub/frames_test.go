package hub

import (
	"bytes"
	"testing"

	"github.com/wschat/chat/internal/chat"
)

// TestEnvelopeThen: the effects that travel with a message (the sender's read mark, the
// chat's read-all mark) come out of the broker payload as the frames they would have had
// alone; nothing else can travel with an event, and a payload that claims them for anything
// but a message is refused.
func TestEnvelopeThen(t *testing.T) {
	readUpdated := chat.Event{Type: chat.EventReadUpdated, UserID: 5, Data: chat.ReadUpdatedData{ChatID: 7, UserID: 5, LastReadSeq: 3}}
	readAll := chat.Event{Type: chat.EventChatReadAll, ChatID: 7, Data: chat.ReadAllData{ChatID: 7, ReadAllSeq: 2}}
	ev := chat.Event{Type: chat.EventMessageNew, ChatID: 7, Seq: 3, ExceptConn: "c1",
		Data: chat.MessageData{Message: chat.Message{ChatID: 7, Seq: 3, Body: "line\nbreak \"quoted\""}},
		Then: []chat.Event{readUpdated, readAll}}
	e, topic, err := envelopeFor(ev)
	if err != nil || topic != chatTopic(7) {
		t.Fatalf("envelopeFor: %q, %v", topic, err)
	}
	alone := func(ev chat.Event) []byte {
		e, _, err := envelopeFor(ev)
		if err != nil {
			t.Fatal(err)
		}
		return e.frame
	}
	payload, err := e.marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := unmarshalEnvelope(payload)
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != chat.EventMessageNew || got.ChatID != 7 || got.Seq != 3 || got.ExceptConn != "c1" || !bytes.Equal(got.frame, e.frame) {
		t.Fatalf("main event: %+v frame %s", got, got.frame)
	}
	if got.ReadBy != 5 || got.ReadAll != 2 {
		t.Fatalf("read by %d, read all %d; want 5 and 2", got.ReadBy, got.ReadAll)
	}
	if f, err := got.readUpdatedFrame(); err != nil || !bytes.Equal(f, alone(readUpdated)) {
		t.Errorf("read.updated frame %s, want %s (%v)", f, alone(readUpdated), err)
	}

	for _, bad := range []chat.Event{
		{Type: chat.EventMessageNew, ChatID: 7, Seq: 3, Data: ev.Data, Then: []chat.Event{ // not at the message
			{Type: chat.EventReadUpdated, UserID: 5, Data: chat.ReadUpdatedData{ChatID: 7, UserID: 5, LastReadSeq: 2}}}},
		{Type: chat.EventMessageNew, ChatID: 7, Seq: 3, Data: ev.Data, Then: []chat.Event{ // another chat
			{Type: chat.EventChatReadAll, ChatID: 8, Data: chat.ReadAllData{ChatID: 8, ReadAllSeq: 2}}}},
		{Type: chat.EventMessageNew, ChatID: 7, Seq: 3, Data: ev.Data, Then: []chat.Event{readAll, readAll}},
		{Type: chat.EventMessageNew, ChatID: 7, Seq: 3, Data: ev.Data, Then: []chat.Event{
			{Type: chat.EventChatRemoved, UserID: 5, Data: chat.ChatRemovedData{ChatID: 7}}}},
		{Type: chat.EventTyping, ChatID: 7, Data: chat.TypingData{ChatID: 7, UserID: 5}, Then: []chat.Event{readAll}},
	} {
		if _, _, err := envelopeFor(bad); err == nil {
			t.Errorf("%s with %s: accepted", bad.Then[0].Type, bad.Type)
		}
	}
	for _, bad := range []string{
		`{"t":"typing","c":7,"ra":2}` + "\n{}",
		`{"t":"message.new","u":5,"s":3,"rb":5}` + "\n{}",
		`{"t":"message.new","c":7,"rb":5}` + "\n{}",
		`{"t":"message.new","c":7,"s":3,"ra":-1}` + "\n{}",
	} {
		if _, err := unmarshalEnvelope([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
