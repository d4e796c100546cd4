package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wschat/chat/internal/blob"
	"github.com/wschat/chat/internal/broker/redisbroker"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/testdb"
)

// wireFile is a file as clients see it in a message.
type wireFile struct {
	ID           int64  `json:"id"`
	Name         string `json:"name"`
	Size         int64  `json:"size"`
	ContentType  string `json:"content_type"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	ThumbnailURL string `json:"thumbnail_url"`
	URL          string `json:"url"`
}

type wireMessage struct {
	ID    int64      `json:"id"`
	Seq   int64      `json:"seq"`
	Body  string     `json:"body"`
	Files []wireFile `json:"files"`
}

func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 7), uint8(y * 5), 200, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// upload posts a file and returns it as the upload's answer has it.
func upload(t *testing.T, s *testServer, u *testUser, chatID int64, name string, data []byte) wireFile {
	t.Helper()
	r := s.Upload(t, u, chatID, name, data)
	if r.Status != http.StatusCreated {
		t.Fatalf("upload %s as %s: %d %s", name, u.Name, r.Status, r.Body)
	}
	var out struct {
		File wireFile `json:"file"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatal(err)
	}
	return out.File
}

func messageOf(t *testing.T, f frame) wireMessage {
	t.Helper()
	var d struct {
		Message wireMessage `json:"message"`
	}
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d.Message
}

