package hub

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/wschat/chat/internal/chat"
)

// MaxFrameBytes is the largest frame a client may send (1009 beyond it).
const MaxFrameBytes = 64 << 10

// Gate decides who may open a socket; the HTTP layer provides it (credentials, Origin check).
type Gate interface {
	// Admit authenticates the handshake, or returns the HTTP status and error to refuse it with.
	Admit(r *http.Request) (chat.Principal, int, error)
	// Refuse writes a refused handshake's answer.
	Refuse(w http.ResponseWriter, r *http.Request, status int, err error)
}

// Handler serves GET /api/v1/ws.
func (h *Hub) Handler(gate Gate) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, status, err := gate.Admit(r)
		if err != nil {
			gate.Refuse(w, r, status, err)
			return
		}
		hj := &hijacker{ResponseWriter: w, writeTimeout: h.opts.WriteTimeout}
		ws, err := websocket.Accept(hj, r, &websocket.AcceptOptions{
			InsecureSkipVerify: true, // the gate has checked the Origin against our own list
			CompressionMode:    websocket.CompressionDisabled,
		})
		if err != nil {
			if hj.refused != 0 { // a malformed handshake: Accept's answer, as a problem document
				gate.Refuse(w, r, hj.refused, errors.New(strings.TrimSpace(hj.refusal.String())))
			}
			return
		}
		ws.SetReadLimit(MaxFrameBytes)
		h.serve(ws, hj.conn, p)
	})
}

// serve sets a connection up (hello) on the handler's goroutine, then hands it to a reader
// and a writer goroutine of its own and returns: the connection outlives the request, and
// returning lets net/http drop what it holds per request (its buffers, the request, and the
// stack that setting up grew), which would otherwise stay for the life of every connection.
func (h *Hub) serve(ws *websocket.Conn, nc *corkConn, p chat.Principal) {
	ctx, cancel := context.WithCancel(h.ctx)
	c := &conn{h: h, id: h.opts.InstanceID + "/" + strconv.FormatUint(h.nextConn.Add(1), 10), userID: p.UserID, sessionID: p.SessionID,
		ws: ws, nc: nc, ctx: ctx, cancel: cancel, out: newOutbox(h.opts.QueueBytes, &h.queued, h.opts.QueueTotal),
		streams: map[int64]*stream{}, settingUp: true, inflight: make(chan struct{}, maxInFlight)}
	if err := h.addConn(c); err != nil {
		cancel()
		c.out.discard()
		code := closeRestart
		if errors.Is(err, errTooManyConns) {
			code = closePolicy
		}
		ws.Close(code, err.Error())
		return
	}
	hello, cameOnline, chats, err := h.hello(ctx, c, p)
	if err != nil {
		h.log.Warn("websocket hello", "user_id", p.UserID, "err", err)
		ws.Close(closeTryLater, "could not load your chats: try again")
		cancel()
		c.out.discard()
		h.removeConn(c)
		return
	}
	// Every socket ends with its access token, whose expiry the handshake verified. A token
	// with no expiry is not admitted; a zero time closes the socket at once.
	expiry := time.AfterFunc(time.Until(p.Expires), func() { c.close(closeRevoked, "token expired: refresh, then reconnect") })
	c.out.start(hello)
	c.h.stats.FramesOut.Add("hello")
	go c.writer()
	c.schedulePing()
	if cameOnline {
		go h.comeOnline(c, chats)
	}
	// The reader ends the connection: when the socket closes, it closes the connection, waits
	// for the frames in progress (a send in flight is stored and published) and the writer,
	// and unregisters it.
	go func() {
		defer cancel()
		defer h.removeConn(c)
		defer expiry.Stop()
		c.reader(p)
		c.close(websocket.StatusNormalClosure, "")
		c.stopPing()
		c.work.Wait()
		c.out.close()
	}()
}

