package httpapi_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wschat/chat/internal/blob"
	"github.com/wschat/chat/internal/chat"
	"github.com/wschat/chat/internal/testdb"
)

// fileBackends are the two set-ups files are tested on: SQLite with a local directory, and
// PostgreSQL with a real S3-compatible server.
var fileBackends = []struct {
	db    string
	blobs func(t *testing.T) chat.Blobs
}{
	{"sqlite", func(t *testing.T) chat.Blobs {
		d, err := blob.NewDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return d
	}},
	{"postgres", func(t *testing.T) chat.Blobs {
		s := testdb.S3(t)
		b, err := blob.Open(context.Background(), s.URL("chat-files"), "", "", "")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}},
}

// newFilesEnv is a server with files on, its thumbnail workers and janitor running.
func newFilesEnv(t *testing.T, db string, blobs func(t *testing.T) chat.Blobs, o envOptions) *env {
	t.Helper()
	o.blobs = blobs
	e := newEnv(t, db, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.files.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

// filesBoth runs fn in parallel on both set-ups.
func filesBoth(t *testing.T, o envOptions, fn func(t *testing.T, e *env)) {
	t.Helper()
	t.Parallel()
	for _, b := range fileBackends {
		t.Run(b.db, func(t *testing.T) {
			t.Parallel()
			fn(t, newFilesEnv(t, b.db, b.blobs, o))
		})
	}
}

// multipartFile is a multipart body with one part "file" whose Content-Disposition is given
// as is (so tests can send any file name).
func multipartFile(t *testing.T, disposition string, data []byte) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", disposition)
	h.Set("Content-Type", "image/png") // what a client claims is never believed
	p, err := w.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	p.Write(data)
	w.Close()
	return buf.Bytes(), w.FormDataContentType()
}

func (e *env) upload(t *testing.T, u *user, chatID int64, name string, data []byte) resp {
	t.Helper()
	body, ct := multipartFile(t, fmt.Sprintf(`form-data; name="file"; filename=%q`, name), data)
	return e.do(t, req{method: "POST", path: fmt.Sprintf("/api/v1/chats/%d/files", chatID), body: body, contentType: ct, token: u.Token})
}

// wireFile is a file as the API sends it.
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

func uploaded(t *testing.T, r resp) wireFile {
	t.Helper()
	r.want(t, http.StatusCreated, "")
	return decode[struct {
		File wireFile `json:"file"`
	}](t, r).File
}

func (e *env) get(t *testing.T, u *user, path string, header map[string]string) resp {
	t.Helper()
	r := req{method: "GET", path: path, header: header}
	if u != nil {
		r.token = u.Token
	}
	return e.do(t, r)
}

// attachFile sends a message carrying the file, over HTTP.
func (e *env) attachFile(t *testing.T, u *user, chatID, fileID int64) {
	t.Helper()
	e.do(t, req{method: "POST", path: fmt.Sprintf("/api/v1/chats/%d/messages", chatID), token: u.Token,
		body: map[string]any{"body": "a file", "client_id": fmt.Sprint("attach-", fileID), "file_ids": []int64{fileID}}}).
		want(t, http.StatusCreated, "")
}

// checkDownloadHeaders checks what every download carries.
func checkDownloadHeaders(t *testing.T, r resp, contentType string, inline bool) {
	t.Helper()
	h := r.header
	if got := h.Get("Content-Type"); got != contentType {
		t.Errorf("Content-Type %q, want %q", got, contentType)
	}
	if got := h.Get("Cache-Control"); !strings.HasPrefix(got, "private") {
		t.Errorf("Cache-Control %q, want private", got)
	}
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q", got)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "sandbox;") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q, want a sandbox that loads nothing", csp)
	}
	disp := h.Get("Content-Disposition")
	if inline != strings.HasPrefix(disp, "inline") || !inline && !strings.HasPrefix(disp, "attachment") {
		t.Errorf("Content-Disposition %q, inline %v", disp, inline)
	}
}

