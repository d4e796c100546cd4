package bench

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// Centrifugo as a side-by-side anchor (docs/PERFORMANCE.md): the same fanout, measured the
// same way, against a Centrifugo server speaking its JSON protocol over WebSocket. Each member
// connects with a token, subscribes one fresh channel, and the senders publish into it; a
// publication's offset in the channel plays the seq (lost, duplicated and out-of-order
// deliveries are counted on it), the publish reply plays the ack. Centrifugo delivers a
// publication to its publisher too, so a message has one recipient more than in the chat.

// CentrifugoConfig is what the tool needs to speak to a Centrifugo server.
type CentrifugoConfig struct {
	Secret string // client.token.hmac_secret_key: connection tokens are HS256 JWTs
}

// ReadCentrifugoConfig reads the token secret from a Centrifugo config.json.
func ReadCentrifugoConfig(path string) (CentrifugoConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return CentrifugoConfig{}, err
	}
	var f struct {
		Client struct {
			Token struct {
				HMACSecretKey string `json:"hmac_secret_key"`
			} `json:"token"`
		} `json:"client"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return CentrifugoConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	if f.Client.Token.HMACSecretKey == "" {
		return CentrifugoConfig{}, fmt.Errorf("%s: no client.token.hmac_secret_key", path)
	}
	return CentrifugoConfig{Secret: f.Client.Token.HMACSecretKey}, nil
}

// token is a connection JWT for user sub, valid for a day.
func (c CentrifugoConfig) token(sub string) string {
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]any{"sub": sub, "exp": time.Now().Add(24 * time.Hour).Unix()})
	msg := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(c.Secret))
	mac.Write([]byte(msg))
	return msg + "." + enc.EncodeToString(mac.Sum(nil))
}

// CentrifugoFanout runs the fanout scenario against the Centrifugo server at env.Base.
func CentrifugoFanout(ctx context.Context, env Env, cfg FanoutConfig, cc CentrifugoConfig) (*Result, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	channel := "chat:" + env.Tag + "-" + cfg.Name
	stats := &Stats{}
	ds := make([]*centDevice, cfg.Members)
	for i := range ds {
		ds[i] = &centDevice{index: i, channel: channel, stats: stats}
	}
	defer func() {
		for _, d := range ds {
			d.close()
		}
	}()
	env.logf("%s: connecting %d Centrifugo clients to %s", cfg.Name, len(ds), channel)
	err := parallel(ctx, len(ds), max(cfg.ConnConc, 50), func(ctx context.Context, i int) error {
		sub := fmt.Sprintf("%s-%d", env.Tag, i)
		if err := ds[i].connect(ctx, env.Base, cc.token(sub)); err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res, err := runFanout(ctx, env, cfg, centRoom(ds), 0, cfg.Members)
	if res != nil {
		res.Params["server"] = "centrifugo"
		for _, s := range res.Steps {
			s.Params["server"] = "centrifugo"
		}
	}
	return res, err
}

type centRoom []*centDevice

func (r centRoom) devices() []member {
	ms := make([]member, len(r))
	for i, d := range r {
		ms[i] = d
	}
	return ms
}

// lastSeq is the channel's top offset (a history call for no publications).
func (r centRoom) lastSeq(ctx context.Context) (int64, error) {
	b, err := r[0].call(ctx, "history", map[string]any{"channel": r[0].channel, "limit": 0})
	if err != nil {
		return 0, err
	}
	v, _ := intAfter(b, []byte(`"offset":`))
	return v, nil
}

// centDevice is one Centrifugo client subscribed to the room's channel: one reader
// goroutine; Send may be called from any goroutine.
type centDevice struct {
	index   int
	channel string
	ws      *WS

	mu      sync.Mutex
	stats   *Stats
	got     *seqSet
	nextID  int64
	pending map[int64]int64       // publish id -> send time (µs)
	calls   map[int64]chan []byte // other command ids -> their reply
	closing bool
	done    chan struct{}

	smu  sync.Mutex // orders writes of publishes
	sbuf []byte
}

var _ member = (*centDevice)(nil)

// connect dials, sends connect and subscribe, and starts the reader.
func (d *centDevice) connect(ctx context.Context, base, token string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	start := time.Now()
	ws, err := dialWS(ctx, base, "/connection/websocket", "")
	if err != nil {
		d.statsNow().ConnectFails.Add(1)
		return err
	}
	d.mu.Lock()
	d.ws, d.pending, d.calls, d.done = ws, map[int64]int64{}, map[int64]chan []byte{}, make(chan struct{})
	d.mu.Unlock()
	go d.read()
	if _, err := d.call(ctx, "connect", map[string]any{"token": token, "name": "chatbench"}); err != nil {
		return err
	}
	b, err := d.call(ctx, "subscribe", map[string]any{"channel": d.channel})
	if err != nil {
		return err
	}
	base0, _ := intAfter(b, []byte(`"offset":`)) // absent: 0
	d.mu.Lock()
	d.got = newSeqSet(base0)
	d.mu.Unlock()
	d.statsNow().Connect.Record(time.Since(start))
	return nil
}

// call sends a command and waits for its reply (an error reply is an error).
func (d *centDevice) call(ctx context.Context, method string, params any) ([]byte, error) {
	d.mu.Lock()
	d.nextID++
	id := d.nextID
	ch := make(chan []byte, 1)
	d.calls[id] = ch
	d.mu.Unlock()
	f, _ := json.Marshal(map[string]any{"id": id, method: params})
	d.smu.Lock()
	err := d.ws.WriteText(f)
	d.smu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case b := <-ch:
		if bytes.Contains(b, []byte(`"error":`)) {
			return nil, fmt.Errorf("%s: %s", method, b)
		}
		return b, nil
	case <-d.done:
		return nil, errors.New(method + ": connection closed")
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

var (
	keyID     = []byte(`"id":`)
	keyPush   = []byte(`"push":`)
	keyPub    = []byte(`"pub":`)
	keyOffset = []byte(`"offset":`)
	keyT      = []byte(`"t":`)
	keyError  = []byte(`"error":`)
)

// read handles frames until the connection ends. A frame may hold several replies and
// pushes, one JSON object a line.
func (d *centDevice) read() {
	defer close(d.done)
	for {
		b, err := d.ws.Read()
		if err != nil {
			d.mu.Lock()
			closing := d.closing
			d.mu.Unlock()
			if !closing {
				st := d.statsNow()
				st.Drops.Add(1)
				st.Note("centrifugo client %d dropped: %v", d.index, err)
			}
			return
		}
		for len(b) > 0 {
			line := b
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				line, b = b[:i], b[i+1:]
			} else {
				b = nil
			}
			d.handle(line)
		}
	}
}

func (d *centDevice) handle(line []byte) {
	switch {
	case len(bytes.TrimSpace(line)) == 0:
	case bytes.Equal(bytes.TrimSpace(line), []byte("{}")): // ping: answer pong
		d.smu.Lock()
		d.ws.WriteText([]byte("{}"))
		d.smu.Unlock()
	case bytes.Contains(line, keyPush):
		if !bytes.Contains(line, keyPub) {
			return // join, leave and the like
		}
		t := now()
		offset, ok := intAfter(line, keyOffset)
		sentAt, okT := intAfter(line, keyT)
		if !ok {
			return
		}
		d.mu.Lock()
		st := d.stats
		fresh, inOrder := d.got.add(offset)
		d.mu.Unlock()
		switch {
		case !fresh:
			st.Dups.Add(1)
			st.Note("duplicate: offset %d twice on centrifugo client %d", offset, d.index)
			return
		case !inOrder:
			st.OutOfOrder.Add(1)
			st.Note("out of order: offset %d on centrifugo client %d", offset, d.index)
		}
		st.Delivered.Add(d.index, 1)
		if okT {
			st.Delivery.RecordMicros(d.index, t-sentAt)
		}
	default:
		id, ok := intAfter(line, keyID)
		if !ok {
			return
		}
		t := now()
		d.mu.Lock()
		st := d.stats
		sentAt, isPublish := d.pending[id]
		delete(d.pending, id)
		ch := d.calls[id]
		delete(d.calls, id)
		d.mu.Unlock()
		switch {
		case isPublish && bytes.Contains(line, keyError):
			st.ErrorFrames.Add(1)
			st.Note("publish error: %s", line)
		case isPublish:
			st.Acked.Add(1)
			for prev := st.LastAck.Load(); t > prev && !st.LastAck.CompareAndSwap(prev, t); prev = st.LastAck.Load() {
			}
			st.Ack.RecordMicros(t - sentAt)
		case ch != nil:
			ch <- append([]byte(nil), line...)
		}
	}
}

func (d *centDevice) statsNow() *Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// Send publishes a message whose data carries the send time (chatID is not used: the device
// publishes into its channel).
func (d *centDevice) Send(_ int64, pad int) error {
	d.smu.Lock()
	defer d.smu.Unlock()
	t := now()
	d.mu.Lock()
	if d.closing || d.ws == nil {
		d.mu.Unlock()
		return errNotConnected
	}
	d.nextID++
	id := d.nextID
	d.pending[id] = t
	d.mu.Unlock()
	b := append(d.sbuf[:0], `{"id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"publish":{"channel":"`...)
	b = append(b, d.channel...)
	b = append(b, `","data":{"t":`...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, `,"p":"`...)
	for range pad {
		b = append(b, 'x')
	}
	b = append(b, `"}}}`...)
	d.sbuf = b
	return d.ws.WriteText(b)
}

func (d *centDevice) Has(_, upto int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.got == nil || d.got.contiguous() >= upto
}

func (d *centDevice) Missing(_, upto int64) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.got == nil {
		return 0
	}
	return d.got.missing(upto)
}

func (d *centDevice) SetStats(s *Stats) {
	d.mu.Lock()
	d.stats = s
	d.mu.Unlock()
}

func (d *centDevice) close() {
	d.mu.Lock()
	ws, done := d.ws, d.done
	already := d.closing
	d.closing = true
	d.mu.Unlock()
	if ws == nil || already {
		return
	}
	ws.Close(1000)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		ws.Abort()
	}
}
