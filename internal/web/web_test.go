package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"

	"github.com/wschat/chat/internal/precompress"
)

func get(t *testing.T, method, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	return rec
}

func TestIndex(t *testing.T) {
	rec := get(t, http.MethodGet, "/")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET / = %d, want 200", rec.Code)
	}
	if got, want := rec.Header().Get("Content-Type"), "text/html; charset=utf-8"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	if got, want := rec.Header().Get("Cache-Control"), "no-cache"; got != want {
		t.Errorf("Cache-Control = %q, want %q", got, want)
	}
	body := rec.Body.String()
	if !strings.Contains(body, AssetPrefix+Version()+"/js/main.js") {
		t.Errorf("index.html does not load the versioned main.js:\n%s", body)
	}
	if strings.Contains(body, "[[") {
		t.Errorf("index.html has an unexpanded template action:\n%s", body)
	}

	etag := rec.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on index.html")
	}
	if rec := get(t, http.MethodGet, "/", "If-None-Match", etag); rec.Code != http.StatusNotModified {
		t.Errorf("GET / with If-None-Match = %d, want 304", rec.Code)
	}
	if rec := get(t, http.MethodHead, "/"); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD / = %d with %d bytes, want 200 and no body", rec.Code, rec.Body.Len())
	}
}

func TestAssets(t *testing.T) {
	v := Version()
	tests := []struct {
		path, ctype string
	}{
		{"/assets/" + v + "/js/main.js", "text/javascript; charset=utf-8"},
		{"/assets/" + v + "/js/api.js", "text/javascript; charset=utf-8"},
		{"/assets/" + v + "/css/base.css", "text/css; charset=utf-8"},
		{"/assets/" + v + "/icon.svg", "image/svg+xml"},
	}
	for _, tt := range tests {
		rec := get(t, http.MethodGet, tt.path)
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", tt.path, rec.Code)
			continue
		}
		if got := rec.Header().Get("Content-Type"); got != tt.ctype {
			t.Errorf("GET %s: Content-Type = %q, want %q", tt.path, got, tt.ctype)
		}
		if got, want := rec.Header().Get("Cache-Control"), "public, max-age=31536000, immutable"; got != want {
			t.Errorf("GET %s: Cache-Control = %q, want %q", tt.path, got, want)
		}
		if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options = %q, want nosniff", tt.path, got)
		}
	}
}

func TestNotFound(t *testing.T) {
	v := Version()
	for _, p := range []string{
		"/index.html",
		"/chat/1",
		"/favicon.ico",
		"/assets/" + v + "/index.html",
		"/assets/" + v + "/js/nope.js",
		"/assets/0000000000000000/js/main.js", // another release's version
		"/assets/js/main.js",
		"/assets/" + v + "/../index.html",
		"/assets/" + v + "/js/../index.html",
		"/static/index.html",
		"/assets/" + v + "/js/main.js.br", // variants are served by Accept-Encoding, not by name
		"/assets/" + v + "/js/main.js.gz",
	} {
		if rec := get(t, http.MethodGet, p); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, rec.Code)
		}
	}
}

func TestMethods(t *testing.T) {
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		rec := get(t, m, "/")
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s / = %d, want 405", m, rec.Code)
		}
		if got := rec.Header().Get("Allow"); got != "GET, HEAD" {
			t.Errorf("%s /: Allow = %q, want %q", m, got, "GET, HEAD")
		}
	}
}

var (
	scriptTag  = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script>`)
	styleAttr  = regexp.MustCompile(`(?i)<[^>]+\sstyle\s*=`)
	handlerAtt = regexp.MustCompile(`(?i)<[^>]+\son[a-z]+\s*=`)
	external   = regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import`)
	htmlSinks  = regexp.MustCompile(`\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|\beval\(|new Function\(`)
)

