package precompress

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
)

func TestNegotiate(t *testing.T) {
	tests := []struct {
		accept       string
		haveBr, have bool
		want         string
	}{
		{"gzip, deflate, br, zstd", true, true, "br"},
		{"gzip, deflate", true, true, "gzip"},
		{"br;q=0, gzip", true, true, "gzip"},
		{"BR", true, true, "br"},
		{"br;q=0.1, gzip;q=1", true, true, "br"}, // any q > 0 accepts; brotli is smaller
		{"gzip;q=0", true, true, ""},
		{"", true, true, ""},
		{"identity", true, true, ""},
		{"*", true, true, "br"},
		{"*;q=0, gzip", true, true, "gzip"},
		{"br", false, true, ""},
		{"br, gzip", false, true, "gzip"},
		{"gzip", true, false, ""},
		{" , ;q=1, br ; q = 0.5", true, true, "br"},
	}
	for _, tt := range tests {
		if got := Negotiate(tt.accept, tt.haveBr, tt.have); got != tt.want {
			t.Errorf("Negotiate(%q, %v, %v) = %q, want %q", tt.accept, tt.haveBr, tt.have, got, tt.want)
		}
	}
}

func decode(t *testing.T, enc string, b []byte) []byte {
	t.Helper()
	var r io.Reader = bytes.NewReader(b)
	switch enc {
	case "br":
		r = brotli.NewReader(r)
	case "gzip":
		gr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = gr
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestServe(t *testing.T) {
	body := []byte(strings.Repeat("<p>hello, compressed world</p>\n", 100))
	f := New(body)
	etags := map[string]bool{}
	for _, tt := range []struct{ accept, enc string }{{"gzip, br", "br"}, {"gzip", "gzip"}, {"", ""}} {
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		req.Header.Set("Accept-Encoding", tt.accept)
		rec := httptest.NewRecorder()
		f.Serve(rec, req, "text/html; charset=utf-8", "no-cache")
		res := rec.Result()
		if got := res.Header.Get("Content-Encoding"); got != tt.enc {
			t.Errorf("Accept-Encoding %q: Content-Encoding = %q, want %q", tt.accept, got, tt.enc)
		}
		if got := res.Header.Get("Vary"); got != "Accept-Encoding" {
			t.Errorf("Accept-Encoding %q: Vary = %q", tt.accept, got)
		}
		if got, want := res.Header.Get("Content-Length"), strconv.Itoa(rec.Body.Len()); got != want {
			t.Errorf("Accept-Encoding %q: Content-Length = %s, body is %s bytes", tt.accept, got, want)
		}
		if tt.enc != "" && rec.Body.Len() >= len(body)/4 {
			t.Errorf("Accept-Encoding %q: %d bytes for %d, not compressed", tt.accept, rec.Body.Len(), len(body))
		}
		if got := decode(t, tt.enc, rec.Body.Bytes()); !bytes.Equal(got, body) {
			t.Errorf("Accept-Encoding %q: body does not decode to the file", tt.accept)
		}
		etag := res.Header.Get("ETag")
		if etags[etag] {
			t.Errorf("ETag %s is shared by two encodings", etag)
		}
		etags[etag] = true

		req.Header.Set("If-None-Match", etag)
		rec = httptest.NewRecorder()
		f.Serve(rec, req, "text/html; charset=utf-8", "no-cache")
		if rec.Code != http.StatusNotModified {
			t.Errorf("Accept-Encoding %q with its ETag: %d, want 304", tt.accept, rec.Code)
		}
	}

	// A file too small for variants is served as it is, without Vary.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req.Header.Set("Accept-Encoding", "br")
	New([]byte("tiny")).Serve(rec, req, "text/plain", "no-cache")
	if rec.Header().Get("Content-Encoding") != "" || rec.Header().Get("Vary") != "" || rec.Body.String() != "tiny" {
		t.Errorf("tiny file: encoding %q, vary %q, body %q", rec.Header().Get("Content-Encoding"), rec.Header().Get("Vary"), rec.Body.String())
	}
}

func TestWriteAndStale(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("console.log('x');\n", 64)
	files := map[string]string{
		"js/app.js":    big,
		"css/site.css": strings.Repeat("p { margin: 0 }\n", 64),
		"index.html":   strings.Repeat("<p>[[.Template]]</p>\n", 64), // skipped
		"small.js":     "x()",                                        // too small
		"icon.png":     strings.Repeat("\x89PNG", 200),               // not text
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	skip := func(name string) bool { return name == "index.html" }
	stale := func() []string {
		t.Helper()
		s, err := Stale(os.DirFS(dir), skip)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	if got := stale(); len(got) != 4 {
		t.Errorf("before generating: Stale = %q, want 4 missing variants", got)
	}
	changed, err := Write(dir, skip)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 4 {
		t.Errorf("Write changed %q, want the 4 variants", changed)
	}
	if got := stale(); len(got) != 0 {
		t.Errorf("after generating: Stale = %q", got)
	}
	if changed, _ := Write(dir, skip); len(changed) != 0 {
		t.Errorf("a second Write changed %q, want nothing", changed)
	}
	f, err := Load(os.DirFS(dir), "js/app.js")
	if err != nil || f.br == nil || f.gz == nil {
		t.Fatalf("Load: %v, variants %v %v", err, f.br != nil, f.gz != nil)
	}

	// An edited source makes its variants stale; a variant without a source is reported.
	if err := os.WriteFile(filepath.Join(dir, "js", "app.js"), []byte(big+"// edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "gone.js.gz"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(stale(), "\n")
	for _, want := range []string{"js/app.js.br: stale", "js/app.js.gz: stale", "gone.js.gz: no source"} {
		if !strings.Contains(got, want) {
			t.Errorf("Stale lacks %q:\n%s", want, got)
		}
	}
	if _, err := Write(dir, skip); err != nil {
		t.Fatal(err)
	}
	if got := stale(); len(got) != 0 {
		t.Errorf("after regenerating: Stale = %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "gone.js.gz")); !os.IsNotExist(err) {
		t.Errorf("the orphan variant is still there: %v", err)
	}
}

// TestNewCompressesABodyOnce: a File of New compresses a variant only when it is first served
// (most servers of a test binary serve none of their pages, and Go's client asks for gzip
// only); then a second File of the same body shares the first one's variants (every server a
// process makes builds the same pages), and another body gets its own.
func TestNewCompressesABodyOnce(t *testing.T) {
	body := []byte(strings.Repeat("<p>made twice</p>\n", 100))
	a, b := New(body), New(bytes.Clone(body))
	serve := func(f *File, accept string) {
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		req.Header.Set("Accept-Encoding", accept)
		f.Serve(httptest.NewRecorder(), req, "text/html", "no-cache")
	}
	serve(a, "")
	if a.br != nil || a.gz != nil {
		t.Error("compressed for a client that takes neither")
	}
	serve(a, "gzip")
	if a.br != nil || a.gz == nil {
		t.Errorf("served gzip: brotli variant %v, gzip variant %v; want only gzip made", a.br != nil, a.gz != nil)
	}
	for _, f := range []*File{a, b} {
		serve(f, "br")
		serve(f, "gzip")
	}
	if a.br == nil || a.gz == nil {
		t.Fatal("no variants")
	}
	if &a.br[0] != &b.br[0] || &a.gz[0] != &b.gz[0] {
		t.Error("the same body was compressed again")
	}
	c := New([]byte(strings.Repeat("<p>another page</p>\n", 100)))
	serve(c, "br")
	serve(c, "gzip")
	if bytes.Equal(c.br, a.br) || bytes.Equal(c.gz, a.gz) {
		t.Error("another body got the first one's variants")
	}
	var out bytes.Buffer
	if _, err := io.Copy(&out, brotli.NewReader(bytes.NewReader(c.br))); err != nil || !strings.HasPrefix(out.String(), "<p>another page") {
		t.Errorf("the other body's brotli variant: %q, %v", out.String()[:min(out.Len(), 20)], err)
	}
}
