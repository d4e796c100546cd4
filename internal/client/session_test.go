package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/client"
	"github.com/wschat/chat/internal/hub"
	"github.com/wschat/chat/internal/testserver"
)

// server is an in-process chat server whose WebSockets the test can cut and whose WebSocket
// endpoint it can refuse, as an instance that died would.
type server struct {
	*testserver.Server
	down atomic.Bool // refuse WebSocket handshakes with 503
}

// cut drops every WebSocket without a close frame.
func (s *server) cut() { s.CutSockets() }

// newServer starts a server whose access tokens last accessTTL and whose sync sends at most
// syncLimit messages per chat before sync.truncated (0: the default, 500).
func newServer(t *testing.T, accessTTL time.Duration, syncLimit int) *server {
	t.Helper()
	s := &server{}
	s.Server = testserver.Start(t, testserver.Config{
		AccessTTL: accessTTL,
		Chat:      chat.Options{RefreshTTL: time.Hour},
		Hub:       hub.Options{SyncLimit: syncLimit},
		WrapWS: func(ws http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if s.down.Load() {
					http.Error(w, "down", http.StatusServiceUnavailable)
					return
				}
				ws.ServeHTTP(w, r)
			})
		},
	})
	return s
}

func login(t *testing.T, url, email string) *client.Client {
	t.Helper()
	c := client.New(url)
	if err := c.Login(context.Background(), email, "password"); err != nil {
		t.Fatal(err)
	}
	return c
}

// recorder keeps what a session delivered.
type recorder struct {
	mu   sync.Mutex
	msgs map[int64][]client.Message
}

func (r *recorder) add(m client.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.msgs == nil {
		r.msgs = map[int64][]client.Message{}
	}
	r.msgs[m.ChatID] = append(r.msgs[m.ChatID], m)
}

func (r *recorder) seqs(chatID int64) []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int64
	for _, m := range r.msgs[chatID] {
		out = append(out, m.Seq)
	}
	return out
}

