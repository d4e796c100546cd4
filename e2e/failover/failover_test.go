// Package failover_test runs the scaled topology for real (three chatd processes behind nginx,
// sharing PostgreSQL and Redis) under steady traffic from reconnecting clients, and breaks it:
// Redis restarts, PostgreSQL becomes unreachable, one instance is killed, another stopped. After
// each break every client must hold every acknowledged message exactly once and in order, and
// the database must hold no duplicate. The clients also edit, delete and react all along, and
// each client's view of every message (body, deleted, edited, reactions, rev) must end equal to
// the database's.
//
// It needs nginx, redis-server and a PostgreSQL server (see README.md); without them it is
// skipped, or fails with CI=true.
package failover_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wschat/chat/deploy"
	"github.com/wschat/chat/internal/client"
	"github.com/wschat/chat/internal/testdb"
)

const (
	nInstances = 3
	nUsers     = 36
	nGroups    = 3 // besides the chat of everyone; user i is in group i%nGroups
	// sendEvery is each client's pace: about nUsers/sendEvery messages a second in all.
	sendEvery = 800 * time.Millisecond
	jwtSecret = "failover-test-secret-that-is-long-enough-for-hs256"
)

// cluster is the topology under test.
type cluster struct {
	t      *testing.T
	dir    string // process logs
	chatd  string
	env    []string
	addrs  []string
	inst   []*proc
	redis  *redisServer
	pg     *tcpProxy
	nginx  deploy.Nginx
	base   string
	access *accessLog
	phase  atomic.Pointer[string]
}

func (c *cluster) spawn(t *testing.T, i int) {
	env := append(slices.Clone(c.env), "CHAT_ADDR="+c.addrs[i], fmt.Sprintf("CHAT_INSTANCE_ID=chatd%d", i),
		"CHAT_DATA_DIR="+filepath.Join(c.dir, fmt.Sprintf("data%d", i)))
	c.inst[i] = startProc(t, c.t, c.dir, fmt.Sprintf("chatd%d", i), c.chatd, nil, env)
}

func startCluster(t *testing.T) *cluster {
	nginxBin := need(t, "nginx", "apt-get install -y nginx", deploy.NginxBinary)
	redisBin := need(t, "redis-server", "apt-get install -y redis-server", lookPath("redis-server", "/usr/bin/redis-server"))
	dbURL := testdb.Postgres(t) // skips (or fails in CI) without PostgreSQL

	c := &cluster{t: t, dir: t.TempDir()}
	built := time.Now()
	c.chatd = buildChatd(t, t.TempDir())
	t.Logf("chatd built in %v", time.Since(built).Round(time.Millisecond))
	c.redis = startRedis(t, redisBin, c.dir)
	c.pg = startProxy(t, postgresTarget(t))
	c.env = cleanEnv(
		"CHAT_DATABASE_URL="+viaProxy(t, dbURL, c.pg.Addr()),
		"CHAT_REDIS_URL=redis://"+c.redis.addr+"/0",
		"CHAT_REDIS_PREFIX="+testdb.RandomName("failover-"),
		"CHAT_JWT_SECRET="+jwtSecret,
		"CHAT_TRUSTED_PROXIES=127.0.0.1",
		"CHAT_RATE_LIMITS=off",
		"CHAT_PASSWORD_COST=test",
		"CHAT_SHUTDOWN_GRACE=5s",
		"CHAT_LOG_LEVEL=info",
		// Files in the S3-compatible gateway, which every instance shares.
		"CHAT_FILES_URL="+testdb.S3(t).URL("failover"),
	)
	c.inst = make([]*proc, nInstances)
	for i := range nInstances {
		c.addrs = append(c.addrs, freeAddr(t))
		c.spawn(t, i) // together, as a deployment starts them: the migration lock must hold
	}
	for i, a := range c.addrs {
		waitHTTP(t, "http://"+a+"/readyz", c.inst[i], 30*time.Second)
	}
	var p *proc
	p, c.nginx = startNginx(t, nginxBin, c.dir, c.addrs, 2)
	c.base = "http://" + c.nginx.Listen
	waitHTTP(t, c.base+"/healthz", p, 10*time.Second)
	c.access = &accessLog{path: filepath.Join(c.nginx.Prefix, "access.log")}
	c.setPhase("setup")
	return c
}

func (c *cluster) setPhase(p string) { c.phase.Store(&p) }