// hello attaches the connection to its chats and builds its first frame. The chats are read
// until a read brings no chat whose topic was not subscribed yet (at most four times), so that
// every message is either counted in the hello's last_seq or delivered live; a chat an
// earlier read listed and a later one does not was left meanwhile, and is not followed.
func (h *Hub) hello(ctx context.Context, c *conn, p chat.Principal) ([]byte, bool, []int64, error) {
	// The user's topic must be live before the chat list is read (a join meanwhile is then
	// either in the list or announced); reading the account meanwhile costs no wait.
	userSub := h.reconcile(userTopic(p.UserID))
	u, err := h.svc.Me(ctx, p)
	if err != nil {
		return nil, false, nil, err
	}
	if err := h.await(ctx, userSub); err != nil && ctx.Err() == nil {
		h.log.Warn("subscribe", "user_id", p.UserID, "err", err)
	}
	var list []chat.ChatSummary
	known := map[int64]int64{} // the chats listed by the latest read, with their last seq then
	var cameOnline bool
	var chats []int64
	var followed map[int64]int64
	for round := 0; ; round++ {
		if list, err = h.svc.Chats(ctx, p); err != nil {
			return nil, false, nil, err
		}
		last := make(map[int64]int64, len(list))
		sizes := make(map[int64]int, len(list))
		var topics []string
		for _, ch := range list {
			last[ch.ID] = ch.LastSeq
			sizes[ch.ID] = ch.MemberCount
			if _, ok := known[ch.ID]; !ok {
				topics = append(topics, chatTopic(ch.ID))
			}
		}
		var dropped map[int64]drop
		for id, seq := range known {
			if _, ok := last[id]; !ok {
				if dropped == nil {
					dropped = map[int64]drop{}
				}
				dropped[id] = drop{seq: seq, frame: h.leaveFrame(ctx, p.UserID, id, seq)}
			}
		}
		known = last
		var online bool
		var ids []int64
		followed, online, ids = h.attach(c, last, dropped)
		h.setSizes(sizes)
		if round == 0 {
			cameOnline, chats = online, ids
		}
		if len(topics) == 0 || round == 3 {
			break
		}
		if err := h.await(ctx, h.reconcile(topics...)); err != nil && ctx.Err() == nil {
			h.log.Warn("subscribe", "topics", len(topics), "err", err)
		}
	}
	heads := make(map[int64]chat.ChatHead, len(list))
	for _, ch := range list {
		heads[ch.ID] = ch.Head()
	}
	if f := h.beforeHelloDone.Load(); f != nil {
		(*f)(c.userID)
	}
	c.finishSetup(followed, heads)
	data := helloData{User: helloUser{ID: u.ID, Email: u.Email, Name: u.Name, CreatedAt: chat.Time{Time: u.CreatedAt}},
		SessionID: p.SessionID, HeartbeatMS: h.opts.PingEvery.Milliseconds(), Chats: make([]helloChat, 0, len(list))}
	for _, ch := range list {
		if _, ok := followed[ch.ID]; ok {
			data.Chats = append(data.Chats, helloChat{ID: ch.ID, LastSeq: ch.LastSeq, LastRev: ch.LastRev, MyLastReadSeq: ch.MyLastReadSeq,
				ReadAllSeq: ch.ReadAllSeq, UnreadCount: ch.UnreadCount, UnreadMentions: ch.UnreadMentions,
				Notify: ch.Notify, MutedUntil: ch.MutedUntil})
		}
	}
	frame, err := encodeFrame("hello", nil, data)
	return frame, cameOnline, chats, err
}

// reader reads and answers the client's frames until the socket closes.
func (c *conn) reader(p chat.Principal) {
	tokens, last := float64(c.h.opts.FrameBurst), time.Now()
	strikes := 0
	for {
		typ, b, err := c.ws.Read(c.ctx)
		if err != nil {
			return
		}
		now := time.Now()
		tokens = min(float64(c.h.opts.FrameBurst), tokens+now.Sub(last).Seconds()*c.h.opts.FramesPerSecond)
		last = now
		if tokens < 1 {
			// Answer the first excess with an error; only persistent abuse disconnects.
			if strikes++; strikes > c.h.opts.FrameBurst {
				c.close(closePolicy, "too many frames")
				return
			}
			c.sendError(refOf(b), chat.CodeRateLimited, "too many frames; slow down")
			continue
		}
		tokens--
		strikes = 0
		if typ != websocket.MessageText {
			c.sendError(nil, chat.CodeInvalid, "frames must be JSON text frames")
			continue
		}
		c.handle(p, b)
	}
}

func (c *conn) sendError(ref json.RawMessage, code, msg string) { c.sendErrorAt(ref, code, msg, "") }

// sendErrorAt is sendError naming the input at fault (errorData.Field; "" none).
func (c *conn) sendErrorAt(ref json.RawMessage, code, msg, field string) {
	f, err := encodeFrame("error", ref, errorData{Code: code, Message: msg, Field: field})
	if err == nil {
		c.enqueue("error", f)
	}
}