func TestFileUploadDownload(t *testing.T) {
	filesBoth(t, envOptions{}, func(t *testing.T, e *env) {
		a := e.newUser(t, "A")
		g := e.group(t, a, "files", false)
		data := []byte("hello, files\n" + strings.Repeat("0123456789", 100))
		r := e.upload(t, a, g, "notes.txt", data)
		f := uploaded(t, r)
		if f.ID <= 0 || f.Name != "notes.txt" || f.Size != int64(len(data)) || f.ContentType != "text/plain; charset=utf-8" ||
			f.URL != fmt.Sprintf("/api/v1/files/%d", f.ID) {
			t.Errorf("uploaded %+v", f)
		}
		for _, k := range keys(t, r.body) {
			if k != "file" {
				t.Errorf("unexpected key %q in the upload's answer", k)
			}
		}
		if ks := strings.Join(keys(t, mustSub(t, r.body, "file")), ","); ks != "content_type,id,name,size,url" {
			t.Errorf("a text file has keys %s, want content_type,id,name,size,url (no width, height or thumbnail_url)", ks)
		}

		d := e.get(t, a, f.URL, nil)
		d.want(t, http.StatusOK, "")
		if !bytes.Equal(d.body, data) {
			t.Fatalf("downloaded %d bytes, not what was uploaded", len(d.body))
		}
		checkDownloadHeaders(t, d, "text/plain; charset=utf-8", false)
		sum := sha256.Sum256(data)
		etag := `"` + hex.EncodeToString(sum[:]) + `"`
		if got := d.header.Get("ETag"); got != etag {
			t.Errorf("ETag %q, want the strong %q", got, etag)
		}
		if got := d.header.Get("Content-Disposition"); got != "attachment; filename=notes.txt" {
			t.Errorf("Content-Disposition %q", got)
		}

		rg := e.get(t, a, f.URL, map[string]string{"Range": "bytes=7-11"})
		rg.want(t, http.StatusPartialContent, "")
		if string(rg.body) != "files" || rg.header.Get("Content-Range") != fmt.Sprintf("bytes 7-11/%d", len(data)) {
			t.Errorf("range: %q %q", rg.body, rg.header.Get("Content-Range"))
		}
		tail := e.get(t, a, f.URL, map[string]string{"Range": "bytes=-3"})
		if tail.status != http.StatusPartialContent || string(tail.body) != "789" {
			t.Errorf("suffix range: %d %q", tail.status, tail.body)
		}
		spec := e.openAPI(t)
		bad := e.get(t, a, f.URL, map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(data)+10)})
		bad.want(t, http.StatusRequestedRangeNotSatisfiable, "range_not_satisfiable")
		spec.conforms(t, "get", "/api/v1/files/{id}", bad)
		stale := e.get(t, a, f.URL, map[string]string{"If-Match": `"other"`})
		stale.want(t, http.StatusPreconditionFailed, "precondition_failed")
		spec.conforms(t, "get", "/api/v1/files/{id}", stale)
		if nm := e.get(t, a, f.URL, map[string]string{"If-None-Match": etag}); nm.status != http.StatusNotModified || len(nm.body) != 0 {
			t.Errorf("If-None-Match with the ETag: %d, want 304", nm.status)
		}
		if ir := e.get(t, a, f.URL, map[string]string{"Range": "bytes=0-4", "If-Range": `"other"`}); ir.status != http.StatusOK {
			t.Errorf("If-Range with another ETag: %d, want the whole file", ir.status)
		}
		// Not an image: no thumbnail.
		e.get(t, a, f.URL+"/thumbnail", nil).want(t, http.StatusNotFound, chat.CodeNotFound)

		lim := decode[map[string]int64](t, e.get(t, a, "/api/v1/files/limits", nil))
		if lim["max_file_bytes"] != chat.DefaultFileLimits.MaxFileBytes || lim["max_files_per_message"] != chat.MaxFilesPerMessage ||
			lim["min_upload_bytes_per_second"] != chat.DefaultMinUploadRate || lim["upload_rate_window_seconds"] != 30 {
			t.Errorf("limits: %v", lim)
		}
	})
}

// mustSub returns the raw JSON of one key of an object.
func mustSub(t *testing.T, body []byte, key string) []byte {
	t.Helper()
	m := decode[map[string]jsonRaw](t, resp{body: body})
	return m[key]
}

type jsonRaw []byte

func (j *jsonRaw) UnmarshalJSON(b []byte) error { *j = append((*j)[:0], b...); return nil }