// member is one user with one reconnecting session through nginx.
type member struct {
	i     int
	id    int64
	c     *client.Client
	s     *client.Session
	chats []int64
	start map[int64]int64 // the cursors when traffic began

	mu   sync.Mutex
	got  map[int64][]client.Message
	view map[int64]map[int64]client.Message // chat, seq: the message as changed since
	// changeErrs are changes handed to OnChange that the client could not place.
	changeErrs []string
	closes     []closeEvent
	changes    int // changes made: the place in changeKinds of the next one
}

type closeEvent struct {
	phase string
	code  websocket.StatusCode
}

func (m *member) closesIn(phase string) []websocket.StatusCode {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []websocket.StatusCode
	for _, e := range m.closes {
		if e.phase == phase {
			out = append(out, e.code)
		}
	}
	return out
}

// sendRecord is one message a client sent (with retries under one client_id).
type sendRecord struct {
	m        *member
	chat     int64
	clientID string
	body     string
	msg      client.Message
	err      error
}

// traffic is steady sending, editing, deleting and reacting from every member until finish.
type traffic struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	sends []*sendRecord
	// changes counts the changes answered by kind ("edit", "delete", "react"); failed those
	// that were not (some fail on purpose of the break: the change may or may not be stored,
	// which the final comparison with the database tells).
	changes, failed map[string]int
}

// changeEvery is each client's pace of edits, deletes and reactions.
const changeEvery = 1200 * time.Millisecond

var emojis = []string{"👍", "🎉", "😂"}

// changeKinds is the order in which a member makes its changes (6 reactions, 3 edits, a
// delete), each member starting at its own place in it: every kind is made from the first
// round of changes on, however few rounds a busy machine gets through in a phase (a random
// pick once made no delete in a phase, and the phase failed for it).
var changeKinds = []string{"react", "edit", "react", "delete", "react", "edit", "react", "react", "edit", "react"}

// change makes one change to a recent message of one of m's chats, as m sees it: a reaction
// toggled, or m's own message edited or deleted. A change with no message to make it on is
// not made and is the member's next one.
func (tr *traffic) change(ctx context.Context, m *member, r *rand.Rand) {
	chatID := m.chats[r.IntN(len(m.chats))]
	// A recent message that is not deleted: for an edit or a delete, one of m's own.
	m.mu.Lock()
	kind := changeKinds[(m.i+m.changes)%len(changeKinds)]
	var recent []client.Message
	got := m.got[chatID]
	for k := len(got) - 1; k >= 0 && len(recent) < 20; k-- {
		msg := m.view[chatID][got[k].Seq]
		own := msg.SenderID != nil && *msg.SenderID == m.id
		if msg.Kind != "system" && msg.DeletedAt == nil && (kind == "react" || own) {
			recent = append(recent, msg)
		}
	}
	if len(recent) > 0 {
		m.changes++
	}
	m.mu.Unlock()
	if len(recent) == 0 {
		return
	}
	target := recent[r.IntN(len(recent))]
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var err error
	switch kind {
	case "edit":
		_, err = m.c.Edit(cctx, chatID, target.Seq, fmt.Sprintf("%s (edit %d)", target.Body, r.IntN(1000)))
	case "delete":
		err = m.c.Delete(cctx, chatID, target.Seq)
	default:
		e := emojis[r.IntN(len(emojis))]
		add := true
		for _, x := range target.Reactions {
			if x.Emoji == e && slices.Contains(x.UserIDs, m.id) {
				add = false
			}
		}
		_, err = m.c.React(cctx, chatID, target.Seq, e, add)
	}
	tr.mu.Lock()
	if err != nil {
		tr.failed[kind]++
	} else {
		tr.changes[kind]++
	}
	tr.mu.Unlock()
}

