// Command crashcheck checks what an embedded chatd keeps when it is killed under a send load.
//
//	crashcheck -url http://127.0.0.1:18473 -state /tmp/cc.json load    # until the server dies
//	crashcheck -url http://127.0.0.1:18473 -state /tmp/cc.json check   # after the restart
//
// load registers two users, makes -chats groups of both, and sends over -conns WebSockets of
// the first user, each keeping -inflight sends in flight; the second user marks each acked
// message read over its own WebSocket. Every message.ack (chat, seq, id, client id) and every
// read mark confirmed by read.updated on the reader's second device is written to the state
// file as it comes. check reads every chat's history over REST and fails unless every acked
// message is there under its seq, id and client id, the seqs run 1..last_seq without holes or
// repeats, and each member's read mark is at least the last confirmed one.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/wschat/chat/internal/client"
)

type state struct {
	Tag    string          `json:"tag"`
	Sender int64           `json:"sender"`
	Reader int64           `json:"reader"`
	Chats  []int64         `json:"chats"`
	ReadTo map[int64]int64 `json:"-"` // chat -> the reader's last confirmed mark
}

type acked struct {
	Chat     int64  `json:"chat"`
	Seq      int64  `json:"seq"`
	ID       int64  `json:"id"`
	ClientID string `json:"client_id"`
}

func main() {
	url := flag.String("url", "http://127.0.0.1:18473", "server")
	path := flag.String("state", "/tmp/crashcheck.json", "state file")
	chats := flag.Int("chats", 4, "chats")
	conns := flag.Int("conns", 4, "sending connections")
	inflight := flag.Int("inflight", 16, "sends in flight per connection")
	flag.Parse()
	ctx := context.Background()
	switch flag.Arg(0) {
	case "load":
		load(ctx, *url, *path, *chats, *conns, *inflight)
	case "check":
		if !check(ctx, *url, *path) {
			os.Exit(1)
		}
	default:
		log.Fatal("want load or check")
	}
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func load(ctx context.Context, url, path string, nChats, nConns, inflight int) {
	tag := fmt.Sprintf("cc%d", time.Now().UnixNano())
	sender, reader, reader2 := client.New(url), client.New(url), client.New(url)
	must(sender.Register(ctx, tag+"-s@example.com", "S", "password-"+tag))
	must(reader.Register(ctx, tag+"-r@example.com", "R", "password-"+tag))
	must(reader2.Login(ctx, tag+"-r@example.com", "password-"+tag))
	st := state{Tag: tag, Sender: sender.UserID, Reader: reader.UserID}
	for i := range nChats {
		var out struct {
			ID int64 `json:"id"`
		}
		must(sender.Do(ctx, http.MethodPost, "/api/v1/chats", map[string]any{"kind": "group", "title": fmt.Sprintf("cc %d", i), "member_ids": []int64{reader.UserID}}, &out))
		st.Chats = append(st.Chats, out.ID)
	}
	f, err := os.Create(path)
	must(err)
	w := bufio.NewWriter(f)
	var mu sync.Mutex
	record := func(kind string, v any) {
		b, _ := json.Marshal(v)
		mu.Lock()
		fmt.Fprintf(w, "%s %s\n", kind, b)
		w.Flush() // the tool outlives the server: its page cache is enough
		mu.Unlock()
	}
	record("state", st)

	// The reader's second device confirms its read marks (read.updated).
	rc, err := reader2.Dial(ctx)
	must(err)
	go func() {
		for fr := range rc.Frames() {
			if fr.Type == "read.updated" {
				var d struct {
					ChatID int64 `json:"chat_id"`
					Seq    int64 `json:"last_read_seq"`
				}
				json.Unmarshal(fr.Data, &d)
				record("read", map[string]int64{"chat": d.ChatID, "seq": d.Seq})
			}
		}
		log.Print("reader2 connection ended")
	}()
	marks, err := reader.Dial(ctx)
	must(err)
	go func() {
		for range marks.Frames() {
		}
	}()
	var markMu sync.Mutex

	var wg sync.WaitGroup
	for c := range nConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := sender.Dial(ctx)
			must(err)
			slots := make(chan struct{}, inflight)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for fr := range conn.Frames() {
					switch fr.Type {
					case "message.ack":
						var d struct {
							Message struct {
								ID       int64  `json:"id"`
								ChatID   int64  `json:"chat_id"`
								Seq      int64  `json:"seq"`
								ClientID string `json:"client_id"`
							} `json:"message"`
						}
						json.Unmarshal(fr.Data, &d)
						m := d.Message
						record("ack", acked{m.ChatID, m.Seq, m.ID, m.ClientID})
						if m.Seq%7 == 0 {
							markMu.Lock()
							marks.Send(ctx, "read", "", map[string]int64{"chat_id": m.ChatID, "seq": m.Seq})
							markMu.Unlock()
						}
						<-slots
					case "error":
						log.Printf("error frame: %s", fr.Data)
						<-slots
					}
				}
			}()
			for n := 0; ; n++ {
				select {
				case slots <- struct{}{}:
				case <-done:
					return
				}
				chatID := st.Chats[(c+n)%len(st.Chats)]
				err := conn.Send(ctx, "message.send", "", map[string]any{"chat_id": chatID, "client_id": fmt.Sprintf("c%d-%d", c, n), "body": fmt.Sprintf("message %d of connection %d", n, c)})
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond)
	log.Print("connections ended")
}