// twoTone is a w × h opaque image, red on the left half and blue on the right.
func twoTone(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{255, 0, 0, 255}
			if x >= w/2 {
				c = color.RGBA{0, 0, 255, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func pngOf(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// photoJPEG is a JPEG as phones write them: EXIF with an orientation and a GPS position.
func photoJPEG(t *testing.T, w, h int, orientation uint16) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, twoTone(w, h), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	var tiff bytes.Buffer
	tiff.WriteString("MM\x00\x2A\x00\x00\x00\x08\x00\x02")
	tiff.Write([]byte{0x01, 0x12, 0, 3, 0, 0, 0, 1, byte(orientation >> 8), byte(orientation), 0, 0})
	tiff.Write([]byte{0x88, 0x25, 0, 4, 0, 0, 0, 1, 0, 0, 0, 30})
	tiff.Write([]byte{0, 0, 0, 0})
	tiff.WriteString("GPSLatitude 48.8584 N")
	payload := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	seg := []byte{0xFF, 0xE1, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)}
	out := append([]byte{0xFF, 0xD8}, seg...)
	out = append(out, payload...)
	return append(out, b.Bytes()[2:]...)
}

// bombPNG is a PNG whose header declares w × h pixels (and has no pixels).
func bombPNG(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	binary.Write(&b, binary.BigEndian, uint32(13))
	start := b.Len()
	b.WriteString("IHDR")
	binary.Write(&b, binary.BigEndian, w)
	binary.Write(&b, binary.BigEndian, h)
	b.Write([]byte{8, 2, 0, 0, 0})
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(b.Bytes()[start:]))
	return b.Bytes()
}

// thumbnailOf downloads a file's thumbnail (it is made off the request path; the download
// waits for it) and decodes it.
func (e *env) thumbnailOf(t *testing.T, u *user, f wireFile) (image.Image, resp) {
	t.Helper()
	if f.ThumbnailURL == "" {
		t.Fatalf("file %d has no thumbnail_url", f.ID)
	}
	var r resp
	for range 20 { // waits of 10 s each at most
		if r = e.get(t, u, f.ThumbnailURL, nil); r.status != http.StatusServiceUnavailable {
			break
		}
	}
	r.want(t, http.StatusOK, "")
	img, _, err := image.Decode(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("thumbnail does not decode: %v", err)
	}
	return img, r
}

func TestImageUploads(t *testing.T) {
	filesBoth(t, envOptions{}, func(t *testing.T, e *env) {
		a := e.newUser(t, "A")
		g := e.group(t, a, "images", false)

		p := uploaded(t, e.upload(t, a, g, "wide.png", pngOf(t, twoTone(1000, 500))))
		if p.ContentType != "image/png" || p.Width != 1000 || p.Height != 500 || p.ThumbnailURL != p.URL+"/thumbnail" {
			t.Errorf("png: %+v", p)
		}
		img, r := e.thumbnailOf(t, a, p)
		if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 160 {
			t.Errorf("png thumbnail %v, want 320 × 160", b)
		}
		checkDownloadHeaders(t, r, "image/jpeg", true)
		if got := r.header.Get("Content-Disposition"); got != "inline; filename=thumbnail-wide.jpg" {
			t.Errorf("the thumbnail's Content-Disposition %q, want its name with the JPEG's extension", got)
		}
		d := e.get(t, a, p.URL, nil)
		checkDownloadHeaders(t, d, "image/png", true)

		// A PNG's text, EXIF and time chunks are gone from what is served; its pixels stay.
		plain := pngOf(t, twoTone(40, 20))
		ihdrEnd := 8 + 8 + 13 + 4
		var meta bytes.Buffer
		meta.Write(plain[:ihdrEnd])
		for _, c := range []struct{ typ, data string }{{"tEXt", "Author\x00secret author"}, {"eXIf", "MM\x00*GPS 48.85N"}} {
			binary.Write(&meta, binary.BigEndian, uint32(len(c.data)))
			meta.WriteString(c.typ + c.data)
			binary.Write(&meta, binary.BigEndian, crc32.ChecksumIEEE([]byte(c.typ+c.data)))
		}
		meta.Write(plain[ihdrEnd:])
		mp := uploaded(t, e.upload(t, a, g, "meta.png", meta.Bytes()))
		if d := e.get(t, a, mp.URL, nil); !bytes.Equal(d.body, plain) || mp.Size != int64(len(plain)) {
			t.Errorf("the served PNG: %d bytes (size %d), want the %d of the PNG without its metadata", len(d.body), mp.Size, len(plain))
		}
		// A truncated PNG is refused, like a truncated JPEG.
		e.upload(t, a, g, "cut.png", plain[:len(plain)-20]).want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)

		// A GIF's comment is gone from what is served; its frame stays.
		var gb bytes.Buffer
		if err := gif.Encode(&gb, twoTone(40, 20), nil); err != nil {
			t.Fatal(err)
		}
		plainGIF := gb.Bytes()
		withComment := append(append(append([]byte{}, plainGIF[:len(plainGIF)-1]...), "\x21\xFE\x0Esecret comment\x00"...), 0x3B)
		gp := uploaded(t, e.upload(t, a, g, "anim.gif", withComment))
		if d := e.get(t, a, gp.URL, nil); !bytes.Equal(d.body, plainGIF) || gp.ContentType != "image/gif" || gp.Width != 40 {
			t.Errorf("the served GIF: %d bytes (%+v), want the %d of the GIF without its comment", len(d.body), gp, len(plainGIF))
		}

		// A photo: turned upright by its orientation, its EXIF and GPS gone from what is served.
		j := uploaded(t, e.upload(t, a, g, "photo.jpg", photoJPEG(t, 800, 400, 6)))
		if j.ContentType != "image/jpeg" || j.Width != 400 || j.Height != 800 {
			t.Errorf("jpeg: %+v, want 400 × 800 (upright)", j)
		}
		d = e.get(t, a, j.URL, nil)
		if bytes.Contains(d.body, []byte("GPS")) || d.header.Get("Content-Length") != strconv.FormatInt(j.Size, 10) {
			t.Errorf("the served JPEG holds GPS data or is not the stored size")
		}
		if _, err := jpeg.Decode(bytes.NewReader(d.body)); err != nil {
			t.Errorf("the served JPEG does not decode: %v", err)
		}
		img, _ = e.thumbnailOf(t, a, j)
		if b := img.Bounds(); b.Dx() != 160 || b.Dy() != 320 {
			t.Errorf("photo thumbnail %v, want 160 × 320", b)
		}
		if r, _, b, _ := img.At(80, 10).RGBA(); r < b {
			t.Errorf("the photo's thumbnail is not upright: its top is not red")
		}
		// The thumbnail has its own strong ETag.
		th := e.get(t, a, j.ThumbnailURL, nil)
		sum := sha256.Sum256(th.body)
		if th.header.Get("ETag") != `"`+hex.EncodeToString(sum[:])+`"` {
			t.Errorf("thumbnail ETag %q", th.header.Get("ETag"))
		}
	})
}