func (c *cluster) traffic(ctx context.Context, members []*member) *traffic {
	tr := &traffic{stop: make(chan struct{}), changes: map[string]int{}, failed: map[string]int{}}
	for _, m := range members {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			r := rand.New(rand.NewPCG(uint64(m.i)+1000, uint64(time.Now().UnixNano())))
			for {
				select {
				case <-tr.stop:
					return
				case <-time.After(changeEvery/2 + time.Duration(r.Int64N(int64(changeEvery)))):
				}
				tr.change(ctx, m, r)
			}
		}()
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			r := rand.New(rand.NewPCG(uint64(m.i), uint64(time.Now().UnixNano())))
			for {
				// Spread the clients' sends over the period.
				select {
				case <-tr.stop:
					return
				case <-time.After(sendEvery/2 + time.Duration(r.Int64N(int64(sendEvery)))):
				}
				rec := &sendRecord{m: m, chat: m.chats[r.IntN(len(m.chats))], clientID: m.s.NewClientID()}
				rec.body = fmt.Sprintf("from %d: %s", m.i, rec.clientID)
				tr.mu.Lock()
				tr.sends = append(tr.sends, rec)
				tr.mu.Unlock()
				sctx, cancel := context.WithTimeout(ctx, 45*time.Second)
				rec.msg, rec.err = m.s.SendID(sctx, rec.chat, rec.clientID, rec.body)
				cancel()
			}
		}()
	}
	return tr
}

// finish stops sending and waits for every send in flight to be acknowledged (or to fail),
// and every change in flight to be answered.
func (tr *traffic) finish() []*sendRecord {
	close(tr.stop)
	tr.wg.Wait()
	return tr.sends
}

