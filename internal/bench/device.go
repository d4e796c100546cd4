package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Stats are the counters and histograms shared by the devices of a scenario (or of one step).
type Stats struct {
	Delivery ShardedHist // per (message, recipient): send to receipt of message.new
	Ack      Hist        // send to message.ack, for the sender
	Connect  Hist        // dial to hello

	Delivered    Counter      // message.new received for the first time by a device
	Expired      atomic.Int64 // connections closed with 4001 (the access token expired), among Drops
	Acked        atomic.Int64 // message.ack received
	LastAck      atomic.Int64 // when the latest message.ack came (µs, the tool's clock: now())
	Dups         atomic.Int64 // a connection got a seq twice: exactly-once broken
	OutOfOrder   atomic.Int64 // a connection got a seq after a later one (outside sync)
	Redelivered  atomic.Int64 // got again on a later connection (overlap the client drops)
	ErrorFrames  atomic.Int64
	Presence     atomic.Int64 // presence frames received
	Drops        atomic.Int64 // connections that ended while the scenario wanted them open
	ConnectFails atomic.Int64
	Reconnects   atomic.Int64

	mu      sync.Mutex
	samples []string
	kinds   map[string]int
}

// Note keeps the first few error messages of each kind (format) for the report.
func (s *Stats) Note(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kinds == nil {
		s.kinds = map[string]int{}
	}
	if s.kinds[format] < 3 && len(s.samples) < 30 {
		s.kinds[format]++
		s.samples = append(s.samples, fmt.Sprintf(format, args...))
	}
}

// Samples are the error messages kept by Note.
func (s *Stats) Samples() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.samples...)
}

// Device is one signed-in device with a WebSocket, as a well-behaved client runs it: it
// tracks the seqs it got per chat, and (with Reconnect) comes back after a drop and syncs.
// Its one goroutine reads the socket; Send may be called from any goroutine.
type Device struct {
	User      *User
	Base      string
	Stats     *Stats
	Reconnect bool
	Index     int
	Prefix    string // client_id prefix, unique per device and run

	mu        sync.Mutex
	ws        *WS
	stats     *Stats            // where counts go; SetStats swaps it between steps
	chats     map[int64]*seqSet // everything this device (the client) got, over all connections
	conn      map[int64]*seqSet // what the current connection got
	syncing   bool              // a sync is in progress on the current connection
	pages     int               // REST pages still to fetch after sync.truncated
	closing   bool              // Close was called
	killed    bool              // Kill was called: the next drop is intended
	droppedAt time.Time         // the last drop
	syncedAt  time.Time         // the last sync.done after a drop
	hello     map[int64]int64   // last seqs in the current connection's hello
	// revs are the changes (message.updated, reaction.updated) received per chat tracked by
	// TrackRevs, and revTimes when each came.
	revs     map[int64]*seqSet
	revTimes map[int64][]revAt
	done     chan struct{} // closed when the reader goroutine ends
	rng      *rand.Rand

	smu     sync.Mutex // orders sends; held while writing, never with mu
	sbuf    []byte
	nextRef int64
}

// errNotConnected is a send while the device has no connection.
var errNotConnected = errors.New("not connected")

// Connect dials and reads hello, recording the connect time; Run then reads the socket.
func (d *Device) Connect(ctx context.Context) error {
	d.mu.Lock()
	if d.stats == nil {
		d.stats = d.Stats
	}
	if d.chats == nil {
		d.chats, d.conn = map[int64]*seqSet{}, map[int64]*seqSet{}
		d.rng = rand.New(rand.NewPCG(uint64(d.Index), 7))
	}
	d.mu.Unlock()
	start := time.Now()
	err := d.dial(ctx)
	if err != nil {
		d.statsNow().ConnectFails.Add(1)
		return err
	}
	d.statsNow().Connect.Record(time.Since(start))
	return nil
}