func TestFileAuthorization(t *testing.T) {
	filesBoth(t, envOptions{}, func(t *testing.T, e *env) {
		a, b, out, ex := e.newUser(t, "A"), e.newUser(t, "B"), e.newUser(t, "Out"), e.newUser(t, "Ex")
		g := e.group(t, a, "private group", false, b, ex)
		pub := e.group(t, a, "public group", true)
		pc := e.private(t, a, b)
		e.leave(t, ex, g)

		// Uploads: members only; a chat one cannot see is 404.
		e.upload(t, out, g, "x.txt", []byte("x")).want(t, http.StatusNotFound, chat.CodeNotFound)
		e.upload(t, out, pc, "x.txt", []byte("x")).want(t, http.StatusNotFound, chat.CodeNotFound)
		e.upload(t, out, pub, "x.txt", []byte("x")).want(t, http.StatusForbidden, chat.CodeNotMember)
		e.upload(t, ex, g, "x.txt", []byte("x")).want(t, http.StatusNotFound, chat.CodeNotFound)
		e.upload(t, a, 999999, "x.txt", []byte("x")).want(t, http.StatusNotFound, chat.CodeNotFound)
		e.do(t, req{method: "POST", path: fmt.Sprintf("/api/v1/chats/%d/files", g), body: "x", contentType: "multipart/form-data; boundary=x"}).
			want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)
		var n int
		e.store.DB().QueryRow(`SELECT count(*) FROM files`).Scan(&n)
		if n != 0 {
			t.Errorf("%d files stored by refused uploads", n)
		}

		img := pngOf(t, twoTone(40, 40))
		f := uploaded(t, e.upload(t, a, g, "a.png", img))
		fp := uploaded(t, e.upload(t, a, pub, "p.png", img))
		fc := uploaded(t, e.upload(t, b, pc, "c.png", img))
		can := func(u *user, f wireFile, want bool) {
			t.Helper()
			for _, path := range []string{f.URL, f.ThumbnailURL} {
				r := e.get(t, u, path, nil)
				if r.status == http.StatusServiceUnavailable { // thumbnail still being made
					r = e.get(t, u, path, nil)
				}
				if want && r.status != http.StatusOK {
					t.Errorf("%s GET %s: %d, want 200", u.Name, path, r.status)
				}
				if !want {
					r.want(t, http.StatusNotFound, chat.CodeNotFound)
				}
			}
		}
		// Unattached: the uploader only.
		can(a, f, true)
		can(b, f, false)
		can(out, f, false)
		can(a, fc, false)
		can(b, fc, true)
		// Attached: every member, and nobody else: not an outsider, not an ex-member, not a
		// non-member of a public group (who may read the group's detail, never its files).
		e.attachFile(t, a, g, f.ID)
		e.attachFile(t, a, pub, fp.ID)
		e.attachFile(t, b, pc, fc.ID)
		can(a, f, true)
		can(b, f, true)
		can(out, f, false)
		can(ex, f, false)
		can(out, fp, false)
		can(a, fc, true)
		can(out, fc, false)
		e.get(t, nil, f.URL, nil).want(t, http.StatusUnauthorized, chat.CodeUnauthenticated)
		e.get(t, a, "/api/v1/files/999999", nil).want(t, http.StatusNotFound, chat.CodeNotFound)
		// Leaving takes the files away at once.
		e.leave(t, b, g)
		can(b, f, false)
	})
}

// TestRedirectOriginInCSP: with downloads redirected to the object store, the app's CSP lets
// images come from the store's origin (the web client shows thumbnails from there), and from
// nowhere else; without redirects, from this origin only.
func TestRedirectOriginInCSP(t *testing.T) {
	t.Parallel()
	for _, redirect := range []time.Duration{0, 5 * time.Minute} {
		e := newFilesEnv(t, "sqlite", fileBackends[1].blobs, envOptions{fileOpts: chat.FileOptions{Redirect: redirect}})
		csp := e.get(t, nil, "/healthz", nil).header.Get("Content-Security-Policy")
		imgSrc := ""
		for _, d := range strings.Split(csp, ";") {
			if d = strings.TrimSpace(d); strings.HasPrefix(d, "img-src ") {
				imgSrc = d
			}
		}
		want := "img-src 'self' data:"
		if redirect > 0 {
			want += " http://" // the gateway's origin, plain http in the tests
		}
		if !strings.HasPrefix(imgSrc, want) || (redirect == 0) != (imgSrc == want) {
			t.Errorf("redirect %v: %q, want %q...", redirect, imgSrc, want)
		}

		a := e.newUser(t, "A")
		g := e.group(t, a, "redirected", false)
		f := uploaded(t, e.upload(t, a, g, "r.png", pngOf(t, twoTone(20, 20))))
		hr, _ := http.NewRequest("GET", e.srv.URL+f.URL, nil)
		hr.Header.Set("Authorization", "Bearer "+a.Token)
		c := *e.srv.Client()
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		res, err := c.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		r := resp{status: res.StatusCode, header: res.Header}
		if redirect > 0 {
			loc := r.header.Get("Location")
			if r.status != http.StatusFound || !strings.HasPrefix(loc, strings.TrimPrefix(imgSrc, "img-src 'self' data: ")) {
				t.Errorf("redirected download: %d to %q, not to the origin the CSP allows (%s)", r.status, loc, imgSrc)
			}
		} else if r.status != http.StatusOK {
			t.Errorf("streamed download: %d", r.status)
		}
	}
}

// An upload carried by our cookies from a foreign page is refused before it is read.
func TestFileUploadCrossOrigin(t *testing.T) {
	t.Parallel()
	e := newFilesEnv(t, "sqlite", fileBackends[0].blobs, envOptions{})
	a := e.newUser(t, "A")
	g := e.group(t, a, "g", false)
	body, ct := multipartFile(t, `form-data; name="file"; filename="x.txt"`, []byte("x"))
	e.do(t, req{method: "POST", path: fmt.Sprintf("/api/v1/chats/%d/files", g), body: body, contentType: ct,
		cookies: []*http.Cookie{{Name: "access_token", Value: a.Token}}, header: map[string]string{"Origin": "https://evil.example"}}).
		want(t, http.StatusForbidden, chat.CodeForbidden)
}