func TestFailover(t *testing.T) {
	begin := time.Now()
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	members, chats := c.populate(t, ctx)
	t.Logf("cluster up with %d clients in %d chats after %v", len(members), len(chats), time.Since(begin).Round(time.Millisecond))

	// nginx refuses what the server would refuse, the way the server would say it.
	err := members[0].c.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/chats/%d/messages", chats[0]),
		map[string]string{"body": strings.Repeat("x", 70<<10), "client_id": "too-big"}, nil)
	if e := (*client.Error)(nil); !errors.As(err, &e) || e.Status != http.StatusRequestEntityTooLarge || e.Code != "too_large" {
		t.Errorf("a 70 KiB body through nginx: %v; want 413 too_large", err)
	}

	var all []*sendRecord
	phases := []struct {
		name string
		run  func(t *testing.T, tr func() *traffic) []*sendRecord
	}{
		{"redis-restart", func(t *testing.T, run func() *traffic) []*sendRecord {
			tr := run()
			time.Sleep(2 * time.Second)
			marks := c.logSizes()
			c.redis.restart(t, time.Second)
			time.Sleep(3 * time.Second)
			sends := tr.finish()
			// Every instance noticed and caught its connections up from the store.
			for i := range c.inst {
				if !c.logSince(i, marks[i], "broker resubscribed") {
					t.Errorf("chatd%d did not resubscribe after the Redis restart", i)
				}
			}
			return sends
		}},
		{"postgres-unreachable", func(t *testing.T, run func() *traffic) []*sendRecord {
			tr := run()
			time.Sleep(1500 * time.Millisecond)
			before := sumErrors(members, "unavailable")
			c.pg.setCut(true)
			cutAt := time.Now()
			// Over REST: 503 unavailable, passed on by nginx (not retried, it is a POST).
			err := members[0].c.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/chats/%d/messages", chats[0]),
				map[string]string{"body": "during the cut", "client_id": "probe-" + members[0].s.NewClientID()}, nil)
			var e *client.Error
			if !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || e.Code != "unavailable" {
				t.Errorf("REST send while PostgreSQL is unreachable: %v; want 503 unavailable", err)
			}
			if resp, err := http.Get(c.base + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("/readyz while PostgreSQL is unreachable: %v %v; want 503", resp, err)
			} else {
				resp.Body.Close()
			}
			// Over WebSocket: error unavailable, and the clients retry.
			for sumErrors(members, "unavailable") == before && time.Since(cutAt) < 5*time.Second {
				time.Sleep(50 * time.Millisecond)
			}
			if sumErrors(members, "unavailable") == before {
				t.Errorf("no send was answered unavailable while PostgreSQL was unreachable")
			}
			time.Sleep(2500*time.Millisecond - time.Since(cutAt))
			c.pg.setCut(false)
			time.Sleep(3 * time.Second)
			return tr.finish()
		}},
		{"sigkill", func(t *testing.T, run func() *traffic) []*sendRecord {
			c.access.mark()
			resends := sumResends(members)
			tr := run()
			time.Sleep(2 * time.Second)
			// Freeze it first, so that sends are surely in flight when it dies: some stored
			// and never acknowledged, some never read.
			c.inst[0].signal(syscall.SIGSTOP)
			time.Sleep(500 * time.Millisecond)
			c.inst[0].signal(syscall.SIGKILL)
			c.inst[0].wait(t, 10*time.Second)
			time.Sleep(3 * time.Second)
			waitConnected(t, ctx, members)
			time.Sleep(time.Second)
			sends := tr.finish()
			// The clients of the dead instance lost their connection without a close frame,
			// and came back through nginx to the survivors.
			dropped := 0
			for _, m := range members {
				for _, code := range m.closesIn("sigkill") {
					if code != -1 && code != websocket.StatusGoingAway {
						t.Errorf("client %d: close code %d after SIGKILL, want none", m.i, code)
					}
					dropped++
				}
			}
			if n := c.access.countWS(c.addrs[0], dropped); dropped < nUsers/(2*nInstances) || n != dropped {
				t.Errorf("%d clients dropped (want about %d: the clients are spread over the instances); nginx ended %d WebSockets of the killed instance",
					dropped, nUsers/nInstances, n)
			}
			// The sends in flight were sent again under their client_id (verify checks that
			// each is stored once).
			if sumResends(members) == resends {
				t.Errorf("no send was retried after the instance died")
			}
			return sends
		}},
		{"sigterm", func(t *testing.T, run func() *traffic) []*sendRecord {
			c.access.mark()
			tr := run()
			time.Sleep(1500 * time.Millisecond)
			c.inst[1].signal(syscall.SIGTERM)
			if code := c.inst[1].wait(t, 15*time.Second); code != 0 {
				t.Errorf("chatd1 exited with %d after SIGTERM, want 0", code)
			}
			waitConnected(t, ctx, members)
			time.Sleep(time.Second)
			sends := tr.finish()
			// Its clients were told 1012 and moved over.
			told := 0
			for _, m := range members {
				for _, code := range m.closesIn("sigterm") {
					if code != websocket.StatusServiceRestart {
						t.Errorf("client %d: close code %d on SIGTERM, want 1012", m.i, code)
					}
					told++
				}
			}
			if n := c.access.countWS(c.addrs[1], told); told == 0 || n != told {
				t.Errorf("%d clients told 1012; nginx ended %d WebSockets of the stopped instance", told, n)
			}
			return sends
		}},
	}
	for _, ph := range phases {
		ok := t.Run(ph.name, func(t *testing.T) {
			phaseBegin := time.Now()
			c.setPhase(ph.name)
			var tr *traffic
			sends := ph.run(t, func() *traffic { tr = c.traffic(ctx, members); return tr })
			all = append(all, sends...)
			for _, kind := range []string{"edit", "delete", "react"} {
				if tr.changes[kind] == 0 {
					t.Errorf("no %s was answered during %s (failed: %v)", kind, ph.name, tr.failed)
				}
			}
			if ph.name == "redis-restart" || ph.name == "postgres-unreachable" {
				// The clients stayed connected: what they got, the server healed by itself.
				for _, m := range members {
					if codes := m.closesIn(ph.name); len(codes) > 0 {
						t.Errorf("client %d lost its connection (close codes %v)", m.i, codes)
					}
				}
			}
			// Once the break is over, a file goes through nginx to whichever instance, is
			// attached and is downloaded by another member, from whichever instance.
			c.attachFile(t, ctx, members[0], members[1], chats[0], ph.name)
			c.verify(t, ctx, members, chats, all)
			t.Logf("%d messages sent in %v, changes %v (failed %v); %s", len(sends), time.Since(phaseBegin).Round(time.Millisecond),
				tr.changes, tr.failed, summary(members))
		})
		if !ok {
			break
		}
	}
	t.Logf("total %v", time.Since(begin).Round(time.Millisecond))
}