// cspProblems lists what in a static file would break under the server's strict
// Content-Security-Policy or put user text into HTML: inline scripts, styles and handlers,
// external resources, and innerHTML-like sinks.
func cspProblems(name, s string) []string {
	var out []string
	switch {
	case strings.HasSuffix(name, ".html"):
		for _, m := range scriptTag.FindAllStringSubmatch(s, -1) {
			if !strings.Contains(m[1], "src=") || strings.TrimSpace(m[2]) != "" {
				out = append(out, "inline script")
			}
		}
		if strings.Contains(strings.ToLower(s), "<style") || styleAttr.MatchString(s) {
			out = append(out, "inline style")
		}
		if handlerAtt.MatchString(s) {
			out = append(out, "inline event handler")
		}
		if external.MatchString(s) {
			out = append(out, "external resource")
		}
	case strings.HasSuffix(name, ".js"):
		if m := htmlSinks.FindString(s); m != "" {
			out = append(out, "HTML sink "+m)
		}
	case strings.HasSuffix(name, ".css"):
		if external.MatchString(s) {
			out = append(out, "external resource")
		}
	}
	return out
}

func TestCSPProblemsCatches(t *testing.T) {
	bad := []struct{ name, src string }{
		{"a.html", `<script>alert(1)</script>`},
		{"a.html", `<script type="module" src="/x.js">alert(1)</script>`},
		{"a.html", `<div style="color:red">`},
		{"a.html", `<style>p{}</style>`},
		{"a.html", `<img src=x onerror=alert(1)>`},
		{"a.html", `<script src="https://cdn.example/x.js"></script>`},
		{"a.js", `el.innerHTML = name;`},
		{"a.js", `el.insertAdjacentHTML('beforeend', s)`},
		{"a.css", `@import url(x.css);`},
		{"a.css", `body{background:url(//example.com/x.png)}`},
	}
	for _, b := range bad {
		if len(cspProblems(b.name, b.src)) == 0 {
			t.Errorf("cspProblems(%q, %q) found nothing", b.name, b.src)
		}
	}
	good := `<script type="module" src="/assets/v/js/main.js"></script><link rel="stylesheet" href="/assets/v/css/base.css">`
	if p := cspProblems("a.html", good); len(p) != 0 {
		t.Errorf("cspProblems(good) = %v, want none", p)
	}
}