func ids(fs []wireFile) []int64 {
	var out []int64
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

// sendHTTP posts a message with files.
func sendHTTP(t *testing.T, s *testServer, u *testUser, chatID int64, body, clientID string, fileIDs ...int64) reply {
	t.Helper()
	return s.Call(t, "POST", fmt.Sprintf("/api/v1/chats/%d/messages", chatID), u.Token,
		map[string]any{"body": body, "client_id": clientID, "file_ids": fileIDs}, nil)
}

// fileSetups are the set-ups attaching is tested on: SQLite with a local directory, and
// PostgreSQL with the real S3-compatible server.
var fileSetups = []struct {
	name string
	cfg  func(t *testing.T) serverConfig
}{
	{"sqlite", func(t *testing.T) serverConfig {
		d, err := blob.NewDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return serverConfig{Blobs: d}
	}},
	{"postgres", func(t *testing.T) serverConfig {
		s3 := testdb.S3(t)
		b, err := blob.Open(context.Background(), s3.URL("attach"), "", "", "")
		if err != nil {
			t.Fatal(err)
		}
		return serverConfig{Postgres: true, Blobs: b}
	}},
}

// TestAttachAuthorization is the authorization matrix of attaching files, over HTTP and
// WebSocket: only the sender's own unattached uploads into the same chat attach, each refusal
// is a 422 (or error frame) that names the file and stores nothing; members download what is
// attached, non-members and ex-members never.
func TestAttachAuthorization(t *testing.T) {
	t.Parallel()
	for _, setup := range fileSetups {
		t.Run(setup.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, setup.cfg(t))
			a, b, out, ex := s.NewUser(t, "A"), s.NewUser(t, "B"), s.NewUser(t, "Out"), s.NewUser(t, "Ex")
			g := s.Group(t, a, "attach", false, b, ex)
			h := s.Group(t, a, "elsewhere", false)
			pub := s.Group(t, a, "public", true)
			img := pngBytes(t, 64, 48)
			pic := upload(t, s, a, g, "pic.png", img)
			doc := upload(t, s, a, g, "notes.txt", []byte("some notes\n"))
			ofB := upload(t, s, b, g, "b.txt", []byte("B's\n"))
			inH := upload(t, s, a, h, "h.txt", []byte("elsewhere\n"))
			inPub := upload(t, s, a, pub, "p.txt", []byte("public\n"))
			exFile := upload(t, s, ex, g, "ex.txt", []byte("ex\n"))
			if err := s.Svc.Leave(context.Background(), ex.P(), g); err != nil {
				t.Fatal(err)
			}

			ca, cb := s.Dial(t, a), s.Dial(t, b)
			// A message of files alone over WebSocket: acked with the files, in order, to the
			// sender's socket; message.new with them to the other member.
			ca.Send("message.send", "f1", map[string]any{"chat_id": g, "client_id": "ws-1", "body": "", "file_ids": []int64{pic.ID, doc.ID}})
			ack := messageOf(t, ca.NextOf("message.ack", 10*time.Second))
			if ack.Body != "" || !slices.Equal(ids(ack.Files), []int64{pic.ID, doc.ID}) {
				t.Fatalf("ack: %+v", ack)
			}
			if got, want := ack.Files[0], pic; got != want {
				t.Errorf("the attached image: %+v, want what the upload answered: %+v", got, want)
			}
			if ack.Files[0].ThumbnailURL == "" || ack.Files[0].Width != 64 || ack.Files[1].ContentType != "text/plain; charset=utf-8" {
				t.Errorf("files of the ack: %+v", ack.Files)
			}
			if got := messageOf(t, cb.NextOf("message.new", 10*time.Second)); got.ID != ack.ID || !slices.Equal(ids(got.Files), ids(ack.Files)) {
				t.Errorf("message.new to B: %+v", got)
			}

			// Refusals, over HTTP: a 422 naming the file; nothing is stored.
			last := func() int64 {
				c, err := s.Svc.Chat(context.Background(), a.P(), g)
				if err != nil {
					t.Fatal(err)
				}
				return c.LastSeq
			}
			before := last()
			for _, c := range []struct {
				what   string
				by     *testUser
				chatID int64
				files  []int64
				status int
				code   string
			}{
				{"attached twice", a, g, []int64{pic.ID}, 422, chat.CodeFileAttached},
				{"someone else's unattached file", a, g, []int64{ofB.ID}, 422, chat.CodeFileNotYours},
				{"an ex-member's file", a, g, []int64{exFile.ID}, 422, chat.CodeFileNotYours},
				{"the sender's file of another chat", a, g, []int64{inH.ID}, 422, chat.CodeFileOtherChat},
				{"a file of a chat the sender is not in", b, g, []int64{inH.ID}, 422, chat.CodeFileNotFound},
				{"an unknown file", a, g, []int64{1 << 40}, 422, chat.CodeFileNotFound},
				{"a good file then an attached one", a, g, []int64{inPub.ID, doc.ID}, 422, chat.CodeFileOtherChat},
				{"eleven files", a, g, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 422, chat.CodeInvalid},
				{"a file twice", a, g, []int64{inH.ID, inH.ID}, 422, chat.CodeInvalid},
				{"a negative id", a, g, []int64{-1}, 422, chat.CodeInvalid},
				{"no body and no files", a, g, nil, 422, chat.CodeInvalid},
				{"a non-member", out, g, []int64{inH.ID}, 404, chat.CodeNotFound},
				{"an ex-member", ex, g, []int64{exFile.ID}, 404, chat.CodeNotFound},
				{"a non-member of a public group", out, pub, []int64{inPub.ID}, 403, chat.CodeNotMember},
			} {
				r := sendHTTP(t, s, c.by, c.chatID, "", "refused-"+strings.ReplaceAll(c.what, " ", "-"), c.files...)
				if r.Status != c.status || r.Code() != c.code {
					t.Errorf("%s: %d %s, want %d %s", c.what, r.Status, r.Body, c.status, c.code)
				}
			}
			r := sendHTTP(t, s, a, g, "", "refused-pos", inPub.ID, ofB.ID)
			var p struct {
				Errors []struct {
					Location string `json:"location"`
				} `json:"errors"`
			}
			json.Unmarshal(r.Body, &p)
			if len(p.Errors) != 1 || p.Errors[0].Location != "body.file_ids[0]" {
				t.Errorf("the refusal names %s, want body.file_ids[0]", r.Body)
			}
			if got := last(); got != before {
				t.Errorf("refused sends moved the chat from seq %d to %d", before, got)
			}
			// Over WebSocket: an error frame with the same code; the socket stays.
			ca.Send("message.send", "bad", map[string]any{"chat_id": g, "client_id": "ws-bad", "file_ids": []int64{ofB.ID}})
			if code, _ := errorOf([]frame{ca.NextOf("error", 10*time.Second)}, "bad"); code != chat.CodeFileNotYours {
				t.Errorf("error frame code %q, want %s", code, chat.CodeFileNotYours)
			}

			// B attaches their own over HTTP, with a body; a retry answers 200 with the files.
			r = sendHTTP(t, s, b, g, "mine", "http-1", ofB.ID)
			if r.Status != http.StatusCreated {
				t.Fatalf("B's send: %d %s", r.Status, r.Body)
			}
			var m wireMessage
			json.Unmarshal(r.Body, &m)
			if r := sendHTTP(t, s, b, g, "mine", "http-1", ofB.ID); r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"files":[{`)) {
				t.Errorf("retry: %d %s", r.Status, r.Body)
			}
			if got := messageOf(t, ca.NextOf("message.new", 10*time.Second)); got.ID != m.ID || !slices.Equal(ids(got.Files), []int64{ofB.ID}) {
				t.Errorf("message.new to A: %+v", got)
			}

			// History, the chat list's last message and sync carry the files.
			hr := s.Call(t, "GET", fmt.Sprintf("/api/v1/chats/%d/messages", g), b.Token, nil, nil)
			var hist struct {
				Messages []wireMessage `json:"messages"`
			}
			json.Unmarshal(hr.Body, &hist)
			var withFiles [][]int64
			for _, hm := range hist.Messages {
				if len(hm.Files) > 0 {
					withFiles = append(withFiles, ids(hm.Files))
				}
			}
			if fmt.Sprint(withFiles) != fmt.Sprint([][]int64{{pic.ID, doc.ID}, {ofB.ID}}) {
				t.Errorf("files in the history: %v", withFiles)
			}
			lr := s.Call(t, "GET", "/api/v1/chats", a.Token, nil, nil)
			if !bytes.Contains(lr.Body, []byte(fmt.Sprintf(`"files":[{"id":%d,`, ofB.ID))) {
				t.Errorf("the chat list's last message lacks its file: %s", lr.Body)
			}
			cs := s.Dial(t, s.Login(t, b))
			cs.Send("sync", "s", map[string]any{"cursors": map[string]int64{fmt.Sprint(g): 0}})
			var synced [][]int64
			for f := cs.Next(10 * time.Second); f.Type != "sync.done"; f = cs.Next(10 * time.Second) {
				if f.Type == "message.new" && len(messageOf(t, f).Files) > 0 {
					synced = append(synced, ids(messageOf(t, f).Files))
				}
			}
			if fmt.Sprint(synced) != fmt.Sprint(withFiles) {
				t.Errorf("files in sync: %v, want %v", synced, withFiles)
			}

			// Downloads: members of the chat, not outsiders, not ex-members.
			get := func(u *testUser, path string) int {
				r := s.Call(t, "GET", path, u.Token, nil, nil)
				for i := 0; r.Status == http.StatusServiceUnavailable && i < 50; i++ { // a thumbnail being made
					time.Sleep(100 * time.Millisecond)
					r = s.Call(t, "GET", path, u.Token, nil, nil)
				}
				return r.Status
			}
			for _, c := range []struct {
				who  *testUser
				path string
				want int
			}{
				{a, pic.URL, 200}, {b, pic.URL, 200}, {b, pic.ThumbnailURL, 200}, {b, doc.URL, 200}, {a, ofB.URL, 200},
				{out, pic.URL, 404}, {out, pic.ThumbnailURL, 404}, {ex, pic.URL, 404}, {ex, exFile.URL, 404},
				{b, inH.URL, 404}, // unattached: the uploader's alone
			} {
				if got := get(c.who, c.path); got != c.want {
					t.Errorf("%s GET %s: %d, want %d", c.who.Name, c.path, got, c.want)
				}
			}
			if r := s.Call(t, "GET", pic.URL, b.Token, nil, nil); !bytes.Equal(r.Body, img) {
				t.Errorf("B downloaded %d bytes, not the image", len(r.Body))
			}
			// Leaving takes them away; the files stay for the members.
			if err := s.Svc.Leave(context.Background(), b.P(), g); err != nil {
				t.Fatal(err)
			}
			if got := get(b, pic.URL); got != 404 {
				t.Errorf("B after leaving: %d, want 404", got)
			}
			if got := get(a, ofB.URL); got != 200 {
				t.Errorf("A, of the file B attached before leaving: %d, want 200", got)
			}
		})
	}
}

// TestAttachTwoInstances: two instances over PostgreSQL, Redis and the S3-compatible server. A
// file uploaded through one is attached through the other, reaches a member connected to the
// first live, and is downloaded (file and thumbnail) through either.
func TestAttachTwoInstances(t *testing.T) {
	t.Parallel()
	db := testdb.Postgres(t)
	addr, prefix := testdb.Redis(t)
	s3 := testdb.S3(t)
	instance := func(name string) *testServer {
		rb, err := redisbroker.New(redisbroker.Options{URL: "redis://" + addr + "/0", Prefix: prefix, InstanceID: name})
		if err != nil {
			t.Fatal(err)
		}
		blobs, err := blob.Open(context.Background(), s3.URL("two"), "", "", "")
		if err != nil {
			t.Fatal(err)
		}
		return startServer(t, serverConfig{DatabaseURL: db, Broker: rb, Presence: rb.Presence(), Hub: hubOptions(name), Blobs: blobs})
	}
	one, two := instance("one"), instance("two")
	a, b := one.NewUser(t, "A"), one.NewUser(t, "B")
	g := one.Group(t, a, "two instances", false, b)
	cb := one.Dial(t, b)
	ca := two.Dial(t, two.Login(t, a))

	img := pngBytes(t, 200, 100)
	pic := upload(t, one, a, g, "pic.png", img)
	pdf := upload(t, one, a, g, "paper.pdf", []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"))
	ca.Send("message.send", "x", map[string]any{"chat_id": g, "client_id": "two-1", "body": "from two", "file_ids": []int64{pic.ID, pdf.ID}})
	ack := messageOf(t, ca.NextOf("message.ack", 10*time.Second))
	if !slices.Equal(ids(ack.Files), []int64{pic.ID, pdf.ID}) {
		t.Fatalf("ack through two: %+v", ack)
	}
	got := messageOf(t, cb.NextOf("message.new", 10*time.Second))
	if got.ID != ack.ID || !slices.Equal(ids(got.Files), []int64{pic.ID, pdf.ID}) || got.Files[1].ContentType != "application/pdf" {
		t.Errorf("message.new on one: %+v", got)
	}
	for _, s := range []*testServer{one, two} {
		if r := s.Call(t, "GET", pic.URL, b.Token, nil, nil); r.Status != 200 || !bytes.Equal(r.Body, img) {
			t.Errorf("B downloads the image: %d, %d bytes", r.Status, len(r.Body))
		}
		r := s.Call(t, "GET", pdf.URL, b.Token, nil, nil)
		if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Disposition"), "attachment") {
			t.Errorf("B downloads the PDF: %d, %q", r.Status, r.Header.Get("Content-Disposition"))
		}
		th := s.Call(t, "GET", pic.ThumbnailURL, b.Token, nil, nil)
		for i := 0; th.Status == http.StatusServiceUnavailable && i < 100; i++ {
			time.Sleep(100 * time.Millisecond)
			th = s.Call(t, "GET", pic.ThumbnailURL, b.Token, nil, nil)
		}
		if th.Status != 200 {
			t.Errorf("the thumbnail: %d %s", th.Status, th.Body)
		}
	}
	// The same file cannot be attached again through the first instance.
	r := sendHTTP(t, one, a, g, "", "again", pic.ID)
	if r.Status != 422 || r.Code() != chat.CodeFileAttached {
		t.Errorf("attached again through one: %d %s", r.Status, r.Body)
	}
}
