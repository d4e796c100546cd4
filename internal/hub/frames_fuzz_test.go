package hub_test

import (
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/hub"
)

// The fuzz targets of the WebSocket endpoint send whole frames, as a client would, to a real
// server (SQLite store, in-process broker, hub, HTTP gate) over a real socket, one connection
// per fuzzing process:
//
//	go test ./internal/hub -run '^$' -fuzz '^FuzzFrame$' -fuzztime 30s -fuzzminimizetime 5s
//	go test ./internal/hub -run '^$' -fuzz '^FuzzSyncCursors$' -fuzztime 30s -fuzzminimizetime 5s
//
// `go test` alone runs the seeds (and testdata/fuzz) as regression tests.

// fuzzServer is a server without frame or send rate limits (the fuzzer sends as fast as it
// can) and with a small sync page, so that sync.truncated is reached.
func fuzzServer(f *testing.F) (*testServer, *testUser, map[string]int64) {
	s := startServer(f, serverConfig{Hub: hub.Options{FramesPerSecond: 1e9, FrameBurst: 1 << 30, QueueBytes: 1 << 30, SyncLimit: 3}})
	ann, ben := s.NewUser(f, "Ann"), s.NewUser(f, "Ben")
	priv, _, err := s.Svc.OpenPrivate(f.Context(), ann.P(), []int64{ben.ID})
	if err != nil {
		f.Fatal(err)
	}
	chats := map[string]int64{"private": priv.ID, "group": s.Group(f, ann, "Team", false, ben),
		"public": s.Group(f, ben, "Open", true), "hidden": s.Group(f, ben, "Hidden", false)}
	for i := range 5 {
		for _, k := range []string{"private", "group"} {
			if _, _, err := s.Svc.Send(f.Context(), ben.P(), chat.SendInput{ChatID: chats[k], Body: "seed " + strconv.Itoa(i), ClientID: k + strconv.Itoa(i)}); err != nil {
				f.Fatal(err)
			}
		}
	}
	return s, ann, chats
}

// serverFrameTypes are the frames API.md lets a server send.
var serverFrameTypes = []string{"hello", "message.new", "message.ack", "read.updated", "chat.read_all", "typing", "presence",
	"chat.added", "chat.removed", "member.joined", "member.left", "sync.truncated", "sync.done", "error", "pong",
	"chat.updated", "member.role", "user.updated", "message.updated", "reaction.updated"}

// clientErrorCodes are the codes an error frame may carry; "internal" is a server bug.
var clientErrorCodes = []string{chat.CodeInvalid, "unknown_type", chat.CodeNotFound, chat.CodeNotMember, chat.CodeRateLimited, chat.CodeUnavailable}