// attachFile uploads a file of 200 KiB (over nginx's 64 KiB cap on other bodies) as from,
// sends it in chatID, and checks that reader downloads the same bytes three times (nginx
// spreads the requests over the instances that are up) and finds it in the history.
func (c *cluster) attachFile(t *testing.T, ctx context.Context, from, reader *member, chatID int64, phase string) {
	t.Helper()
	data := make([]byte, 200<<10)
	for i := range data {
		data[i] = byte(i*7 + len(phase))
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, _ := mw.CreateFormFile("file", phase+".bin")
	part.Write(data)
	mw.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s/api/v1/chats/%d/files", c.base, chatID), &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+from.c.Token())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("upload through nginx: %v", err)
	}
	var up struct {
		File struct {
			ID  int64  `json:"id"`
			URL string `json:"url"`
		} `json:"file"`
	}
	err = json.NewDecoder(res.Body).Decode(&up)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || err != nil {
		t.Fatalf("upload through nginx: %d, %v", res.StatusCode, err)
	}
	var sent struct {
		ID    int64             `json:"id"`
		Files []json.RawMessage `json:"files"`
	}
	if err := from.c.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/chats/%d/messages", chatID),
		map[string]any{"body": "a file after " + phase, "client_id": "file-" + phase, "file_ids": []int64{up.File.ID}}, &sent); err != nil || len(sent.Files) != 1 {
		t.Fatalf("attach after %s: %v (%d files)", phase, err, len(sent.Files))
	}
	// The reader's session got it live, with its file.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		reader.mu.Lock()
		i := slices.IndexFunc(reader.got[chatID], func(m client.Message) bool { return m.ID == sent.ID })
		var files []client.File
		if i >= 0 {
			files = reader.got[chatID][i].Files
		}
		reader.mu.Unlock()
		if i >= 0 {
			if len(files) != 1 || files[0].ID != up.File.ID || files[0].Size != int64(len(data)) {
				t.Errorf("the message with the file after %s reached client %d with files %+v", phase, reader.i, files)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the message with the file after %s never reached client %d", phase, reader.i)
		}
	}
	for range 3 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+up.File.URL, nil)
		req.Header.Set("Authorization", "Bearer "+reader.c.Token())
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("download through nginx: %v", err)
		}
		got, err := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || err != nil || !bytes.Equal(got, data) {
			t.Errorf("download after %s: %d, %d bytes, %v", phase, res.StatusCode, len(got), err)
		}
	}
}

// populate registers the users, makes the chats and connects everyone.
func (c *cluster) populate(t *testing.T, ctx context.Context) ([]*member, []int64) {
	t.Helper()
	members := make([]*member, nUsers)
	tag := testdb.RandomName("")
	var wg sync.WaitGroup
	errs := make(chan error, nUsers)
	for i := range nUsers {
		m := &member{i: i, c: client.New(c.base), got: map[int64][]client.Message{}, view: map[int64]map[int64]client.Message{}}
		members[i] = m
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.c.Register(ctx, fmt.Sprintf("fo%d-%s@example.com", i, tag), fmt.Sprintf("Client %d", i), "password"); err != nil {
				errs <- fmt.Errorf("register %d: %w", i, err)
				return
			}
			m.id = m.c.UserID
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	newGroup := func(owner *member, title string, others []*member) int64 {
		ids := []int64{}
		for _, o := range others {
			ids = append(ids, o.id)
		}
		var out struct {
			ID int64 `json:"id"`
		}
		if err := owner.c.Do(ctx, http.MethodPost, "/api/v1/chats", map[string]any{"kind": "group", "title": title, "member_ids": ids}, &out); err != nil {
			t.Fatalf("create %s: %v", title, err)
		}
		owner.chats = append(owner.chats, out.ID)
		for _, o := range others {
			o.chats = append(o.chats, out.ID)
		}
		return out.ID
	}
	chats := []int64{newGroup(members[0], "Everyone", members[1:])}
	for g := range nGroups {
		var in []*member
		for _, m := range members[1:] {
			if m.i%nGroups == g && m != members[g] {
				in = append(in, m)
			}
		}
		chats = append(chats, newGroup(members[g], fmt.Sprintf("Group %d", g), in))
	}
	for _, m := range members {
		m.s = client.NewSession(m.c, client.SessionOptions{
			MinBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second,
			// Gaps must be healed by the server and sync alone, not by this client's REST reads.
			GapTimeout: -1,
			OnMessage: func(msg client.Message) {
				m.mu.Lock()
				m.got[msg.ChatID] = append(m.got[msg.ChatID], msg)
				if m.view[msg.ChatID] == nil {
					m.view[msg.ChatID] = map[int64]client.Message{}
				}
				m.view[msg.ChatID][msg.Seq] = msg
				m.mu.Unlock()
			},
			OnChange: func(ch client.Change) {
				m.mu.Lock()
				if v, ok := m.view[ch.ChatID][ch.Seq]; ok {
					m.view[ch.ChatID][ch.Seq] = ch.Apply(v)
				} else {
					m.changeErrs = append(m.changeErrs, fmt.Sprintf("a change of chat %d seq %d (rev %d) before its message", ch.ChatID, ch.Seq, ch.Rev))
				}
				m.mu.Unlock()
			},
			OnClose: func(code websocket.StatusCode, err error) {
				m.mu.Lock()
				m.closes = append(m.closes, closeEvent{phase: *c.phase.Load(), code: code})
				m.mu.Unlock()
			},
		})
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- m.s.Run(sctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("session of client %d: %v", m.i, err)
			}
		})
	}
	waitConnected(t, ctx, members)
	for _, m := range members {
		m.start = m.s.Cursors()
		for _, id := range m.chats {
			if _, ok := m.start[id]; !ok {
				t.Fatalf("client %d: chat %d missing from its hello", m.i, id)
			}
		}
	}
	return members, chats
}