func (c *conn) sendFrame(typ string, ref json.RawMessage, data any) {
	f, err := encodeFrame(typ, ref, data)
	if err != nil {
		c.h.log.Error("encode frame", "type", typ, "err", err)
		return
	}
	c.enqueue(typ, f)
}

// refOf is the ref of a frame that is not otherwise read (one refused by the frame limit),
// so that the client learns which of its frames was refused; nil if it has none fit to echo.
func refOf(b []byte) json.RawMessage {
	var f struct {
		Ref json.RawMessage `json:"ref"`
	}
	if !utf8.Valid(b) || json.Unmarshal(b, &f) != nil {
		return nil
	}
	ref, _ := cleanRef(f.Ref)
	return ref
}

// maxRefChars is the most characters a ref may have (PROTOCOL.md): a string's, counted after
// decoding, or a number's as written.
const maxRefChars = 128

// cleanRef checks a frame's ref: a short JSON string or number is echoed as it came; none, or
// null (serializers write absent optional fields so), is none; anything else is not ok.
func cleanRef(ref json.RawMessage) (json.RawMessage, bool) {
	if len(ref) == 0 || string(ref) == "null" {
		return nil, true
	}
	// The most a string of maxRefChars can take as JSON: each character as a \u escape pair.
	if len(ref) > 2+12*maxRefChars {
		return nil, false
	}
	var v any
	if err := json.Unmarshal(ref, &v); err != nil {
		return nil, false
	}
	switch v := v.(type) {
	case string:
		if utf8.RuneCountInString(v) > maxRefChars {
			return nil, false
		}
		return ref, true
	case float64:
		if len(ref) > maxRefChars {
			return nil, false
		}
		return ref, true
	}
	return nil, false
}

// handle answers one client frame.
func (c *conn) handle(p chat.Principal, b []byte) {
	if !utf8.Valid(b) {
		c.sendError(nil, chat.CodeInvalid, "the frame is not valid UTF-8")
		return
	}
	var f inFrame
	if err := json.Unmarshal(b, &f); err != nil {
		c.h.stats.FramesIn.Add("other")
		c.sendError(nil, chat.CodeInvalid, "the frame is not a JSON object {type, ref, data}")
		return
	}
	c.h.stats.FramesIn.Add(f.Type)
	ref, ok := cleanRef(f.Ref)
	if !ok {
		c.sendError(nil, chat.CodeInvalid, "ref must be a string or a number of at most 128 characters")
		return
	}
	f.Ref = ref
	decode := func(v any) bool {
		if len(f.Data) == 0 || string(f.Data) == "null" {
			c.sendError(f.Ref, chat.CodeInvalid, f.Type+" needs data")
			return false
		}
		if err := chat.DecodeJSON(f.Data, v, "data"); err != nil {
			c.sendError(f.Ref, chat.CodeInvalid, "invalid data for "+f.Type+": "+err.Error())
			return false
		}
		return true
	}
	// chatID answers invalid for a chat_id that is missing or not an id.
	chatID := func(id int64) bool {
		if id <= 0 {
			c.sendError(f.Ref, chat.CodeInvalid, f.Type+" needs data.chat_id, a chat's id (a positive number)")
			return false
		}
		return true
	}

	switch f.Type {
	case "ping":
		c.pongFor(f.Ref)
	case "message.send":
		var d sendData
		if !decode(&d) || !chatID(d.ChatID) {
			return
		}
		c.send(p, f.Ref, d)
	case "read":
		var d readData
		if !decode(&d) || !chatID(d.ChatID) {
			return
		}
		if d.Seq == nil {
			c.sendError(f.Ref, chat.CodeInvalid, "read needs data.seq, the seq read up to")
			return
		}
		c.read(p, f.Ref, d)
	case "typing":
		var d typingData
		if !decode(&d) || !chatID(d.ChatID) {
			return
		}
		c.typing(p, f.Ref, d.ChatID)
	case "presence.subscribe":
		var d presenceSubscribeData
		if !decode(&d) {
			return
		}
		c.presenceSubscribe(p, f.Ref, d.UserIDs)
	case "chat.open":
		var d chatOpenData
		if !decode(&d) {
			return
		}
		var id int64
		if d.ChatID != nil {
			id = *d.ChatID
		}
		c.chatOpen(p, f.Ref, id)
	case "sync":
		var d syncData
		if !decode(&d) {
			return
		}
		c.startSync(p, f.Ref, d.Cursors)
	default:
		c.sendError(f.Ref, "unknown_type", "unknown frame type "+strconv.Quote(f.Type))
	}
}