// dial opens a connection, reads hello and, on a reconnection, sends sync.
func (d *Device) dial(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ws, err := DialWS(ctx, d.Base, d.User.Client.Token())
	if err != nil {
		return err
	}
	dl, _ := ctx.Deadline()
	ws.SetReadDeadline(dl)
	b, err := ws.Read()
	if err != nil {
		ws.Abort()
		return fmt.Errorf("read hello: %w", err)
	}
	ws.SetReadDeadline(time.Time{})
	var h helloFrame
	if frameType(b) != "hello" || json.Unmarshal(b, &h) != nil {
		ws.Abort()
		return fmt.Errorf("first frame is not hello: %.100s", b)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing {
		ws.Abort()
		return errors.New("device closed")
	}
	reconnect := d.ws != nil || len(d.chats) > 0
	d.ws = ws
	d.conn = make(map[int64]*seqSet, len(h.Data.Chats))
	d.hello = make(map[int64]int64, len(h.Data.Chats))
	cursors := map[string]int64{}
	for _, c := range h.Data.Chats {
		d.hello[c.ID] = c.LastSeq
		cs := d.chats[c.ID]
		if cs == nil {
			cs = newSeqSet(c.LastSeq) // a chat new to the client: its history is not ours to check
			d.chats[c.ID] = cs
		}
		cur := min(cs.contiguous(), c.LastSeq)
		d.conn[c.ID] = newSeqSet(cur)
		if cur < c.LastSeq {
			cursors[strconv.FormatInt(c.ID, 10)] = cur
		}
	}
	d.syncing = reconnect && len(cursors) > 0
	if !d.syncing && reconnect {
		d.syncedAt = time.Now()
	}
	if d.syncing {
		f, _ := json.Marshal(map[string]any{"type": "sync", "ref": "s", "data": map[string]any{"cursors": cursors}})
		if err := ws.WriteText(f); err != nil {
			ws.Abort()
			return err
		}
	}
	return nil
}

// Run reads the connection until ctx ends or Close; with Reconnect it comes back after drops.
func (d *Device) Run(ctx context.Context) {
	d.mu.Lock()
	d.done = make(chan struct{})
	d.mu.Unlock()
	defer close(d.done)
	for {
		err := d.readLoop()
		d.mu.Lock()
		closing := d.closing
		if !closing {
			d.droppedAt = time.Now()
			d.syncedAt = time.Time{}
		}
		d.mu.Unlock()
		if closing || ctx.Err() != nil {
			return
		}
		st := d.statsNow()
		st.Drops.Add(1)
		code := CloseCode(err)
		if code == 4001 {
			st.Expired.Add(1)
		}
		if !d.takeKilled() {
			st.Note("device %d dropped: %v", d.Index, err)
		}
		if !d.Reconnect {
			st.Note("connection dropped: %v", err)
			return
		}
		if code == 4001 { // token expired or session revoked: refresh, then come back
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := d.User.Client.Refresh(rctx); err != nil {
				st.Note("refresh: %v", err)
			}
			cancel()
		}
		// API.md: 1012 reconnect at once with jitter; anything else backs off, with jitter.
		wait := time.Duration(d.rng.Int64N(int64(time.Second)))
		backoff := 500 * time.Millisecond
		for {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
			if err := d.dial(ctx); err == nil {
				st.Reconnects.Add(1)
				break
			} else if ctx.Err() != nil || d.isClosing() {
				return
			} else {
				var he *HandshakeError
				if errors.As(err, &he) && he.Status == http.StatusUnauthorized {
					rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					d.User.Client.Refresh(rctx)
					cancel()
				}
			}
			wait = backoff/2 + time.Duration(d.rng.Int64N(int64(backoff)))
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

// takeKilled reports (once) whether the last drop was Kill's doing.
func (d *Device) takeKilled() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := d.killed
	d.killed = false
	return k
}

func (d *Device) isClosing() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closing
}

func (d *Device) statsNow() *Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// SetStats directs the device's counts to s (the next step of a scenario).
func (d *Device) SetStats(s *Stats) {
	d.mu.Lock()
	d.stats = s
	d.mu.Unlock()
}

// readLoop reads frames until the connection ends.
func (d *Device) readLoop() error {
	d.mu.Lock()
	ws := d.ws
	d.mu.Unlock()
	for {
		b, err := ws.Read()
		if err != nil {
			return err
		}
		d.handle(b)
	}
}

func (d *Device) handle(b []byte) {
	switch frameType(b) {
	case "presence":
		d.statsNow().Presence.Add(1)
	case "message.new":
		m, ok := parseMessage(b)
		if !ok {
			return
		}
		t := now()
		d.mu.Lock()
		st := d.stats
		if cs := d.conn[m.chatID]; cs != nil {
			fresh, inOrder := cs.add(m.seq)
			switch {
			case !fresh && m.seq <= d.hello[m.chatID]:
				// Live, yet already counted in hello's last_seq: a client that loads history
				// up to last_seq shows it twice.
				st.Dups.Add(1)
				st.Note("duplicate: chat %d seq %d on device %d came live although hello's last_seq was %d",
					m.chatID, m.seq, d.Index, d.hello[m.chatID])
			case !fresh:
				st.Dups.Add(1)
				st.Note("duplicate: chat %d seq %d twice on one connection of device %d", m.chatID, m.seq, d.Index)
			case !inOrder && !d.syncing:
				st.OutOfOrder.Add(1)
				st.Note("out of order: chat %d seq %d on device %d", m.chatID, m.seq, d.Index)
			}
		}
		fresh := true
		if cs := d.chats[m.chatID]; cs != nil {
			fresh, _ = cs.add(m.seq)
		}
		d.mu.Unlock()
		if !fresh {
			st.Redelivered.Add(1)
			return
		}
		st.Delivered.Add(d.Index, 1)
		if m.sentAt >= 0 {
			st.Delivery.RecordMicros(d.Index, t-m.sentAt)
		}
	case "message.ack":
		m, ok := parseMessage(b)
		if !ok {
			return
		}
		t := now()
		d.mu.Lock()
		st := d.stats
		if cs := d.conn[m.chatID]; cs != nil {
			cs.ack(m.seq)
		}
		if cs := d.chats[m.chatID]; cs != nil {
			cs.ack(m.seq)
		}
		d.mu.Unlock()
		st.Acked.Add(1)
		for prev := st.LastAck.Load(); t > prev && !st.LastAck.CompareAndSwap(prev, t); prev = st.LastAck.Load() {
		}
		if m.sentAt >= 0 {
			st.Ack.RecordMicros(t - m.sentAt)
		}
	case "reaction.updated", "message.updated":
		t := now()
		chatID, at, ok1 := intAfterFrom(b, keyChatID, 0)
		seq, at, ok2 := intAfterFrom(b, keySeq, at)
		rev, _, ok3 := intAfterFrom(b, keyRev, at)
		if !ok1 || !ok2 || !ok3 {
			return
		}
		d.mu.Lock()
		st := d.stats
		rs := d.revs[chatID]
		if rs == nil {
			d.mu.Unlock()
			return
		}
		fresh, inOrder := rs.add(rev)
		if fresh {
			d.revTimes[chatID] = append(d.revTimes[chatID], revAt{rev: rev, at: t, seq: seq, whole: frameType(b) == "message.updated"})
		}
		d.mu.Unlock()
		switch {
		case !fresh:
			st.Dups.Add(1)
			st.Note("duplicate: chat %d rev %d twice on device %d", chatID, rev, d.Index)
		case !inOrder:
			st.OutOfOrder.Add(1)
			st.Note("out of rev order: chat %d rev %d on device %d", chatID, rev, d.Index)
		default:
			st.Delivered.Add(d.Index, 1)
		}
	case "sync.done":
		d.mu.Lock()
		d.syncing = false
		if d.pages == 0 {
			d.syncedAt = time.Now()
		}
		d.mu.Unlock()
	case "sync.truncated":
		var f syncTruncated
		if json.Unmarshal(b, &f) == nil {
			d.mu.Lock()
			d.pages++
			d.mu.Unlock()
			go d.page(f.Data.ChatID, f.Data.FromSeq)
		}
	case "error":
		var f errorFrame
		json.Unmarshal(b, &f)
		st := d.statsNow()
		st.ErrorFrames.Add(1)
		st.Note("error frame: %s: %s", f.Data.Code, f.Data.Message)
	}
}

// page reads, over REST, what a sync left out (sync.truncated).
func (d *Device) page(chatID, from int64) {
	defer func() {
		d.mu.Lock()
		if d.pages--; d.pages == 0 && !d.syncing {
			d.syncedAt = time.Now()
		}
		d.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	after := from - 1
	for {
		var out struct {
			Messages []struct {
				Seq int64 `json:"seq"`
			} `json:"messages"`
			HasMore bool `json:"has_more"`
		}
		path := fmt.Sprintf("/api/v1/chats/%d/messages?after_seq=%d&limit=200", chatID, after)
		if err := d.User.Client.Do(ctx, http.MethodGet, path, nil, &out); err != nil {
			d.statsNow().Note("page chat %d: %v", chatID, err)
			return
		}
		d.mu.Lock()
		for _, m := range out.Messages {
			if cs := d.chats[chatID]; cs != nil {
				cs.add(m.Seq)
			}
			after = m.Seq
		}
		d.mu.Unlock()
		if !out.HasMore || len(out.Messages) == 0 {
			return
		}
	}
}

// Send sends a message.send on the current connection, with the send time in the body.
func (d *Device) Send(chatID int64, pad int) error {
	d.smu.Lock()
	defer d.smu.Unlock()
	d.mu.Lock()
	ws, closing := d.ws, d.closing
	d.mu.Unlock()
	if ws == nil || closing {
		return errNotConnected
	}
	if d.Prefix == "" {
		d.Prefix = "d" + strconv.Itoa(d.Index) + "-"
	}
	d.nextRef++
	d.sbuf = appendSend(d.sbuf[:0], d.nextRef, chatID, d.Prefix, now(), pad)
	return ws.WriteText(d.sbuf)
}

// Missing counts the seqs of chatID up to upto that the device never got.
func (d *Device) Missing(chatID, upto int64) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if cs := d.chats[chatID]; cs != nil {
		return cs.missing(upto)
	}
	return 0
}

// Has reports whether the device got every seq of chatID up to upto.
func (d *Device) Has(chatID, upto int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	cs := d.chats[chatID]
	return cs == nil || cs.contiguous() >= upto
}

// TrackRevs starts recording the changes of a chat after rev.
func (d *Device) TrackRevs(chatID, rev int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.revs == nil {
		d.revs, d.revTimes = map[int64]*seqSet{}, map[int64][]revAt{}
	}
	d.revs[chatID] = newSeqSet(rev)
	d.revTimes[chatID] = nil
}

// RevsReceived counts the distinct changes of a tracked chat received.
func (d *Device) RevsReceived(chatID int64) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return int64(len(d.revTimes[chatID]))
}

// RevsMissing counts the revs of a tracked chat up to upto that the device has not received,
// and of those, how many a message.updated of the same message with a later rev stands for
// (compacted: a connection that heals a gap in revs gets each changed message's latest state
// once); seqOf is the message of each rev, where known.
func (d *Device) RevsMissing(chatID, upto int64, seqOf map[int64]int64) (lost, compacted int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rs := d.revs[chatID]
	if rs == nil || rs.missing(upto) == 0 {
		return 0, 0
	}
	latest := map[int64]int64{} // seq: the latest rev of its message.updated received
	for _, r := range d.revTimes[chatID] {
		if r.whole {
			latest[r.seq] = max(latest[r.seq], r.rev)
		}
	}
	for rev := rs.base + 1; rev <= upto; rev++ {
		if rs.has(rev) {
			continue
		}
		if seq, ok := seqOf[rev]; ok && latest[seq] >= rev {
			compacted++
		} else {
			lost++
		}
	}
	return lost, compacted
}

// RevTimes is each change of a tracked chat received, with when.
func (d *Device) RevTimes(chatID int64) []revAt {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.revTimes[chatID]
}

// Chats lists the chats the device follows.
func (d *Device) Chats() []int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := make([]int64, 0, len(d.chats))
	for id := range d.chats {
		ids = append(ids, id)
	}
	return ids
}

// DropState is when the device last lost its connection and when it was back and synced.
func (d *Device) DropState() (dropped, synced time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.droppedAt, d.syncedAt
}

// Close ends the connection normally and waits for the reader.
func (d *Device) Close() {
	d.mu.Lock()
	d.closing = true
	ws, done := d.ws, d.done
	d.mu.Unlock()
	if ws != nil {
		ws.Close(1000)
	}
	if done != nil {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			ws.Abort()
		}
	}
}

// Kill drops the connection without a close frame (a device that goes away).
func (d *Device) Kill() {
	d.mu.Lock()
	ws := d.ws
	d.killed = true
	d.mu.Unlock()
	if ws != nil {
		ws.Abort()
	}
}