// start runs a session until the test ends and waits for its first connection.
func start(t *testing.T, c *client.Client, opts client.SessionOptions) (*client.Session, *recorder) {
	t.Helper()
	rec := &recorder{}
	opts.OnMessage = rec.add
	if opts.MinBackoff == 0 {
		opts.MinBackoff, opts.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	}
	s := client.NewSession(c, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("session: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := s.WaitConnected(wctx); err != nil {
		t.Fatal(err)
	}
	return s, rec
}

// waitSeqs waits until rec has delivered exactly the seqs from..to of a chat, in order.
func waitSeqs(t *testing.T, rec *recorder, chatID, from, to int64) {
	t.Helper()
	var want []int64
	for s := from; s <= to; s++ {
		want = append(want, s)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := rec.seqs(chatID)
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		if len(got) > len(want) || time.Now().After(deadline) {
			t.Fatalf("chat %d delivered seqs %v\nwant %v", chatID, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // nothing more may come
	if got := rec.seqs(chatID); len(got) != len(want) {
		t.Fatalf("chat %d delivered seqs %v after the last one, want %v", chatID, got[len(want):], want)
	}
}

const general = 2 // the demo group of all three users; its history ends at seq 4

func post(t *testing.T, c *client.Client, chatID int64, clientID string) client.Message {
	t.Helper()
	var m client.Message
	if err := c.Do(context.Background(), http.MethodPost, fmt.Sprintf("/api/v1/chats/%d/messages", chatID),
		map[string]string{"body": "over http " + clientID, "client_id": clientID}, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSessionSendsAndDelivers: sends are acknowledged, and every member's session (the
// sender's included) gets every message once and in order.
func TestSessionSendsAndDelivers(t *testing.T) {
	t.Parallel()
	srv := newServer(t, time.Hour, 0)
	_, firstRec := start(t, login(t, srv.URL, "first@example.com"), client.SessionOptions{})
	second, secondRec := start(t, login(t, srv.URL, "second@example.com"), client.SessionOptions{})

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				m, err := second.Send(context.Background(), general, fmt.Sprintf("hello %d-%d", w, i))
				if err != nil {
					t.Error(err)
					return
				}
				if m.Seq == 0 || m.ClientID == nil {
					t.Errorf("ack %+v has no seq or client_id", m)
				}
			}
		}()
	}
	wg.Wait()
	waitSeqs(t, firstRec, general, 5, 24)
	waitSeqs(t, secondRec, general, 5, 24)

	// A refused send fails at once, with its code.
	_, err := second.Send(context.Background(), general, "")
	if e, ok := err.(*client.SendError); !ok || e.Code != "invalid" {
		t.Errorf("empty body: %v, want a SendError invalid", err)
	}
	// The same client_id twice is one message.
	id := second.NewClientID()
	a, err := second.SendID(context.Background(), general, id, "once")
	if err != nil {
		t.Fatal(err)
	}
	b, err := second.SendID(context.Background(), general, id, "once")
	if err != nil || b.ID != a.ID {
		t.Errorf("resend: %+v, %v; want message %d", b, err, a.ID)
	}
	waitSeqs(t, firstRec, general, 5, 25)
}

// TestSessionReconnectsAndSyncs: connections cut and refused for a while; the session comes
// back and delivers what it missed, once and in order.
func TestSessionReconnectsAndSyncs(t *testing.T) {
	t.Parallel()
	srv := newServer(t, time.Hour, 0)
	var mu sync.Mutex
	var codes []websocket.StatusCode
	first, rec := start(t, login(t, srv.URL, "first@example.com"), client.SessionOptions{
		GapTimeout: -1, // the server and sync must do it alone
		OnClose: func(code websocket.StatusCode, err error) {
			mu.Lock()
			codes = append(codes, code)
			mu.Unlock()
		},
	})
	sender := login(t, srv.URL, "second@example.com")
	post(t, sender, general, "before")

	srv.down.Store(true)
	srv.cut()
	for i := range 10 {
		post(t, sender, general, "away"+strconv.Itoa(i))
	}
	time.Sleep(100 * time.Millisecond)
	if first.Connected() {
		t.Fatal("still connected after the cut")
	}
	srv.down.Store(false)
	for i := range 5 {
		post(t, sender, general, "back"+strconv.Itoa(i))
	}
	waitSeqs(t, rec, general, 5, 20)
	st := first.Stats()
	mu.Lock()
	defer mu.Unlock()
	if len(codes) == 0 || codes[0] != -1 || st.Connects < 2 {
		t.Errorf("close codes %v, %d connects; want a close without code, then a reconnect", codes, st.Connects)
	}
	if st.RESTPages != 0 || st.GapFills != 0 {
		t.Errorf("REST pages %d, gap fills %d; want 0 (sync alone)", st.RESTPages, st.GapFills)
	}
}

// TestSessionPagesTruncatedSync: more than a sync's worth missed; the rest comes over REST.
func TestSessionPagesTruncatedSync(t *testing.T) {
	t.Parallel()
	srv := newServer(t, time.Hour, 20)
	first, rec := start(t, login(t, srv.URL, "first@example.com"), client.SessionOptions{GapTimeout: -1})
	sender := login(t, srv.URL, "second@example.com")
	srv.down.Store(true)
	srv.cut()
	const n = 250 // a sync of 20, then more than one REST page of 200
	for i := range n {
		post(t, sender, general, "bulk"+strconv.Itoa(i))
	}
	srv.down.Store(false)
	waitSeqs(t, rec, general, 5, 4+n)
	if st := first.Stats(); st.RESTPages < 2 {
		t.Errorf("%d REST pages read, want 2; stats %+v", st.RESTPages, st)
	}
}

// TestSessionRefreshesOn4001: the access token expires under the connection; the server
// closes with 4001, the session refreshes and carries on without losing anything.
func TestSessionRefreshesOn4001(t *testing.T) {
	t.Parallel()
	// The access token lives 4 s: long enough for a sign-in and a handshake on a busy machine
	// (with 2 s, one slower than the token's life never connected), short enough to expire
	// under the open socket while the messages below are sent.
	srv := newServer(t, 4*time.Second, 0)
	first, rec := start(t, login(t, srv.URL, "first@example.com"), client.SessionOptions{GapTimeout: -1})
	sender := login(t, srv.URL, "second@example.com")
	deadline := time.Now().Add(5 * time.Second)
	i := 0
	for time.Now().Before(deadline) {
		if err := sender.Refresh(context.Background()); err != nil { // keep the sender signed in
			t.Fatal(err)
		}
		post(t, sender, general, "m"+strconv.Itoa(i))
		i++
		time.Sleep(100 * time.Millisecond)
	}
	waitSeqs(t, rec, general, 5, int64(4+i))
	st := first.Stats()
	if st.CloseCodes[4001] == 0 || st.Refreshes == 0 {
		t.Errorf("close codes %v, %d refreshes; want 4001 and a refresh", st.CloseCodes, st.Refreshes)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := first.Send(ctx, general, "still signed in"); err != nil {
		t.Fatal(err)
	}
}

// fake is a scripted server, for the client behaviour a real server shows only by chance.
type fake struct {
	t       *testing.T
	url     string
	conns   atomic.Int32
	history []client.Message // served by GET .../messages
	// script runs each WebSocket connection (n counts them from 1) after its hello.
	script func(n int, ws *websocket.Conn)
}

func newFake(t *testing.T, script func(n int, ws *websocket.Conn)) *fake {
	f := &fake{t: t, script: script}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/ws", func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		n := int(f.conns.Add(1))
		writeFrame(ws, "hello", "", map[string]any{"heartbeat_ms": 25000, "chats": []map[string]int64{{"id": 7, "last_seq": 0}}})
		f.script(n, ws)
	})
	mux.HandleFunc("GET /api/v1/chats/7/messages", func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.ParseInt(r.URL.Query().Get("after_seq"), 10, 64)
		var page []client.Message
		for _, m := range f.history {
			if m.Seq > after {
				page = append(page, m)
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"messages": page, "has_more": false})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func writeFrame(ws *websocket.Conn, typ, ref string, data any) error {
	f := map[string]any{"type": typ, "data": data}
	if ref != "" {
		f["ref"] = ref
	}
	b, _ := json.Marshal(f)
	return ws.Write(context.Background(), websocket.MessageText, b)
}

type inFrame struct {
	Type string `json:"type"`
	Ref  string `json:"ref"`
	Data struct {
		ChatID   int64  `json:"chat_id"`
		ClientID string `json:"client_id"`
		Body     string `json:"body"`
	} `json:"data"`
}

// readUntil reads client frames until one of type typ.
func readUntil(ws *websocket.Conn, typ string) (inFrame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return inFrame{}, err
		}
		var f inFrame
		json.Unmarshal(b, &f)
		if f.Type == typ {
			return f, nil
		}
	}
}

func msg(seq int64, body string) client.Message {
	return client.Message{ID: 100 + seq, ChatID: 7, Seq: seq, Kind: "text", Body: body}
}

// TestSessionResendsWithTheSameClientID: a send whose connection dies before the ack is sent
// again on the next connection with the same client_id, and a retryable error is retried.
func TestSessionResendsWithTheSameClientID(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []inFrame
	f := newFake(t, func(n int, ws *websocket.Conn) {
		in, err := readUntil(ws, "message.send")
		if err != nil {
			return
		}
		mu.Lock()
		got = append(got, in)
		mu.Unlock()
		switch n {
		case 1: // die without answering
			return
		case 2: // the database is down
			writeFrame(ws, "error", in.Ref, map[string]string{"code": "unavailable", "message": "try again"})
			if in, err = readUntil(ws, "message.send"); err != nil {
				return
			}
			mu.Lock()
			got = append(got, in)
			mu.Unlock()
		}
		m := msg(1, in.Data.Body)
		m.ClientID = &in.Data.ClientID
		writeFrame(ws, "message.ack", in.Ref, map[string]any{"message": m})
		readUntil(ws, "never")
	})
	s, rec := start(t, client.New(f.url), client.SessionOptions{})
	m, err := s.Send(context.Background(), 7, "hi")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("server got %d sends, want 3 (lost, unavailable, acked)", len(got))
	}
	for _, in := range got[1:] {
		if in.Data.ClientID != got[0].Data.ClientID || in.Data.Body != "hi" {
			t.Errorf("retry %+v differs from the first send %+v", in.Data, got[0].Data)
		}
	}
	if m.Seq != 1 || *m.ClientID != got[0].Data.ClientID {
		t.Errorf("Send returned %+v", m)
	}
	waitSeqs(t, rec, 7, 1, 1)
	if st := s.Stats(); st.Resends != 2 || st.SendErrors["unavailable"] != 1 {
		t.Errorf("stats %+v; want 2 resends and one unavailable", st)
	}
}

// TestSessionOrdersAndFillsGaps: duplicates are dropped, early seqs held back, and a gap that
// nothing fills is read over REST after GapTimeout.
func TestSessionOrdersAndFillsGaps(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(n int, ws *websocket.Conn) {
		for _, seq := range []int64{2, 1, 1, 3, 2, 5} { // 4 never comes live
			writeFrame(ws, "message.new", "", map[string]any{"message": msg(seq, "m")})
		}
		readUntil(ws, "never") // until the client goes
	})
	f.history = []client.Message{msg(1, "m"), msg(2, "m"), msg(3, "m"), msg(4, "m"), msg(5, "m")}
	s, rec := start(t, client.New(f.url), client.SessionOptions{GapTimeout: 200 * time.Millisecond})
	waitSeqs(t, rec, 7, 1, 5)
	if st := s.Stats(); st.Duplicates < 2 || st.GapFills != 1 || st.RESTPages != 1 {
		t.Errorf("stats %+v; want 2+ duplicates, one gap fill of one page", st)
	}
}