func TestFileLimits(t *testing.T) {
	lim := chat.FileLimits{MaxFileBytes: 2000, UserDailyBytes: 5000, ChatBytes: 3500, MaxPixels: 1_000_000}
	filesBoth(t, envOptions{fileOpts: chat.FileOptions{Limits: lim}}, func(t *testing.T, e *env) {
		a, b := e.newUser(t, "A"), e.newUser(t, "B")
		g1 := e.group(t, a, "one", false, b)
		g2 := e.group(t, a, "two", false)
		blob := func(n int) []byte { return bytes.Repeat([]byte("x"), n) }

		// One file: 2000 bytes pass, 2001 do not, nor does a body far larger than the limit.
		e.upload(t, a, g1, "over.txt", blob(2001)).want(t, http.StatusRequestEntityTooLarge, chat.CodeTooLarge)
		e.upload(t, a, g1, "huge.txt", blob(300<<10)).want(t, http.StatusRequestEntityTooLarge, chat.CodeTooLarge)
		uploaded(t, e.upload(t, a, g1, "max.txt", blob(2000)))
		// The chat's total (3500), whoever uploads.
		uploaded(t, e.upload(t, b, g1, "b.txt", blob(1500)))
		e.upload(t, a, g1, "one more.txt", blob(1)).want(t, http.StatusRequestEntityTooLarge, chat.CodeStorageFull)
		// The uploader's bytes in 24 hours (5000): 2000 + 1500 by B do not count for A.
		uploaded(t, e.upload(t, a, g2, "c.txt", blob(2000)))
		uploaded(t, e.upload(t, a, g2, "d.txt", blob(1000)))
		r := e.upload(t, a, g2, "e.txt", blob(1))
		r.want(t, http.StatusTooManyRequests, chat.CodeQuotaExceeded)
		if ra, _ := strconv.Atoi(r.header.Get("Retry-After")); ra < 86000 || ra > 86400 {
			t.Errorf("Retry-After %q, want about a day (when the first upload of the day ages out)", r.header.Get("Retry-After"))
		}
		// Images: the pixel limit (1 000 000) is checked on the header, before decoding.
		e2 := e.newUser(t, "C")
		g3 := e.group(t, e2, "three", false)
		r = e.upload(t, e2, g3, "big.png", bombPNG(2000, 1000))
		r.want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
		r.wantField(t, "body.file")
		uploaded(t, e.upload(t, e2, g3, "ok.png", pngOf(t, twoTone(10, 10))))

		// Malformed requests.
		e.upload(t, e2, g3, "empty.txt", nil).want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
		e.do(t, req{method: "POST", path: fmt.Sprintf("/api/v1/chats/%d/files", g3), body: map[string]string{"file": "x"}, token: e2.Token}).
			want(t, http.StatusUnsupportedMediaType, "unsupported_media_type")
		body, ct := multipartFile(t, `form-data; name="other"; filename="x.txt"`, []byte("x"))
		e.do(t, req{method: "POST", path: fmt.Sprintf("/api/v1/chats/%d/files", g3), body: body, contentType: ct, token: e2.Token}).
			want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
		e.do(t, req{method: "POST", path: fmt.Sprintf("/api/v1/chats/%d/files", g3), body: "--x\r\nbroken", contentType: "multipart/form-data; boundary=x", token: e2.Token}).
			want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
		cut, ct := multipartFile(t, `form-data; name="file"; filename="cut.txt"`, blob(1500))
		e.do(t, req{method: "POST", path: fmt.Sprintf("/api/v1/chats/%d/files", g3), body: cut[:len(cut)-50], contentType: ct, token: e2.Token}).
			want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)

		// Nothing stays behind a refusal.
		var uploading int
		e.store.DB().QueryRow(`SELECT count(*) FROM files WHERE state <> 'stored'`).Scan(&uploading)
		if uploading != 0 {
			t.Errorf("%d uploads left behind by refusals", uploading)
		}
	})
}

