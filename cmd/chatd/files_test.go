package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wschat/chat/internal/client"
	"github.com/wschat/chat/internal/testdb"
)

type uploadedFile struct {
	ID           int64  `json:"id"`
	Size         int64  `json:"size"`
	URL          string `json:"url"`
	ThumbnailURL string `json:"thumbnail_url"`
}

// uploadTo posts a file through inst as c's user and returns the status and the file.
func uploadTo(t *testing.T, inst *instance, c *client.Client, chatID int64, name string, data []byte) (int, uploadedFile) {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	p, _ := w.CreateFormFile("file", name)
	p.Write(data)
	w.Close()
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/chats/%d/files", inst.URL, chatID), &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+c.Token())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct{ File uploadedFile }
	json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out.File
}

func fetch(t *testing.T, inst *instance, c *client.Client, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", inst.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+c.Token())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// TestFilesAcrossInstances: two instances over PostgreSQL, Redis and a real S3-compatible
// gateway. A file uploaded through one is downloadable, with its thumbnail, through the other;
// the configured limit and the metrics work end to end.
func TestFilesAcrossInstances(t *testing.T) {
	t.Parallel()
	addr, prefix := testdb.Redis(t)
	s3 := testdb.S3(t)
	db := testdb.Postgres(t)
	env := map[string]string{
		"CHAT_DATABASE_URL":    db,
		"CHAT_REDIS_URL":       "redis://" + addr + "/0",
		"CHAT_REDIS_PREFIX":    prefix,
		"CHAT_JWT_SECRET":      "a-test-secret-that-is-long-enough-for-hs256",
		"CHAT_FILES_URL":       s3.URL("cluster-files"),
		"CHAT_LIMIT_FILE_SIZE": "100KiB",
	}
	a := start(t, env)
	b := start(t, env)
	firstA := signIn(t, a, "first@example.com")
	firstB := signIn(t, b, "first@example.com")
	secondB := signIn(t, b, "second@example.com")

	img := image.NewRGBA(image.Rect(0, 0, 640, 480))
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	img.SetRGBA(1, 1, color.RGBA{1, 2, 3, 255})
	var pb bytes.Buffer
	png.Encode(&pb, img)
	status, f := uploadTo(t, a, firstA, general, "pic.png", pb.Bytes())
	if status != http.StatusCreated || f.ThumbnailURL == "" {
		t.Fatalf("upload: %d %+v", status, f)
	}
	if st, got := fetch(t, b, firstB, f.URL); st != 200 || !bytes.Equal(got, pb.Bytes()) {
		t.Errorf("the uploader through the other instance: %d, %d bytes", st, len(got))
	}
	st, got := fetch(t, b, firstB, f.ThumbnailURL)
	for i := 0; st == http.StatusServiceUnavailable && i < 20; i++ { // still being made: each ask waits 10 s
		st, got = fetch(t, b, firstB, f.ThumbnailURL)
	}
	if st != 200 || len(got) == 0 {
		t.Errorf("the thumbnail through the other instance: %d", st)
	}
	if st, _ := fetch(t, b, secondB, f.URL); st != 404 {
		t.Errorf("another member before the file is attached: %d, want 404", st)
	}
	// Attached (as the send path's attach step will), every member downloads it anywhere.
	var m struct{ ID int64 }
	if err := firstA.Do(context.Background(), "POST", fmt.Sprintf("/api/v1/chats/%d/messages", general), map[string]string{"body": "pic", "client_id": "f1"}, &m); err != nil {
		t.Fatal(err)
	}
	if _, err := testdb.OpenSQL(t, db).Exec(`UPDATE files SET message_id = $1, attached_at = $2 WHERE id = $3`, m.ID, time.Now().UnixMilli(), f.ID); err != nil {
		t.Fatal(err)
	}
	if st, got := fetch(t, b, secondB, f.URL); st != 200 || !bytes.Equal(got, pb.Bytes()) {
		t.Errorf("another member once attached: %d", st)
	}

	if st, _ := uploadTo(t, b, firstB, general, "big.bin", make([]byte, 101<<10)); st != http.StatusRequestEntityTooLarge {
		t.Errorf("101 KiB under CHAT_LIMIT_FILE_SIZE=100KiB: %d, want 413", st)
	}
	_, ma := fetch(t, a, firstA, "/metrics")
	_, mb := fetch(t, b, firstB, "/metrics")
	id := func(i *instance) string { return i.ID }
	if want := `chat_files_uploaded_total{instance_id="` + id(a) + `"} 1`; !strings.Contains(string(ma), want) {
		t.Errorf("instance a's /metrics lacks %q", want)
	}
	if want := `chat_files_refused_total{instance_id="` + id(b) + `",reason="too_large"} 1`; !strings.Contains(string(mb), want) {
		t.Errorf("instance b's /metrics lacks %q", want)
	}
	// One thumbnail was made, by whichever instance claimed it first.
	made := strings.Count(string(ma), `chat_files_thumbnail_seconds_count{instance_id="`+id(a)+`",outcome="ok"} 1`) +
		strings.Count(string(mb), `chat_files_thumbnail_seconds_count{instance_id="`+id(b)+`",outcome="ok"} 1`)
	if made != 1 {
		t.Errorf("thumbnails counted by the two instances: %d, want 1", made)
	}
}

// TestUploadSlotSettings: CHAT_LIMIT_UPLOADS, CHAT_LIMIT_UPLOADS_USER,
// CHAT_LIMIT_UPLOADS_ADDRESS and CHAT_LIMIT_UPLOAD_WAIT reach the file service. With one slot
// of each, an upload of First's that keeps its body open holds them; First's next upload finds
// no slot of theirs and Second's none of the instance's, each answered 503 once the wait is
// over. With one slot an address and more of the others, Second's (from the same address as
// every test client) finds none of the address's.
func TestUploadSlotSettings(t *testing.T) {
	t.Parallel()
	t.Run("instance and user", func(t *testing.T) {
		t.Parallel()
		uploadSlots(t, map[string]string{"CHAT_LIMIT_UPLOADS": "1", "CHAT_LIMIT_UPLOADS_USER": "1"},
			"you have 1 uploads going on this server", "too many uploads on this server")
	})
	t.Run("address", func(t *testing.T) {
		t.Parallel()
		uploadSlots(t, map[string]string{"CHAT_LIMIT_UPLOADS": "4", "CHAT_LIMIT_UPLOADS_USER": "4", "CHAT_LIMIT_UPLOADS_ADDRESS": "1"},
			"", "1 uploads from your network")
	})
}

// uploadSlots holds an upload of First's open on an instance with env, then probes First's
// and Second's uploads until each is refused with what it wants ("": First's is not probed).
//
// The wait for a slot is 2 s: a probe that comes before the held upload takes the slots holds
// them while it stores its file, and the held upload waits for them meanwhile. With 200 ms,
// the address case failed once in CI (race detector, busy machine) after 100 probes in 22 s,
// most likely so: each probe stored for longer than the held upload waited, which gave up, and
// the next probe raced the next held upload again. Not reproduced on demand.
func uploadSlots(t *testing.T, env map[string]string, firstWants, secondWants string) {
	env["CHAT_LIMIT_UPLOAD_WAIT"], env["CHAT_LIMIT_UPLOAD_RATE"] = "2s", "0"
	inst := start(t, env)
	first, second := signIn(t, inst, "first@example.com"), signIn(t, inst, "second@example.com")
	post := func(c *client.Client, body io.Reader, contentType string) (int, string) {
		req, _ := http.NewRequestWithContext(reqCtx(t), "POST", fmt.Sprintf("%s/api/v1/chats/%d/files", inst.URL, general), body)
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Bearer "+c.Token())
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	small := func(c *client.Client) (int, string) {
		var body bytes.Buffer
		w := multipart.NewWriter(&body)
		p, _ := w.CreateFormFile("file", "small.txt")
		p.Write([]byte("small"))
		w.Close()
		return post(c, &body, w.FormDataContentType())
	}
	// hold starts an upload of First's whose body stays open until the test ends; its answer
	// comes on the channel only if it lost the race for the slots to a probe.
	var pipes []*io.PipeWriter
	t.Cleanup(func() {
		for _, pw := range pipes {
			pw.Close()
		}
	})
	hold := func() chan int {
		pr, pw := io.Pipe()
		pipes = append(pipes, pw)
		w := multipart.NewWriter(pw)
		done := make(chan int, 1)
		go func() {
			st, _ := post(first, pr, w.FormDataContentType())
			pr.Close()
			done <- st
		}()
		go func() {
			p, _ := w.CreateFormFile("file", "held.txt")
			p.Write([]byte("the start of a file whose end does not come"))
		}()
		return done
	}
	held := hold()
	// probe uploads as c until the answer is 503 with want in its detail. An answer of 201 is a
	// probe that came before the held upload took its slots; an end of the held upload is one
	// that came after a probe took them, and another is started.
	probe := func(who string, c *client.Client, want string) {
		t.Helper()
		var st int
		var detail string
		for range 100 {
			st, detail = small(c)
			if st == http.StatusServiceUnavailable && strings.Contains(detail, want) {
				return
			}
			if st != http.StatusCreated && st != http.StatusServiceUnavailable {
				t.Fatalf("%s's upload: %d %s", who, st, detail)
			}
			select {
			case <-held:
				held = hold()
			default:
			}
		}
		t.Fatalf("%s's uploads never found the slots taken (%q); the last answer: %d %s", who, want, st, detail)
	}
	if firstWants != "" {
		probe("First", first, firstWants)
	}
	probe("Second", second, secondWants)
}