// TestSessionRestartReconnectsAtOnce: after 1012 the session is back within the jitter,
// without backing off.
func TestSessionRestartReconnectsAtOnce(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(n int, ws *websocket.Conn) {
		if n <= 3 {
			ws.Close(websocket.StatusServiceRestart, "restart")
			return
		}
		readUntil(ws, "never")
	})
	// A backoff waits at least 30 s (half of MinBackoff) before the second connection; four
	// connections and three jitters of at most 100 ms take far less, on a busy machine too.
	begin := time.Now()
	s, _ := start(t, client.New(f.url), client.SessionOptions{
		MinBackoff: time.Minute, MaxBackoff: 2 * time.Minute, RestartJitter: 100 * time.Millisecond,
	})
	deadline := begin.Add(25 * time.Second)
	for f.conns.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := f.conns.Load(); n < 4 {
		t.Fatalf("%d connections in %v; want 4 without backing off", n, time.Since(begin))
	}
	if st := s.Stats(); st.CloseCodes[1012] != 3 {
		t.Errorf("close codes %v, want three 1012", st.CloseCodes)
	}
}

// TestSessionSendsMentions: a session sends mentions and @all; the server keeps the members
// only.
func TestSessionSendsMentions(t *testing.T) {
	t.Parallel()
	srv := newServer(t, time.Hour, 0)
	first := login(t, srv.URL, "first@example.com")
	var me struct {
		ID int64 `json:"id"`
	}
	if err := first.Do(context.Background(), http.MethodGet, "/api/v1/users/me", nil, &me); err != nil {
		t.Fatal(err)
	}
	second, _ := start(t, login(t, srv.URL, "second@example.com"), client.SessionOptions{})
	m, err := second.SendMention(context.Background(), general, "@First hi", client.Mention{Users: []int64{me.ID, 1 << 40}, All: true})
	if err != nil || len(m.Mentions) != 1 || m.Mentions[0] != me.ID || !m.MentionAll {
		t.Errorf("mention: %+v, %v; want mentions [%d] and @all", m, err, me.ID)
	}
}
