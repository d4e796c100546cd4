package docsui

import (
	"bytes"
	"html"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"

	"github.com/wschat/chat/docs"
	"github.com/wschat/chat/internal/precompress"
)

func do(t *testing.T, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	return rec
}

func get(t *testing.T, target string) *httptest.ResponseRecorder {
	t.Helper()
	return do(t, http.MethodGet, target, nil)
}

var (
	attrURL     = regexp.MustCompile(`(?i)\b(?:src|href)\s*=\s*"([^"]*)"`)
	inlineStyle = regexp.MustCompile(`(?i)<style|\sstyle\s*=`)
	inlineEvent = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	scriptTag   = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script>`)
)

func noExternalURLs(t *testing.T, what, body string) {
	t.Helper()
	for _, s := range []string{"http://", "https://", "//cdn", "unpkg", "jsdelivr"} {
		if strings.Contains(strings.ToLower(body), s) {
			t.Errorf("%s contains %q", what, s)
		}
	}
}

func TestPage(t *testing.T) {
	rec := get(t, "/docs")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /docs: status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if got := rec.Header().Get("Content-Security-Policy"); got != CSP {
		t.Errorf("Content-Security-Policy = %q, want CSP", got)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control = %q", cc)
	}
	if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Error("missing X-Content-Type-Options: nosniff")
	}
	body := rec.Body.String()
	if !strings.Contains(body, `<div id="swagger-ui"></div>`) {
		t.Error("page has no #swagger-ui mount point")
	}
	noExternalURLs(t, "page", body)

	// CSP-friendly: no inline script, style or event handler.
	if inlineStyle.MatchString(body) {
		t.Error("page has inline style")
	}
	if inlineEvent.MatchString(body) {
		t.Error("page has an inline event handler")
	}
	scripts := scriptTag.FindAllStringSubmatch(body, -1)
	if len(scripts) == 0 {
		t.Fatal("page loads no script")
	}
	for _, m := range scripts {
		if !strings.Contains(m[1], "src=") || strings.TrimSpace(m[2]) != "" {
			t.Errorf("inline script: %s", m[0])
		}
	}

	// Every referenced URL is local and, under /docs/, actually served.
	urls := attrURL.FindAllStringSubmatch(body, -1)
	var sawBundle, sawInit, sawCSS bool
	for _, m := range urls {
		u := m[1]
		if !strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//") {
			t.Errorf("non-local URL %q", u)
			continue
		}
		if u == SpecURL || u == "/" {
			continue // links to the spec and to the app
		}
		if !strings.HasPrefix(u, Prefix+"/") {
			t.Errorf("URL %q outside %s/", u, Prefix)
			continue
		}
		if r := get(t, u); r.Code != http.StatusOK {
			t.Errorf("referenced %s: status %d", u, r.Code)
		}
		sawBundle = sawBundle || strings.HasPrefix(u, "/docs/swagger-ui-bundle.js?v=")
		sawInit = sawInit || strings.HasPrefix(u, "/docs/init.js?v=")
		sawCSS = sawCSS || strings.HasPrefix(u, "/docs/swagger-ui.css?v=")
	}
	if !sawBundle || !sawInit || !sawCSS {
		t.Errorf("page misses bundle/init/css (bundle %v, init %v, css %v)", sawBundle, sawInit, sawCSS)
	}
	for _, want := range []string{"<title>Chat API docs</title>", `<a href="/docs/protocol">WebSocket protocol</a>`, `<a href="/openapi.json">`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(strings.ToLower(body), "wschat") {
		t.Error("page still says wschat, not the product's name")
	}
}

func TestProtocol(t *testing.T) {
	rec := get(t, "/docs/protocol")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /docs/protocol: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	body := rec.Body.String()
	noExternalURLs(t, "protocol page (markup)", strings.ReplaceAll(body, html.EscapeString(string(docs.Protocol)), ""))
	if !strings.Contains(body, "<title>Chat WebSocket protocol</title>") || !strings.Contains(body, `href="/docs"`) {
		t.Error("protocol page lacks its title or the link back to /docs")
	}
	// The whole of docs/PROTOCOL.md, as text: escaped, never interpreted as markup.
	if !strings.Contains(body, html.EscapeString(string(docs.Protocol))) {
		t.Error("protocol page does not carry docs/PROTOCOL.md, escaped")
	}
	if inlineStyle.MatchString(body) || inlineEvent.MatchString(body) || scriptTag.MatchString(body) {
		t.Error("protocol page has a script, an inline style or a handler")
	}
	md := get(t, "/docs/protocol.md")
	if md.Code != http.StatusOK || md.Header().Get("Content-Type") != "text/markdown; charset=utf-8" || !bytes.Equal(md.Body.Bytes(), docs.Protocol) {
		t.Errorf("GET /docs/protocol.md: %d %q, %d bytes (want %d)", md.Code, md.Header().Get("Content-Type"), md.Body.Len(), len(docs.Protocol))
	}
}

// TestPrecompressedFilesAreFresh fails when a vendored or own file changed without `go generate`.
func TestPrecompressedFilesAreFresh(t *testing.T) {
	for _, dir := range []string{"assets", "page"} {
		sub, err := fs.Sub(files, dir)
		if err != nil {
			t.Fatal(err)
		}
		problems, err := precompress.Stale(sub, func(name string) bool { return dir == "page" && strings.HasSuffix(name, ".html") })
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s/%s: run go generate ./internal/docsui", dir, p)
		}
	}
}

// TestCompressed: what a browser loads for /docs comes brotli-compressed, with a length and Vary.
func TestCompressed(t *testing.T) {
	for _, p := range []string{"/docs", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/init.js", "/docs/docs.css", "/docs/protocol"} {
		plain := get(t, p)
		rec := do(t, http.MethodGet, p, map[string]string{"Accept-Encoding": "gzip, deflate, br, zstd"})
		if rec.Header().Get("Content-Encoding") != "br" || rec.Header().Get("Vary") != "Accept-Encoding" {
			t.Errorf("GET %s: Content-Encoding %q, Vary %q", p, rec.Header().Get("Content-Encoding"), rec.Header().Get("Vary"))
			continue
		}
		if got, want := rec.Header().Get("Content-Length"), strconv.Itoa(rec.Body.Len()); got != want {
			t.Errorf("GET %s: Content-Length %q for %s bytes", p, got, want)
		}
		got, err := io.ReadAll(brotli.NewReader(rec.Body))
		if err != nil || !bytes.Equal(got, plain.Body.Bytes()) {
			t.Errorf("GET %s: brotli body does not decode to the file (%v)", p, err)
		}
		if p == "/docs/swagger-ui-bundle.js" && rec.Body.Len() > 500_000 {
			t.Errorf("the bundle is %d bytes with brotli, want well under its 1.7 MB", rec.Body.Len())
		}
	}
}

func TestInitJS(t *testing.T) {
	rec := get(t, "/docs/init.js")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	body := rec.Body.String()
	noExternalURLs(t, "init.js", body)
	for _, want := range []string{
		"SwaggerUIBundle(",
		`url: "` + SpecURL + `"`,
		"persistAuthorization: true",
		"validatorUrl: null",
		"initOAuth(",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("init.js lacks %q", want)
		}
	}
}

func TestAssets(t *testing.T) {
	const long = "public, max-age=31536000, immutable"
	tests := []struct {
		path, ctype, cache string
		minSize            int
	}{
		{"/docs/swagger-ui-bundle.js", "text/javascript; charset=utf-8", long, 500_000},
		{"/docs/swagger-ui.css", "text/css; charset=utf-8", long, 50_000},
		{"/docs/favicon-16x16.png", "image/png", long, 100},
		{"/docs/favicon-32x32.png", "image/png", long, 100},
		{"/docs/init.js", "text/javascript; charset=utf-8", "no-cache", 100},
		{"/docs/docs.css", "text/css; charset=utf-8", "no-cache", 10},
		{"/docs/swagger-ui-bundle.js.LICENSE.txt", "text/plain; charset=utf-8", "no-cache", 100},
		{"/docs/LICENSE", "text/plain; charset=utf-8", "no-cache", 1000},
		{"/docs/NOTICE", "text/plain; charset=utf-8", "no-cache", 10},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := get(t, tt.path)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); ct != tt.ctype {
				t.Errorf("Content-Type = %q, want %q", ct, tt.ctype)
			}
			if cc := rec.Header().Get("Cache-Control"); cc != tt.cache {
				t.Errorf("Cache-Control = %q, want %q", cc, tt.cache)
			}
			if n := rec.Body.Len(); n < tt.minSize {
				t.Errorf("body is %d bytes, want >= %d", n, tt.minSize)
			}
			if strings.HasSuffix(tt.path, ".png") && !strings.HasPrefix(rec.Body.String(), "\x89PNG") {
				t.Error("not a PNG")
			}

			// Revalidation with the ETag gives 304.
			etag := rec.Header().Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			if r := do(t, http.MethodGet, tt.path, map[string]string{"If-None-Match": etag}); r.Code != http.StatusNotModified {
				t.Errorf("If-None-Match: status %d, want 304", r.Code)
			}
			// HEAD: same headers, no body.
			if r := do(t, http.MethodHead, tt.path, nil); r.Code != http.StatusOK || r.Body.Len() != 0 ||
				r.Header().Get("Content-Type") != tt.ctype {
				t.Errorf("HEAD: status %d, %d body bytes, type %q", r.Code, r.Body.Len(), r.Header().Get("Content-Type"))
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	for _, p := range []string{
		"/",
		"/docsx",
		"/docs/nope.js",
		"/docs/index.html",
		"/docs/swagger-ui-bundle.js.map",
		"/docs/swagger-ui.css.map",
		"/docs/oauth2-redirect.html",
		"/docs/assets/swagger-ui-bundle.js",
		"/docs/page/init.js",
		"/docs/init.js/",
		"/docs/../docsui.go",
		"/docs//init.js",
	} {
		if rec := get(t, p); rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, rec.Code)
		}
	}
}

func TestTrailingSlashRedirects(t *testing.T) {
	rec := get(t, "/docs/")
	if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/docs" {
		t.Errorf("GET /docs/: status %d, Location %q", rec.Code, rec.Header().Get("Location"))
	}
}

func TestMethodNotAllowed(t *testing.T) {
	for _, p := range []string{"/docs", "/docs/init.js"} {
		rec := do(t, http.MethodPost, p, nil)
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("POST %s: status %d, Allow %q", p, rec.Code, rec.Header().Get("Allow"))
		}
	}
}

func TestCSP(t *testing.T) {
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'"} {
		if !strings.Contains(CSP, want) {
			t.Errorf("CSP lacks %q", want)
		}
	}
	for _, bad := range []string{"unsafe-eval", "unsafe-inline", "http:", "https:", "*"} {
		if strings.Contains(CSP, bad) {
			t.Errorf("CSP contains %q", bad)
		}
	}
}

// The recorded version must match what is vendored.
func TestVendoredVersion(t *testing.T) {
	f, err := files.Open("assets/swagger-ui-bundle.js")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `PACKAGE_VERSION:"`+SwaggerUIVersion+`"`) {
		t.Errorf("swagger-ui-bundle.js is not version %s", SwaggerUIVersion)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "swagger-ui-dist@"+SwaggerUIVersion) {
		t.Errorf("README.md does not record swagger-ui-dist@%s", SwaggerUIVersion)
	}
}