func TestStaticFilesAreCSPFriendly(t *testing.T) {
	root, err := fs.Sub(static, "static")
	if err != nil {
		t.Fatal(err)
	}
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		for _, problem := range cspProblems(p, string(b)) {
			t.Errorf("%s: %s", p, problem)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPrecompressedFilesAreFresh fails when a file below static/ changed without `go generate`.
func TestPrecompressedFilesAreFresh(t *testing.T) {
	root, err := fs.Sub(static, "static")
	if err != nil {
		t.Fatal(err)
	}
	problems, err := precompress.Stale(root, func(name string) bool { return name == "index.html" || name == "sw.js" })
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("static/%s: run go generate ./internal/web", p)
	}
}

func decoded(t *testing.T, enc string, b []byte) []byte {
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

// TestCompressed: every text file of the client, the page included, comes compressed in the
// encoding the client prefers, with Vary, a Content-Length, and an ETag of its own.
func TestCompressed(t *testing.T) {
	paths := []string{"/"}
	for name := range load().assets {
		if ext := path.Ext(name); ext == ".js" || ext == ".css" {
			paths = append(paths, AssetPrefix+Version()+"/"+name)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		plain := get(t, http.MethodGet, p)
		etags := map[string]string{"": plain.Header().Get("ETag")}
		for _, tt := range []struct{ accept, enc string }{{"gzip, deflate, br, zstd", "br"}, {"gzip, deflate", "gzip"}} {
			rec := get(t, http.MethodGet, p, "Accept-Encoding", tt.accept)
			if rec.Code != http.StatusOK {
				t.Fatalf("GET %s (%s) = %d", p, tt.accept, rec.Code)
			}
			if got := rec.Header().Get("Content-Encoding"); got != tt.enc {
				t.Errorf("GET %s (%s): Content-Encoding = %q, want %q", p, tt.accept, got, tt.enc)
				continue
			}
			if got := rec.Header().Get("Vary"); got != "Accept-Encoding" {
				t.Errorf("GET %s: Vary = %q", p, got)
			}
			if got, want := rec.Header().Get("Content-Length"), strconv.Itoa(rec.Body.Len()); got != want {
				t.Errorf("GET %s (%s): Content-Length = %q for %s bytes", p, tt.enc, got, want)
			}
			if !bytes.Equal(decoded(t, tt.enc, rec.Body.Bytes()), plain.Body.Bytes()) {
				t.Errorf("GET %s (%s) does not decode to the file", p, tt.enc)
			}
			etags[tt.enc] = rec.Header().Get("ETag")
			if rec := get(t, http.MethodGet, p, "Accept-Encoding", tt.accept, "If-None-Match", etags[tt.enc]); rec.Code != http.StatusNotModified {
				t.Errorf("GET %s (%s) with its ETag = %d, want 304", p, tt.enc, rec.Code)
			}
		}
		if etags[""] == etags["br"] || etags[""] == etags["gzip"] || etags["br"] == etags["gzip"] {
			t.Errorf("GET %s: one ETag for two encodings: %v", p, etags)
		}
	}
}

var (
	importRe     = regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^;]*?from\s+'(\./[^']+)'|^\s*import\s+'(\./[^']+)'|import\('(\./[^']+)'\)`)
	preloadRe    = regexp.MustCompile(`<link rel="modulepreload" href="([^"]+)">`)
	mainScriptRe = regexp.MustCompile(`<script type="module" src="([^"]+)">`)
)

// TestEveryModuleIsPreloaded: the page names every module that main.js reaches through its
// imports, so the browser fetches them all at once instead of discovering them import by import.
func TestEveryModuleIsPreloaded(t *testing.T) {
	root, err := fs.Sub(static, "static")
	if err != nil {
		t.Fatal(err)
	}
	reached := map[string]bool{}
	var walk func(name string)
	walk = func(name string) {
		if reached[name] {
			return
		}
		reached[name] = true
		src, err := fs.ReadFile(root, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, m := range importRe.FindAllStringSubmatch(string(src), -1) {
			rel := m[1] + m[2] + m[3]
			walk(path.Join(path.Dir(name), rel))
		}
	}
	walk("js/main.js")
	if len(reached) < 10 {
		t.Fatalf("found %d modules from main.js: the import pattern misses some", len(reached))
	}

	page := get(t, http.MethodGet, "/").Body.String()
	prefix := AssetPrefix + Version() + "/"
	loaded := map[string]bool{}
	for _, m := range append(preloadRe.FindAllStringSubmatch(page, -1), mainScriptRe.FindAllStringSubmatch(page, -1)...) {
		name, ok := strings.CutPrefix(m[1], prefix)
		if !ok {
			t.Errorf("%s is not a versioned asset", m[1])
			continue
		}
		if get(t, http.MethodGet, m[1]).Code != http.StatusOK {
			t.Errorf("the page preloads %s, which is not served", m[1])
		}
		loaded[name] = true
	}
	for name := range reached {
		if !loaded[name] {
			t.Errorf("%s is imported but not preloaded by the page", name)
		}
	}
	for name := range loaded {
		if !reached[name] {
			t.Errorf("the page preloads %s, which nothing imports", name)
		}
	}
}

// TestServiceWorker: the service worker is served at the root, so that its scope is the whole
// app, and revalidated, so that a new release replaces it; the modules it imports are this
// release's, and served.
func TestServiceWorker(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/sw.js", nil))
	body := rec.Body.String()
	if rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-cache" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") ||
		!strings.Contains(body, "showNotification") {
		t.Errorf("GET /sw.js: %d, %q, %q", rec.Code, rec.Header().Get("Cache-Control"), rec.Header().Get("Content-Type"))
	}
	if strings.Contains(body, "[[") {
		t.Errorf("GET /sw.js: a template left unfilled")
	}
	imports := regexp.MustCompile(`(?m)^import .* from '([^']+)';$`).FindAllStringSubmatch(body, -1)
	if len(imports) == 0 {
		t.Fatal("GET /sw.js imports nothing: want links.js")
	}
	for _, m := range imports {
		if !strings.HasPrefix(m[1], AssetPrefix+Version()+"/") {
			t.Errorf("sw.js imports %s, not of this release", m[1])
		}
		rec := httptest.NewRecorder()
		Handler().ServeHTTP(rec, httptest.NewRequest("GET", m[1], nil))
		if rec.Code != 200 {
			t.Errorf("GET %s (imported by sw.js): %d", m[1], rec.Code)
		}
	}
}