func TestHostileFiles(t *testing.T) {
	filesBoth(t, envOptions{}, func(t *testing.T, e *env) {
		a := e.newUser(t, "A")
		g := e.group(t, a, "hostile", false)

		// Documents that could run script are kept, but served inertly: as bytes to download,
		// in a sandbox.
		for _, c := range []struct{ name, data string }{
			{"page.html", "<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"},
			{"logo.svg", `<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>`},
			{"image.png", "<html><script>alert(3)</script>"}, // named like an image, sniffed as HTML
		} {
			f := uploaded(t, e.upload(t, a, g, c.name, []byte(c.data)))
			if f.Width != 0 || f.ThumbnailURL != "" || strings.HasPrefix(f.ContentType, "image/") {
				t.Errorf("%s: %+v, want no image", c.name, f)
			}
			d := e.get(t, a, f.URL, nil)
			checkDownloadHeaders(t, d, "application/octet-stream", false)
		}

		// Images that are not what they claim are refused, never decoded.
		for _, c := range []struct {
			name string
			data []byte
		}{
			{"bomb.png", bombPNG(100_000, 100_000)},
			{"truncated.jpg", func() []byte { j := photoJPEG(t, 200, 200, 1); return j[:len(j)/2] }()},
			{"header only.gif", []byte("GIF89a")},
		} {
			r := e.upload(t, a, g, c.name, c.data)
			r.want(t, http.StatusUnprocessableEntity, chat.CodeInvalid)
			r.wantField(t, "body.file")
		}

		// A zip bomb named .png is a zip: stored as it is, never unpacked, served as a download.
		zb := zipBomb(t, 20<<20)
		f := uploaded(t, e.upload(t, a, g, "cat.png", zb.Bytes()))
		if f.ContentType != "application/zip" || f.ThumbnailURL != "" || f.Size != int64(zb.Len()) {
			t.Errorf("zip bomb: %+v", f)
		}
		checkDownloadHeaders(t, e.get(t, a, f.URL, nil), "application/zip", false)
		e.get(t, a, f.URL+"/thumbnail", nil).want(t, http.StatusNotFound, chat.CodeNotFound)

		// Names: no directories, no NUL or control characters, no bidi overrides, bounded.
		for _, c := range []struct{ disposition, want string }{
			{`form-data; name="file"; filename="../../etc/passwd"`, "passwd"},
			{`form-data; name="file"; filename="..\\..\\boot.ini"`, "boot.ini"},
			{`form-data; name="file"; filename*=UTF-8''a%00b%0D%0A.txt`, "ab.txt"},
			{`form-data; name="file"; filename*=UTF-8''invoice%E2%80%AEfdp.exe`, "invoicefdp.exe"},
			{`form-data; name="file"; filename="` + strings.Repeat("n", 1000) + `.txt"`, strings.Repeat("n", 251) + ".txt"},
			{`form-data; name="file"`, "file"},
		} {
			body, ct := multipartFile(t, c.disposition, []byte("some text"))
			f := uploaded(t, e.do(t, req{method: "POST", path: fmt.Sprintf("/api/v1/chats/%d/files", g), body: body, contentType: ct, token: a.Token}))
			if f.Name != c.want {
				t.Errorf("%s: name %q, want %q", c.disposition, f.Name, c.want)
			}
			disp := e.get(t, a, f.URL, nil).header.Get("Content-Disposition")
			if strings.ContainsAny(disp, "\x00\r\n\u202E/\\") || !strings.HasPrefix(disp, "attachment") {
				t.Errorf("%s: Content-Disposition %q", c.disposition, disp)
			}
		}
	})
}

// zipBomb is a zip of one file of n zero bytes, made without compressing them one by one
// (archive/zip's deflate of 20 MiB was most of TestHostileFiles' CPU under the race detector):
// its deflate stream is a compressed stretch of zeros repeated, each copy made by a fresh
// compressor and ending with a sync flush (so it refers back only within itself and ends on a
// byte), then the rest and a final empty block.
func zipBomb(t *testing.T, n int) *bytes.Buffer {
	t.Helper()
	const stretch = 1 << 16
	zeros := func(k int) []byte {
		var b bytes.Buffer
		fw, err := flate.NewWriter(&b, flate.BestCompression)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(make([]byte, k))
		if err := fw.Flush(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	var raw bytes.Buffer
	raw.Write(bytes.Repeat(zeros(stretch), n/stretch))
	if n%stretch > 0 {
		raw.Write(zeros(n % stretch))
	}
	raw.Write([]byte{0x03, 0x00}) // the final block: fixed codes, end of block
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "zeros.bin", Method: zip.Deflate,
		CRC32: crc32.ChecksumIEEE(make([]byte, n)), CompressedSize64: uint64(raw.Len()), UncompressedSize64: uint64(n)})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return &zb
}

func TestZipBomb(t *testing.T) {
	t.Parallel()
	zb := zipBomb(t, 3<<20+5)
	zr, err := zip.NewReader(bytes.NewReader(zb.Bytes()), int64(zb.Len()))
	if err != nil {
		t.Fatal(err)
	}
	r, err := zr.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r) // checks the CRC-32 and the size at the end
	if err != nil || len(zr.File) != 1 || !bytes.Equal(b, make([]byte, 3<<20+5)) || zb.Len() > 8<<10 {
		t.Errorf("zipBomb(3 MiB + 5): %d files, %d bytes of %d unpacked (%v), want 3 MiB + 5 zeros from a few KiB", len(zr.File), len(b), zb.Len(), err)
	}
}

// prng is an endless stream of a fixed pseudo-random sequence.
type prng struct{ r *rand.ChaCha8 }

func (p prng) Read(b []byte) (int, error) { return p.r.Read(b) }