func check(ctx context.Context, url, path string) bool {
	f, err := os.Open(path)
	must(err)
	var st state
	st.ReadTo = map[int64]int64{}
	byChat := map[int64]map[int64]acked{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	nAcked := 0
	for sc.Scan() {
		kind, body, _ := bytes.Cut(sc.Bytes(), []byte(" "))
		switch string(kind) {
		case "state":
			must(json.Unmarshal(body, &st))
			st.ReadTo = map[int64]int64{}
		case "ack":
			var a acked
			must(json.Unmarshal(body, &a))
			if byChat[a.Chat] == nil {
				byChat[a.Chat] = map[int64]acked{}
			}
			if prev, ok := byChat[a.Chat][a.Seq]; ok && prev != a {
				log.Printf("FAIL: two acks for chat %d seq %d: %+v and %+v", a.Chat, a.Seq, prev, a)
			}
			byChat[a.Chat][a.Seq] = a
			nAcked++
		case "read":
			var r struct{ Chat, Seq int64 }
			must(json.Unmarshal(body, &r))
			st.ReadTo[r.Chat] = max(st.ReadTo[r.Chat], r.Seq)
		}
	}
	ok := true
	fail := func(format string, args ...any) {
		ok = false
		log.Printf("FAIL: "+format, args...)
	}
	reader := client.New(url)
	must(reader.Login(ctx, st.Tag+"-r@example.com", "password-"+st.Tag))
	maxAck := map[int64]int64{}
	for chatID, acks := range byChat {
		for seq := range acks {
			maxAck[chatID] = max(maxAck[chatID], seq)
		}
	}
	totalStored := 0
	for _, chatID := range st.Chats {
		var detail struct {
			LastSeq    int64 `json:"last_seq"`
			ReadAllSeq int64 `json:"read_all_seq"`
			MyRead     int64 `json:"my_last_read_seq"`
			Members    []struct {
				ID          int64 `json:"id"`
				LastReadSeq int64 `json:"last_read_seq"`
			} `json:"members"`
		}
		must(reader.Do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/chats/%d", chatID), nil, &detail))
		got := map[int64]acked{}
		var after int64
		textSeen := 0
		for {
			var page struct {
				Messages []struct {
					ID       int64   `json:"id"`
					Seq      int64   `json:"seq"`
					Kind     string  `json:"kind"`
					ClientID *string `json:"client_id"`
				} `json:"messages"`
				HasMore bool `json:"has_more"`
			}
			must(reader.Do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/chats/%d/messages?after_seq=%d&limit=200", chatID, after), nil, &page))
			for _, m := range page.Messages {
				if m.Seq != after+1 {
					fail("chat %d: seq %d after %d", chatID, m.Seq, after)
				}
				after = m.Seq
				cid := ""
				if m.ClientID != nil {
					cid = *m.ClientID
					textSeen++
				}
				got[m.Seq] = acked{chatID, m.Seq, m.ID, cid}
			}
			if !page.HasMore || len(page.Messages) == 0 {
				break
			}
		}
		if after != detail.LastSeq {
			fail("chat %d: history ends at %d, last_seq %d", chatID, after, detail.LastSeq)
		}
		for seq, a := range byChat[chatID] {
			if got[seq] != a {
				fail("chat %d: acked %+v, stored %+v", chatID, a, got[seq])
			}
		}
		var senderRead, readerRead int64 = -1, -1
		minRead := int64(1 << 62)
		for _, m := range detail.Members {
			minRead = min(minRead, m.LastReadSeq)
			if m.ID == st.Sender {
				senderRead = m.LastReadSeq
			}
			if m.ID == st.Reader {
				readerRead = m.LastReadSeq
			}
		}
		if senderRead < maxAck[chatID] || senderRead > detail.LastSeq {
			fail("chat %d: sender's read mark %d, last acked %d, last_seq %d", chatID, senderRead, maxAck[chatID], detail.LastSeq)
		}
		if readerRead < st.ReadTo[chatID] || readerRead > detail.LastSeq {
			fail("chat %d: reader's read mark %d, last confirmed %d, last_seq %d", chatID, readerRead, st.ReadTo[chatID], detail.LastSeq)
		}
		if detail.ReadAllSeq != minRead {
			fail("chat %d: read_all_seq %d, smallest member mark %d", chatID, detail.ReadAllSeq, minRead)
		}
		totalStored += textSeen
		log.Printf("chat %d: last_seq %d, %d acked (last %d), %d stored text messages; sender read %d, reader read %d (confirmed %d), read_all %d",
			chatID, detail.LastSeq, len(byChat[chatID]), maxAck[chatID], textSeen, senderRead, readerRead, st.ReadTo[chatID], detail.ReadAllSeq)
	}
	log.Printf("%d acks recorded, %d text messages stored (%d stored but never acked: sends in flight at the kill)", nAcked, totalStored, totalStored-nAcked)
	if ok {
		log.Print("PASS")
	}
	return ok
}