// checkServerFrame fails unless f is a documented server frame: an object with a known type, a
// ref that is a string or a number, data that is an object, and an error code from the list.
func checkServerFrame(t *testing.T, f frame) {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(f.Raw, &raw); err != nil {
		t.Fatalf("not a JSON object: %q", f.Raw)
	}
	for k := range raw {
		if k != "type" && k != "ref" && k != "data" {
			t.Fatalf("unknown member %q in %q", k, f.Raw)
		}
	}
	if !slices.Contains(serverFrameTypes, f.Type) {
		t.Fatalf("undocumented frame type %q: %q", f.Type, f.Raw)
	}
	if len(f.Ref) > 0 {
		var v any
		json.Unmarshal(f.Ref, &v)
		switch v.(type) {
		case string, float64:
		default:
			t.Fatalf("ref %s is neither a string nor a number", f.Ref)
		}
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(f.Data, &data); err != nil || data == nil {
		t.Fatalf("data is not an object: %q", f.Raw)
	}
	if f.Type == "error" {
		var e struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		json.Unmarshal(f.Data, &e)
		if !slices.Contains(clientErrorCodes, e.Code) || e.Message == "" {
			t.Fatalf("error frame %q", f.Raw)
		}
	}
}

// FuzzFrame sends any frame under 64 KiB: the connection stays open (the next ping is
// answered), and every frame the server sends meanwhile is a documented one.
func FuzzFrame(f *testing.F) {
	s, ann, chats := fuzzServer(f)
	for _, seed := range []string{
		`{"type":"ping","ref":"p"}`,
		`{"type":"ping","ref":12.5}`,
		`{"type":"message.send","ref":"m","data":{"chat_id":` + itoa64(chats["group"]) + `,"client_id":"c1","body":"hello"}}`,
		`{"type":"message.send","ref":"m","data":{"chat_id":` + itoa64(chats["public"]) + `,"client_id":"c1","body":"hello"}}`,
		`{"type":"message.send","ref":"m","data":{"chat_id":` + itoa64(chats["hidden"]) + `,"client_id":"c1","body":"hello"}}`,
		`{"type":"message.send","data":{"chat_id":` + itoa64(chats["private"]) + `,"client_id":"","body":"\u0000"}}`,
		`{"type":"message.send","data":{"chat_id":-1,"client_id":"x","body":"x"}}`,
		`{"type":"read","data":{"chat_id":` + itoa64(chats["group"]) + `,"seq":9223372036854775807}}`,
		`{"type":"read","data":{"chat_id":` + itoa64(chats["group"]) + `,"seq":-1}}`,
		`{"type":"typing","data":{"chat_id":` + itoa64(chats["private"]) + `}}`,
		`{"type":"typing","data":{"chat_id":"1"}}`,
		`{"type":"chat.open","data":{"chat_id":` + itoa64(chats["group"]) + `}}`,
		`{"type":"chat.open","data":{"chat_id":null}}`,
		`{"type":"chat.open","data":{"chat_id":` + itoa64(chats["hidden"]) + `}}`,
		`{"type":"presence.subscribe","ref":"ps","data":{"user_ids":[1,2,3,-1]}}`,
		`{"type":"presence.subscribe","data":{"user_ids":[]}}`,
		`{"type":"presence.subscribe","data":{"user_ids":null}}`,
		`{"type":"sync","ref":"s","data":{"cursors":{"` + itoa64(chats["group"]) + `":0,"` + itoa64(chats["public"]) + `":1}}}`,
		`{"type":"sync","data":{"cursors":{"x":1}}}`,
		`{"type":"sync","data":null}`,
		`{"type":"nope","ref":"u"}`,
		`{"type":"ping","ref":{"a":1}}`,
		`{"type":"ping","ref":""}`,
		`{"type":["ping"]}`,
		`{"type":"ping"`,
		`[]`, `null`, `0`, `""`, ``, "\xff\xfe",
		`{"type":"message.send","ref":"\ud800","data":{"chat_id":1,"client_id":"c","body":"b"}}`,
	} {
		f.Add([]byte(seed), false)
	}
	f.Add([]byte(`{"type":"ping"}`), true)

	c := s.Dial(f, ann)
	n := 0
	f.Fuzz(func(t *testing.T, b []byte, binary bool) {
		if len(b) > hub.MaxFrameBytes {
			return // closes with 1009: TestSizeLimits
		}
		c.Bind(t)
		typ := websocket.MessageText
		if binary {
			typ = websocket.MessageBinary
		}
		if err := c.WS.Write(t.Context(), typ, b); err != nil {
			t.Fatalf("write: %v", err)
		}
		n++
		for _, fr := range c.UntilPong("fuzz-" + strconv.Itoa(n)) {
			checkServerFrame(t, fr)
		}
	})
}

func itoa64(v int64) string { return strconv.FormatInt(v, 10) }

// FuzzSyncCursors sends sync with any cursor map: the answer is either one error invalid, or
// the missed messages of the caller's chats, each chat's in ascending seq order, each message
// once and after its cursor, refusals for chats the caller is not in, and sync.done.
func FuzzSyncCursors(f *testing.F) {
	s, ann, chats := fuzzServer(f)
	g, p := itoa64(chats["group"]), itoa64(chats["private"])
	for _, seed := range []string{
		`{}`, `null`, `[]`, `{"` + g + `":0}`, `{"` + g + `":0,"` + p + `":2}`, `{"` + g + `":100}`,
		`{"` + g + `":0,"0` + g + `":0}`, `{"+` + g + `":3}`, `{" ` + g + `":1}`, // non-canonical ids: no chat twice
		`{"` + itoa64(chats["public"]) + `":0,"` + itoa64(chats["hidden"]) + `":0,"987654":0}`,
		`{"` + g + `":-1}`, `{"` + g + `":1.5}`, `{"` + g + `":"1"}`, `{"-3":0}`, `{"9223372036854775808":0}`,
		`{"` + g + `":9223372036854775807}`, `{"` + g + `":0,"` + g + `":4}`,
	} {
		f.Add(seed)
	}
	member := map[int64]bool{chats["group"]: true, chats["private"]: true}

	c := s.Dial(f, ann)
	n := 0
	f.Fuzz(func(t *testing.T, cursors string) {
		if !json.Valid([]byte(cursors)) || !utf8.ValidString(cursors) {
			return // not a value: FuzzFrame covers malformed frames
		}
		c.Bind(t)
		n++
		ref := "s" + strconv.Itoa(n)
		frame, err := json.Marshal(map[string]any{"type": "sync", "ref": ref, "data": map[string]json.RawMessage{"cursors": json.RawMessage(cursors)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SendRaw(frame); err != nil {
			t.Fatal(err)
		}
		got := c.UntilPong("sync-pong-" + strconv.Itoa(n))
		for _, fr := range got {
			checkServerFrame(t, fr)
		}
		var want map[string]int64
		valid := json.Unmarshal([]byte(cursors), &want) == nil
		for k, v := range want {
			id, err := strconv.ParseInt(k, 10, 64)
			valid = valid && err == nil && id > 0 && strconv.FormatInt(id, 10) == k && v >= 0
		}
		valid = valid && len(want) <= 1000
		done := ofType(got, "sync.done")
		if !valid {
			if code, _ := errorOf(got, ref); code != chat.CodeInvalid || len(done) != 0 || len(ofType(got, "message.new")) != 0 {
				t.Fatalf("cursors %s: got %s, want one error invalid", cursors, raws(got))
			}
			return
		}
		if len(done) != 1 || string(done[0].Ref) != `"`+ref+`"` {
			t.Fatalf("cursors %s: %d sync.done in %s", cursors, len(done), raws(got))
		}
		last := map[int64]int64{}
		for _, fr := range got {
			switch fr.Type {
			case "message.new":
				var d struct {
					Message chat.Message `json:"message"`
				}
				json.Unmarshal(fr.Data, &d)
				m := d.Message
				cur, asked := want[strconv.FormatInt(m.ChatID, 10)]
				switch {
				case !member[m.ChatID]:
					t.Fatalf("sync sent a message of chat %d, not the caller's", m.ChatID)
				case !asked:
					t.Fatalf("sync sent a message of chat %d, which was not asked for", m.ChatID)
				case m.Seq <= cur:
					t.Fatalf("sync sent seq %d of chat %d, cursor %d", m.Seq, m.ChatID, cur)
				case m.Seq <= last[m.ChatID]:
					t.Fatalf("sync sent seq %d of chat %d after seq %d", m.Seq, m.ChatID, last[m.ChatID])
				}
				last[m.ChatID] = m.Seq
			case "error":
				var d struct {
					Code string `json:"code"`
				}
				json.Unmarshal(fr.Data, &d)
				if d.Code != chat.CodeNotFound && d.Code != chat.CodeNotMember {
					t.Fatalf("cursors %s: error %s", cursors, fr.Raw)
				}
			}
		}
	})
}