// TestLargeUploadMemory uploads 25 MiB through the real handler while sampling the heap: the
// upload streams, so the heap grows by a small fraction of the file. It runs alone (not in
// parallel), so that it measures this upload only.
func TestLargeUploadMemory(t *testing.T) {
	const size = 25 << 20
	for _, b := range fileBackends {
		t.Run(b.db, func(t *testing.T) {
			e := newFilesEnv(t, b.db, b.blobs, envOptions{})
			a := e.newUser(t, "A")
			g := e.group(t, a, "big", false)

			// The body is generated as it is sent: the client holds none of it either.
			pr, pw := io.Pipe()
			mw := multipart.NewWriter(pw)
			sum := sha256.New()
			go func() {
				part, _ := mw.CreateFormFile("file", "big.bin")
				_, err := io.Copy(io.MultiWriter(part, sum), io.LimitReader(prng{rand.NewChaCha8([32]byte{1})}, size))
				if err == nil {
					err = mw.Close()
				}
				pw.CloseWithError(err)
			}()
			hr, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/v1/chats/%d/files", e.srv.URL, g), pr)
			hr.Header.Set("Content-Type", mw.FormDataContentType())
			hr.Header.Set("Authorization", "Bearer "+a.Token)

			defer debug.SetGCPercent(debug.SetGCPercent(10)) // little garbage: the heap is what is live
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			base := ms.HeapAlloc
			var peak atomic.Uint64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					if ms.HeapAlloc > peak.Load() {
						peak.Store(ms.HeapAlloc)
					}
					select {
					case <-stop:
						return
					case <-time.After(2 * time.Millisecond):
					}
				}
			}()
			res, err := e.srv.Client().Do(hr)
			close(stop)
			wg.Wait()
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusCreated {
				t.Fatalf("upload: %d %s", res.StatusCode, body)
			}
			growth := int64(peak.Load()) - int64(base)
			t.Logf("%s: 25 MiB upload, heap %d KiB before, peak growth %d KiB", b.db, base>>10, growth>>10)
			// The S3 store holds one part (5 MiB) at a time; the directory none. The S3 case
			// peaks at 7.0-7.6 MiB (its part, the SDK's buffers, garbage the collector has not
			// reached yet on a busy machine): 12 MiB leaves room for that and is still under half
			// the file, which a handler that read the upload whole would exceed.
			if growth > 12<<20 {
				t.Errorf("the heap grew by %d KiB during a %d KiB upload, want under 12 MiB", growth>>10, size>>10)
			}
			// And the bytes are all there. The download is hashed as it arrives: read whole into a
			// growing buffer (env.get), its copies were a third of this test's CPU under the race
			// detector. TestFileUploadDownload checks the download's answer against the API.
			f := uploaded(t, resp{status: res.StatusCode, body: body})
			dr, _ := http.NewRequest("GET", e.srv.URL+f.URL, nil)
			dr.Header.Set("Authorization", "Bearer "+a.Token)
			res, err = e.srv.Client().Do(dr)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			down := sha256.New()
			n, err := io.Copy(down, res.Body)
			if err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("download: %d after %d bytes, %v", res.StatusCode, n, err)
			}
			if f.Size != size || n != size || !bytes.Equal(down.Sum(nil), sum.Sum(nil)) {
				t.Errorf("downloaded %d bytes with another hash than the %d uploaded", n, size)
			}
		})
	}
}

