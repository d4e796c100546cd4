package push_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/push"
	"github.com/wschat/chat/internal/testserver"
)

func sendMention(t *testing.T, s *testserver.Server, u *testserver.User, chatID int64, body string, all bool, mentioned ...*testserver.User) {
	t.Helper()
	in := chat.SendInput{ChatID: chatID, Body: body, ClientID: fmt.Sprint(time.Now().UnixNano()), MentionAll: all}
	for _, m := range mentioned {
		in.Mentions = append(in.Mentions, m.ID)
	}
	if _, _, err := s.Svc.Send(context.Background(), u.P(), in); err != nil {
		t.Fatal(err)
	}
}

func setNotify(t *testing.T, s *testserver.Server, u *testserver.User, chatID int64, notify string) {
	t.Helper()
	if r := s.Call(t, "PATCH", fmt.Sprintf("/api/v1/chats/%d/settings", chatID), u.Token, map[string]any{"notify": notify}, nil); r.Status != 200 {
		t.Fatalf("notify %s: %d %s", notify, r.Status, r.Body)
	}
}

// TestPushMentions: with notify=mentions a member is pushed only the messages that mention
// them or @all; a member with notify=none, or no longer a member, never. A worker stepped by
// hand (newByHand); Ben is its subscriber.
func TestPushMentions(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			h := newByHand(t, db)
			s, ps, ann, ben, benSub := h.s, h.ps, h.ann, h.ben, h.sub
			eve, dan := s.NewUser(t, "Eve"), s.NewUser(t, "Dan")
			g := s.Group(t, ann, "Team", false, ben, eve, dan)
			setNotify(t, s, ben, g, chat.NotifyMentions)
			setNotify(t, s, eve, g, chat.NotifyNone)
			setNotify(t, s, dan, g, chat.NotifyMentions)
			eveSub, danSub := subscribe(t, s, ps, eve), subscribe(t, s, ps, dan)
			if err := s.Svc.Leave(context.Background(), dan.P(), g); err != nil {
				t.Fatal(err)
			}

			send(t, s, ann, g, "nobody in particular")
			h.pushes(t, benSub, 0)

			sendMention(t, s, ann, g, "@Ben @Eve @Dan look", false, ben, eve, dan)
			got := h.pushes(t, benSub, 1)
			var p push.Payload
			if err := json.Unmarshal(got[0].Payload, &p); err != nil || p.Body != "Ann: @Ben @Eve @Dan look" {
				t.Errorf("the mention's push: %+v, %v", p, err)
			}

			sendMention(t, s, ann, g, "@all meeting", true)
			got = h.pushes(t, benSub, 2)
			if err := json.Unmarshal(got[1].Payload, &p); err != nil || p.Body != "Ann: @all meeting" {
				t.Errorf("@all's push: %+v, %v", p, err)
			}
			h.pushes(t, eveSub, 0)
			h.pushes(t, danSub, 0)
		})
	}
}
