// Command syncflood makes the memory attack of issue 11 against a running server and reports
// how much the server's resident memory grew: one account fills a group with messages that
// JSON writes six bytes a character (24 KiB a frame), then opens sockets that never read and
// asks each for the whole history again and again with sync frames.
//
//	CHAT_RATE_LIMITS=off go run ./cmd/chatd &      # a server to attack (fresh data dir)
//	go run ./scripts/syncflood -url http://127.0.0.1:8080 -sockets 16
//
// It reads the server's memory from /metrics (process_resident_memory_bytes and
// go_memstats_heap_inuse_bytes), so it measures the server, not itself.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/wschat/chat/internal/client"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "syncflood:", err)
		os.Exit(1)
	}
}

func run() error {
	url := flag.String("url", "http://127.0.0.1:8080", "the server")
	sockets := flag.Int("sockets", 16, "sockets that never read")
	messages := flag.Int("messages", 500, "messages of 4,000 characters in the chat")
	syncs := flag.Int("syncs", 20, "sync frames per socket, each with another cursor")
	hold := flag.Duration("hold", 15*time.Second, "how long to watch the server's memory")
	flag.Parse()
	ctx := context.Background()

	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	owner, attacker := client.New(*url), client.New(*url)
	if err := owner.Register(ctx, "owner-"+stamp+"@flood.example", "Owner", "password-"+stamp); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	if err := attacker.Register(ctx, "attacker-"+stamp+"@flood.example", "Attacker", "password-"+stamp); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	var me struct{ ID int64 }
	if err := attacker.Do(ctx, http.MethodGet, "/api/v1/users/me", nil, &me); err != nil {
		return err
	}
	var g struct{ ID int64 }
	if err := owner.Do(ctx, http.MethodPost, "/api/v1/chats", map[string]any{"kind": "group", "title": "Flood", "member_ids": []int64{me.ID}}, &g); err != nil {
		return fmt.Errorf("create group: %w", err)
	}
	body := strings.Repeat("\x01", 4000)
	for i := range *messages {
		if err := owner.Do(ctx, http.MethodPost, fmt.Sprintf("/api/v1/chats/%d/messages", g.ID),
			map[string]string{"body": body, "client_id": "flood-" + strconv.Itoa(i)}, nil); err != nil {
			return fmt.Errorf("send %d (run the server with CHAT_RATE_LIMITS=off): %w", i, err)
		}
	}
	rss0, heap0, err := memory(*url)
	if err != nil {
		return err
	}
	fmt.Printf("before: RSS %.1f MiB, heap in use %.1f MiB (%d messages of 24 KiB in chat %d)\n", mib(rss0), mib(heap0), *messages, g.ID)

	ws := "ws" + strings.TrimPrefix(*url, "http") + "/api/v1/ws"
	for i := range *sockets {
		c, _, err := websocket.Dial(ctx, ws, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + attacker.Token()}}})
		if err != nil {
			return fmt.Errorf("socket %d: %w", i, err)
		}
		defer c.CloseNow()
		for k := range *syncs {
			f, _ := json.Marshal(map[string]any{"type": "sync", "ref": k, "data": map[string]any{"cursors": map[string]int{strconv.FormatInt(g.ID, 10): k}}})
			if err := c.Write(ctx, websocket.MessageText, f); err != nil {
				return fmt.Errorf("socket %d: %w", i, err)
			}
		}
	}
	var peakRSS, peakHeap int64
	for end := time.Now().Add(*hold); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		rss, heap, err := memory(*url)
		if err != nil {
			return err
		}
		peakRSS, peakHeap = max(peakRSS, rss), max(peakHeap, heap)
	}
	fmt.Printf("during %v with %d sockets x %d syncs: peak RSS %.1f MiB (+%.1f), peak heap in use %.1f MiB (+%.1f)\n",
		*hold, *sockets, *syncs, mib(peakRSS), mib(peakRSS-rss0), mib(peakHeap), mib(peakHeap-heap0))
	return nil
}

// memory reads the server's resident set and Go heap in use from its metrics.
func memory(url string) (rss, heap int64, err error) {
	res, err := http.Get(url + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(val, 64)
		switch name {
		case "process_resident_memory_bytes":
			rss = int64(v)
		case "go_memstats_heap_inuse_bytes":
			heap = int64(v)
		}
	}
	if rss == 0 || heap == 0 {
		return 0, 0, fmt.Errorf("%s/metrics has no process_resident_memory_bytes or go_memstats_heap_inuse_bytes", url)
	}
	return rss, heap, sc.Err()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