func waitConnected(t *testing.T, ctx context.Context, members []*member) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, m := range members {
		if err := m.s.WaitConnected(wctx); err != nil {
			t.Fatalf("client %d did not (re)connect: %v", m.i, err)
		}
	}
}

// history reads a chat's whole history over REST, through nginx.
func history(ctx context.Context, c *client.Client, chatID int64) ([]client.Message, error) {
	var all []client.Message
	after := int64(0)
	for {
		var page struct {
			Messages []client.Message `json:"messages"`
			HasMore  bool             `json:"has_more"`
		}
		if err := c.Do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/chats/%d/messages?after_seq=%d&limit=200", chatID, after), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Messages...)
		if !page.HasMore || len(page.Messages) == 0 {
			return all, nil
		}
		after = page.Messages[len(page.Messages)-1].Seq
	}
}

// verify checks the whole run so far: every send acknowledged and stored once; every client
// holding, per chat, exactly the stored history since it started, in order.
func (c *cluster) verify(t *testing.T, ctx context.Context, members []*member, chats []int64, sends []*sendRecord) {
	t.Helper()
	hist := map[int64][]client.Message{}
	for _, id := range chats {
		var reader *member
		for _, m := range members {
			if slices.Contains(m.chats, id) {
				reader = m
				break
			}
		}
		h, err := history(ctx, reader.c, id)
		if err != nil {
			t.Fatalf("history of chat %d: %v", id, err)
		}
		hist[id] = h
		seen := map[string]int64{}
		for i, msg := range h {
			if msg.Seq != int64(i+1) {
				t.Fatalf("chat %d: message %d has seq %d: the history has a gap", id, i, msg.Seq)
			}
			if msg.ClientID != nil && msg.SenderID != nil {
				key := fmt.Sprintf("%d/%s", *msg.SenderID, *msg.ClientID)
				if prev, dup := seen[key]; dup {
					t.Errorf("chat %d: seqs %d and %d are the same send (sender/client_id %s)", id, prev, msg.Seq, key)
				}
				seen[key] = msg.Seq
			}
		}
	}
	// Every send was acknowledged, and what was acknowledged is what is stored.
	for _, s := range sends {
		if s.err != nil {
			t.Errorf("client %d: send %s to chat %d was never acknowledged: %v", s.m.i, s.clientID, s.chat, s.err)
			continue
		}
		h := hist[s.chat]
		if s.msg.Seq < 1 || s.msg.Seq > int64(len(h)) {
			t.Errorf("client %d: acknowledged seq %d of chat %d is not stored (last seq %d)", s.m.i, s.msg.Seq, s.chat, len(h))
			continue
		}
		got := h[s.msg.Seq-1]
		bodyOK := got.Body == s.body ||
			(got.EditedAt != nil && strings.HasPrefix(got.Body, s.body+" (edit ")) || // edits append to the body
			(got.DeletedAt != nil && got.Body == "")
		if got.ID != s.msg.ID || !bodyOK || got.ClientID == nil || *got.ClientID != s.clientID ||
			got.SenderID == nil || *got.SenderID != s.m.id {
			t.Errorf("client %d: acknowledged %+v, stored %+v", s.m.i, s.msg, got)
		}
	}
	// Every client ends with the history since it started, once and in order.
	deadline := time.Now().Add(20 * time.Second)
	for _, m := range members {
		for _, id := range m.chats {
			h := hist[id]
			want := h[m.start[id]:]
			var got []client.Message
			for {
				m.mu.Lock()
				got = slices.Clone(m.got[id])
				m.mu.Unlock()
				if len(got) >= len(want) || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if len(got) != len(want) {
				t.Errorf("client %d, chat %d: received %d messages, the history has %d since seq %d (stats %+v)",
					m.i, id, len(got), len(want), m.start[id], m.s.Stats())
				continue
			}
			for k := range want {
				if got[k].ID != want[k].ID || got[k].Seq != want[k].Seq {
					t.Errorf("client %d, chat %d: message %d is seq %d (id %d), want seq %d (id %d)",
						m.i, id, k, got[k].Seq, got[k].ID, want[k].Seq, want[k].ID)
					break
				}
			}
			// And its view of each of them, changed since, is the database's.
			var diff string
			for {
				diff = ""
				m.mu.Lock()
				for _, w := range want {
					if d := sameState(m.view[id][w.Seq], w); d != "" {
						diff = fmt.Sprintf("seq %d: %s", w.Seq, d)
						break
					}
				}
				m.mu.Unlock()
				if diff == "" || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if diff != "" {
				st := m.s.Stats()
				t.Errorf("client %d, chat %d: the view differs from the database: %s (changes %d, repeats %d, stale %d)",
					m.i, id, diff, st.Changes, st.Repeats, st.StaleChange)
			}
		}
		m.mu.Lock()
		for _, e := range m.changeErrs {
			t.Errorf("client %d: %s", m.i, e)
		}
		m.changeErrs = nil
		m.mu.Unlock()
	}
}

// sameState compares what a user sees of a message: its body, whether it is deleted, when it
// was edited, its reactions (each emoji's count and users; the order of the chips is not
// compared) and its rev. It returns "" when they agree.
func sameState(got, want client.Message) string {
	str := func(p *string) string {
		if p == nil {
			return "-"
		}
		return *p
	}
	reactions := func(rs []client.Reaction) string {
		var parts []string
		for _, r := range rs {
			ids := slices.Clone(r.UserIDs)
			slices.Sort(ids)
			parts = append(parts, fmt.Sprintf("%s×%d%v", r.Emoji, r.Count, ids))
		}
		slices.Sort(parts)
		return strings.Join(parts, " ")
	}
	switch {
	case got.Body != want.Body:
		return fmt.Sprintf("body %q, want %q", got.Body, want.Body)
	case str(got.DeletedAt) != str(want.DeletedAt):
		return fmt.Sprintf("deleted_at %s, want %s", str(got.DeletedAt), str(want.DeletedAt))
	case str(got.EditedAt) != str(want.EditedAt):
		return fmt.Sprintf("edited_at %s, want %s", str(got.EditedAt), str(want.EditedAt))
	case reactions(got.Reactions) != reactions(want.Reactions):
		return fmt.Sprintf("reactions %s, want %s", reactions(got.Reactions), reactions(want.Reactions))
	case got.Rev != want.Rev:
		return fmt.Sprintf("rev %d, want %d", got.Rev, want.Rev)
	}
	return ""
}

func sumErrors(members []*member, code string) int {
	n := 0
	for _, m := range members {
		n += m.s.Stats().SendErrors[code]
	}
	return n
}

func sumResends(members []*member) int {
	n := 0
	for _, m := range members {
		n += m.s.Stats().Resends
	}
	return n
}

// summary sums the clients' counters, for the log.
func summary(members []*member) string {
	var conn, resends, dups, ooo int
	codes := map[int]int{}
	errs := map[string]int{}
	for _, m := range members {
		st := m.s.Stats()
		conn += st.Connects
		resends += st.Resends
		dups += st.Duplicates
		ooo += st.OutOfOrder
		for k, v := range st.CloseCodes {
			codes[k] += v
		}
		for k, v := range st.SendErrors {
			errs[k] += v
		}
	}
	return fmt.Sprintf("connects %d, close codes %v, resends %d, send errors %v, duplicates dropped %d, held out of order %d",
		conn, codes, resends, errs, dups, ooo)
}

// logSizes notes how far each instance's log has come.
func (c *cluster) logSizes() []int64 {
	out := make([]int64, len(c.inst))
	for i, p := range c.inst {
		if st, err := os.Stat(p.log); err == nil {
			out[i] = st.Size()
		}
	}
	return out
}

// logSince reports whether instance i logged text after offset, waiting a little for it.
func (c *cluster) logSince(i int, offset int64, text string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(c.inst[i].log)
		if err == nil && int64(len(b)) >= offset && strings.Contains(string(b[offset:]), text) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}