// TestFilesInOpenAPI: the upload, downloads and limits are described in /openapi.json, the
// upload with its multipart body.
func TestFilesInOpenAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", envOptions{})
	doc := decode[struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			RequestBody struct {
				Content map[string]struct {
					Schema struct {
						Required   []string                  `json:"required"`
						Properties map[string]map[string]any `json:"properties"`
					} `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
			Responses map[string]any `json:"responses"`
		} `json:"paths"`
	}](t, e.get(t, nil, "/openapi.json", nil))
	up := doc.Paths["/api/v1/chats/{id}/files"]["post"]
	mp := up.RequestBody.Content["multipart/form-data"].Schema
	if up.OperationID != "upload-file" || mp.Properties["file"]["format"] != "binary" || fmt.Sprint(mp.Required) != "[file]" {
		t.Errorf("upload operation: %+v", up)
	}
	for _, code := range []string{"201", "413", "422", "429", "404", "403"} {
		if _, ok := up.Responses[code]; !ok {
			t.Errorf("the upload does not document %s", code)
		}
	}
	for path, id := range map[string]string{"/api/v1/files/{id}": "download-file", "/api/v1/files/{id}/thumbnail": "download-thumbnail", "/api/v1/files/limits": "file-limits"} {
		if got := doc.Paths[path]["get"].OperationID; got != id {
			t.Errorf("GET %s: operation %q, want %q", path, got, id)
		}
	}
	if _, ok := doc.Paths["/api/v1/files/{id}"]["get"].Responses["206"]; !ok {
		t.Errorf("the download does not document 206")
	}
}

// TestBrowserEscapedFileNames: browsers send a file name's quote and line breaks as %22, %0A
// and %0D (the HTML standard's multipart/form-data encoding); the stored name has the quote
// back (and no line break), as has a name whose quote came backslash-escaped (curl).
func TestBrowserEscapedFileNames(t *testing.T) {
	filesBoth(t, envOptions{}, func(t *testing.T, e *env) {
		a := e.newUser(t, "A")
		g := e.group(t, a, "names", false)
		for _, c := range []struct{ disposition, want string }{
			{`form-data; name="file"; filename="say %22hi%22.txt"`, `say "hi".txt`},
			{`form-data; name="file"; filename="two%0D%0Alines.txt"`, "twolines.txt"},
			{`form-data; name="file"; filename="say \"hi\".txt"`, `say "hi".txt`},
			{`form-data; name="file"; filename="100% done.txt"`, "100% done.txt"},
		} {
			body, ct := multipartFile(t, c.disposition, []byte("x"))
			f := uploaded(t, e.do(t, req{method: "POST", path: fmt.Sprintf("/api/v1/chats/%d/files", g), body: body, contentType: ct, token: a.Token}))
			if f.Name != c.want {
				t.Errorf("%s: stored as %q, want %q", c.disposition, f.Name, c.want)
			}
		}
	})
}

// TestStalledBodiesTimeOut: a request whose body stops coming is answered 408 request_timeout
// and lets its connection go, instead of holding it for ever: an upload after UploadIdle
// without a byte (however long the whole may take), a login after huma's 5 s (its body is a
// RawBody, which huma does not bound by itself); and a request refused before its body was
// read gets its answer after at most 5 s.
func TestStalledBodiesTimeOut(t *testing.T) {
	t.Parallel()
	e := newFilesEnv(t, "sqlite", fileBackends[0].blobs, envOptions{uploadIdle: 3 * time.Second})
	a := e.newUser(t, "Ann")
	g := e.group(t, a, "Team", false)
	body, ctype := multipartFile(t, `form-data; name="file"; filename="a.txt"`, bytes.Repeat([]byte("x"), 4096))
	stall := func(t *testing.T, path, header string, sent []byte, total int, status int, code string) {
		t.Helper()
		host := strings.TrimPrefix(e.srv.URL, "http://")
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %d\r\n\r\n", path, host, header, total)
		conn.Write(sent)
		conn.SetReadDeadline(time.Now().Add(time.Minute)) // a bound for the test, far above the server's
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: no answer to a stalled body: %v", path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != status || !strings.Contains(string(b), `"code":"`+code+`"`) {
			t.Errorf("%s: got %d %s, want %d %s", path, res.StatusCode, b, status, code)
		}
	}
	t.Run("upload", func(t *testing.T) {
		t.Parallel()
		stall(t, chatPath(g, "/files"), "Authorization: Bearer "+a.Token+"\r\nContent-Type: "+ctype+"\r\n", body[:len(body)/2], len(body),
			http.StatusRequestTimeout, chat.CodeRequestTimeout)
		// An upload that keeps coming, for longer than the idle bound in all, is not cut.
		r, w := io.Pipe()
		go func() {
			for i := 0; i < len(body); i += len(body) / 8 {
				w.Write(body[i:min(i+len(body)/8, len(body))])
				time.Sleep(250 * time.Millisecond)
			}
			w.Close()
		}()
		hr, err := http.NewRequest("POST", e.srv.URL+chatPath(g, "/files"), r)
		if err != nil {
			t.Fatal(err)
		}
		hr.ContentLength = int64(len(body))
		hr.Header.Set("Content-Type", ctype)
		hr.Header.Set("Authorization", "Bearer "+a.Token)
		res, err := e.srv.Client().Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			t.Errorf("a slow upload that keeps coming: got %d, want 201", res.StatusCode)
		}
	})
	t.Run("login", func(t *testing.T) {
		t.Parallel()
		stall(t, loginPath, "Content-Type: application/json\r\n", []byte(`{"email":`), 100, http.StatusRequestTimeout, chat.CodeRequestTimeout)
	})
	// Refused before the body is read: net/http reads the rest of a small body before it sends
	// the answer, so a body that never comes held the connection, unanswered, for ever.
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		stall(t, "/api/v1/chats", "Authorization: Bearer forged\r\nContent-Type: application/json\r\n", []byte(`{"kind":`), 100,
			http.StatusUnauthorized, chat.CodeUnauthenticated)
	})
	t.Run("refused upload", func(t *testing.T) {
		t.Parallel()
		stall(t, chatPath(g, "/files"), "Authorization: Bearer forged\r\nContent-Type: "+ctype+"\r\n", body[:len(body)/2], len(body),
			http.StatusUnauthorized, chat.CodeUnauthenticated)
	})
}

// TestStalledDownloadsEnd: an answer whose client stops taking bytes, here a download, ends
// once a write has waited WriteIdle (it held its connection, goroutine and open file for ever),
// while one that is read goes through whole, and its connection serves the next request
// afterwards.
func TestStalledDownloadsEnd(t *testing.T) {
	t.Parallel()
	const idle = time.Second
	ended := make(chan int, 4)
	observe := func(route string, status int, _ time.Duration) {
		if route == "GET /api/v1/files/{id}" {
			ended <- status
		}
	}
	e := newFilesEnv(t, "sqlite", fileBackends[0].blobs, envOptions{writeIdle: idle, observe: observe})
	a := e.newUser(t, "Ann")
	g := e.group(t, a, "Team", false)
	// More than the kernel's buffers on both ends of a loopback connection hold.
	data := bytes.Repeat([]byte("0123456789abcdef"), (24<<20)/16)
	body, ctype := multipartFile(t, `form-data; name="file"; filename="big.bin"`, data)
	f := uploaded(t, e.do(t, req{method: "POST", path: chatPath(g, "/files"), body: body, contentType: ctype, token: a.Token}))
	host := strings.TrimPrefix(e.srv.URL, "http://")
	get := func(conn net.Conn, path string) {
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", path, host, a.Token)
	}

	t.Run("read", func(t *testing.T) {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(time.Minute))
		br := bufio.NewReader(conn)
		get(conn, f.URL)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, res.Body)
		if err != nil || n != int64(len(data)) {
			t.Fatalf("read %d bytes (%v), want the whole file, %d", n, err, len(data))
		}
		<-ended
		// Past the last write's deadline, the kept connection answers the next request.
		time.Sleep(2 * idle)
		get(conn, "/api/v1/users/me")
		if res, err := http.ReadResponse(br, nil); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("the next request on the download's connection: %v, %v; want 200", res, err)
		}
	})

	t.Run("stalled", func(t *testing.T) {
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		get(conn, f.URL) // and read nothing
		select {
		case <-ended:
		case <-time.After(time.Minute):
			t.Fatal("the download of a client that stopped reading did not end in a minute")
		}
		conn.SetReadDeadline(time.Now().Add(time.Minute))
		n, err := io.Copy(io.Discard, conn)
		if n >= int64(len(data)) {
			t.Errorf("the stalled client got %d bytes, the whole file: want it cut", n)
		}
		// A reset, not a close: a close left what the kernel held of the answer queued for
		// the client that had stopped reading, for minutes.
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("the cut connection ended with %v after %d bytes, want a reset (ECONNRESET)", err, n)
		}
	})
}
