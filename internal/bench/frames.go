package bench

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// Frame parsing reads only what the tool needs, without decoding the whole frame: the type,
// and for messages the chat, the seq and the send time the tool wrote into the body. Anything
// the fast path does not recognize falls back to encoding/json.

var typePrefix = []byte(`{"type":"`)

// frameType returns the frame's type.
func frameType(b []byte) string {
	if bytes.HasPrefix(b, typePrefix) {
		rest := b[len(typePrefix):]
		if i := bytes.IndexByte(rest, '"'); i >= 0 {
			return internType(rest[:i])
		}
	}
	var f struct {
		Type string `json:"type"`
	}
	json.Unmarshal(b, &f)
	return f.Type
}

// internType returns a constant string for the known types, so that the hot path does not
// allocate.
func internType(b []byte) string {
	switch string(b) {
	case "message.new":
		return "message.new"
	case "message.ack":
		return "message.ack"
	case "read.updated":
		return "read.updated"
	case "chat.read_all":
		return "chat.read_all"
	case "presence":
		return "presence"
	case "typing":
		return "typing"
	case "pong":
		return "pong"
	case "hello":
		return "hello"
	case "sync.done":
		return "sync.done"
	case "sync.truncated":
		return "sync.truncated"
	case "error":
		return "error"
	case "reaction.updated":
		return "reaction.updated"
	case "message.updated":
		return "message.updated"
	}
	return string(b)
}

// intAfter parses the integer that follows key in b.
func intAfter(b, key []byte) (int64, bool) {
	v, _, ok := intAfterFrom(b, key, 0)
	return v, ok
}

// intAfterFrom is intAfter searching from offset from (and from the start if not found
// there); it also returns where the number ended.
func intAfterFrom(b, key []byte, from int) (int64, int, bool) {
	i := bytes.Index(b[from:], key)
	if i >= 0 {
		i += from
	} else if i = bytes.Index(b, key); i < 0 {
		return 0, 0, false
	}
	j := i + len(key)
	for j < len(b) && b[j] == ' ' {
		j++
	}
	var v int64
	k := j
	for k < len(b) && b[k] >= '0' && b[k] <= '9' {
		v = v*10 + int64(b[k]-'0')
		k++
	}
	return v, k, k > j
}

var (
	keyChatID = []byte(`"chat_id":`)
	keySeq    = []byte(`"seq":`)
	keyRev    = []byte(`"rev":`)
	keyBody   = []byte(`"body":"t`)
)

// msgInfo is what the tool needs of a message.new or message.ack.
type msgInfo struct {
	chatID, seq int64
	sentAt      int64 // µs since the tool's epoch, from the body; -1 for a body the tool did not write
}

// parseMessage reads a message.new or message.ack frame. The server writes a message's
// fields in the order chat_id, seq, body; each search starts where the last ended (and falls
// back to the whole frame), so most bytes are looked at once.
func parseMessage(b []byte) (msgInfo, bool) {
	var m msgInfo
	var ok1, ok2 bool
	var at int
	m.chatID, at, ok1 = intAfterFrom(b, keyChatID, 0)
	m.seq, at, ok2 = intAfterFrom(b, keySeq, at)
	if !ok1 || !ok2 {
		return slowParseMessage(b)
	}
	m.sentAt = -1
	if t, _, ok := intAfterFrom(b, keyBody, at); ok {
		m.sentAt = t
	}
	return m, true
}

func slowParseMessage(b []byte) (msgInfo, bool) {
	var f struct {
		Data struct {
			Message struct {
				ChatID int64  `json:"chat_id"`
				Seq    int64  `json:"seq"`
				Body   string `json:"body"`
			} `json:"message"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &f); err != nil || f.Data.Message.Seq == 0 {
		return msgInfo{}, false
	}
	m := msgInfo{chatID: f.Data.Message.ChatID, seq: f.Data.Message.Seq, sentAt: -1}
	if v, ok := intAfter([]byte(f.Data.Message.Body), []byte("t")); ok {
		m.sentAt = v
	}
	return m, true
}

// epoch is the tool's clock origin: send times in message bodies are µs since it (monotonic).
var epoch = time.Now()

// now is µs since epoch.
func now() int64 { return int64(time.Since(epoch) / time.Microsecond) }

// appendSend appends a message.send frame whose body carries the send time.
// The client_id is clientPrefix followed by ref.
func appendSend(b []byte, ref, chatID int64, clientPrefix string, sentAt int64, pad int) []byte {
	b = append(b, `{"type":"message.send","ref":`...)
	b = strconv.AppendInt(b, ref, 10)
	b = append(b, `,"data":{"chat_id":`...)
	b = strconv.AppendInt(b, chatID, 10)
	b = append(b, `,"client_id":"`...)
	b = append(b, clientPrefix...)
	b = strconv.AppendInt(b, ref, 10)
	b = append(b, `","body":"t`...)
	b = strconv.AppendInt(b, sentAt, 10)
	b = append(b, ' ')
	for range pad {
		b = append(b, 'x')
	}
	return append(b, `"}}`...)
}

// helloFrame is the part of hello the tool uses.
type helloFrame struct {
	Data struct {
		User struct {
			ID int64 `json:"id"`
		} `json:"user"`
		Chats []struct {
			ID      int64 `json:"id"`
			LastSeq int64 `json:"last_seq"`
		} `json:"chats"`
	} `json:"data"`
}

// errorFrame is an error frame.
type errorFrame struct {
	Data struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"data"`
}

// syncTruncated is a sync.truncated frame.
type syncTruncated struct {
	Data struct {
		ChatID  int64 `json:"chat_id"`
		FromSeq int64 `json:"from_seq"`
	} `json:"data"`
}
