package hub

import (
	"bytes"
	"testing"

	"github.com/wschat/chat/internal/chat"
)

// TestEnvelopeThen: events that travel together come out of the broker payload as they went
// in, each with its own frame; a payload whose companion events are malformed is refused.
func TestEnvelopeThen(t *testing.T) {
	ev := chat.Event{Type: chat.EventMessageNew, ChatID: 7, Seq: 3, ExceptConn: "c1",
		Data: chat.MessageData{Message: chat.Message{ChatID: 7, Seq: 3, Body: "line\nbreak \"quoted\""}},
		Then: []chat.Event{
			{Type: chat.EventReadUpdated, UserID: 5, Data: chat.ReadUpdatedData{ChatID: 7, UserID: 5, LastReadSeq: 3}},
			{Type: chat.EventChatReadAll, ChatID: 7, Data: chat.ReadAllData{ChatID: 7, ReadAllSeq: 2}},
		}}
	e, topic, err := envelopeFor(ev)
	if err != nil || topic != chatTopic(7) {
		t.Fatalf("envelopeFor: %q, %v", topic, err)
	}
	want := [][]byte{e.frame}
	for _, tev := range ev.Then {
		te, _, err := envelopeFor(tev)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, te.frame)
	}
	payload, err := e.marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := unmarshalEnvelope(payload)
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != chat.EventMessageNew || got.ChatID != 7 || got.Seq != 3 || got.ExceptConn != "c1" || !bytes.Equal(got.frame, want[0]) {
		t.Fatalf("main event: %+v frame %s", got, got.frame)
	}
	if len(got.Then) != 2 {
		t.Fatalf("%d events with it, want 2", len(got.Then))
	}
	if th := got.Then[0]; th.Type != chat.EventReadUpdated || th.UserID != 5 || th.ChatID != 0 || !bytes.Equal(th.frame, want[1]) || th.F != nil {
		t.Errorf("read.updated: %+v frame %s", th, th.frame)
	}
	if th := got.Then[1]; th.Type != chat.EventChatReadAll || th.ChatID != 7 || !bytes.Equal(th.frame, want[2]) {
		t.Errorf("chat.read_all: %+v frame %s", th, th.frame)
	}

	for _, bad := range []string{
		`{"t":"message.new","c":7,"th":[null]}` + "\n{}",
		`{"t":"message.new","c":7,"th":[{"t":"typing","f":{}}]}` + "\n{}",                       // to nobody
		`{"t":"message.new","c":7,"th":[{"t":"typing","c":7,"th":[{"t":"x","c":7}]}]}` + "\n{}", // nested twice
	} {
		if _, err := unmarshalEnvelope([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	// Only a chat's event carries others, and never a subscription change.
	if _, _, err := envelopeFor(chat.Event{Type: chat.EventReadUpdated, UserID: 5, Then: ev.Then[:1]}); err == nil {
		t.Error("a user's event carried another")
	}
	if _, _, err := envelopeFor(chat.Event{Type: chat.EventMessageNew, ChatID: 7, Data: ev.Data,
		Then: []chat.Event{{Type: chat.EventChatRemoved, UserID: 5, Data: chat.ChatRemovedData{ChatID: 7}}}}); err == nil {
		t.Error("chat.removed travelled with a message")
	}
}
