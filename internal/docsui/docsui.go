// Package docsui serves interactive API documentation (Swagger UI) at /docs
// without any CDN: the Swagger UI files are vendored from the npm package
// swagger-ui-dist (see README.md for the version and how to refresh them)
// and embedded in the binary.
//
// Mount the handler on both the page and the asset prefix, and turn off
// huma's own docs route (it loads its renderer from a CDN):
//
//	cfg := huma.DefaultConfig("wschat", "1.0.0")
//	cfg.DocsPath = "" // /docs is served by docsui
//	...
//	h := docsui.Handler()
//	mux.Handle("/docs", h)
//	mux.Handle("/docs/", h)
//
// The page loads the spec from /openapi.json. For the Authorize button the
// spec needs an OAuth2 security scheme with a password flow whose tokenUrl is
// /api/v1/auth/login, and the protected operations must reference it in
// their security requirements.
//
// Routes:
//
//	GET /docs          the HTML page (no inline script or style), titled after the product,
//	                   linking the protocol page and the OpenAPI document
//	GET /docs/         redirects to /docs
//	GET /docs/protocol     docs/PROTOCOL.md as a plain HTML page (the Markdown text, escaped,
//	                       in a <pre>: readable as it is, with no renderer and nothing remote)
//	GET /docs/protocol.md  the same as text/markdown
//	GET /docs/init.js  starts Swagger UI
//	GET /docs/docs.css page styles
//	GET /docs/swagger-ui-bundle.js, /docs/swagger-ui.css,
//	    /docs/favicon-16x16.png, /docs/favicon-32x32.png,
//	    /docs/swagger-ui-bundle.js.LICENSE.txt, /docs/LICENSE, /docs/NOTICE
//	anything else      404
//
// Every file and page is served brotli or gzip when the client accepts it (see
// internal/precompress): the vendored assets and our own files are compressed ahead of time by
// `go generate ./internal/docsui` (TestPrecompressedFilesAreFresh fails when that was
// forgotten), the pages made from templates once, when first asked for. swagger-ui-bundle.js goes from
// 1.7 MB to about 0.4 MB with brotli.
//
// HEAD works wherever GET does; other methods get 405.
package docsui

//go:generate go run ../../scripts/precompress assets
//go:generate go run ../../scripts/precompress -skip index.html,protocol.html page

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/wschat/chat/docs"
	"github.com/wschat/chat/internal/precompress"
)

// Title names the product on the docs pages (the OpenAPI document's title is "Chat API").
const Title = "Chat"

// Prefix is the URL path of the docs page; assets live under Prefix + "/".
const Prefix = "/docs"

// SpecURL is the OpenAPI document the page loads (set in page/init.js).
const SpecURL = "/openapi.json"

// SwaggerUIVersion is the swagger-ui-dist version vendored in assets/.
// Keep it in step with README.md when refreshing the assets (a test checks
// it against the bundle).
const SwaggerUIVersion = "5.35.0"

// CSP is the Content-Security-Policy the /docs routes need, and Handler sets
// it on every response it writes (replacing a value set earlier by a
// middleware). Use it for the /docs routes only.
//
// swagger-ui-bundle.js does not need 'unsafe-eval': its only dynamic code
// (Function("return this") global lookups, a function-bind polyfill) sits on
// fallback paths that modern browsers never take. It does not need
// 'unsafe-inline' for styles either: it styles elements through the DOM
// (element.style), which CSP does not restrict. Checked in headless
// Chromium under exactly this policy: no violation reports while loading
// the spec, expanding operations and using Authorize.
//
// What it does need beyond default-src 'self': img-src data:, because
// swagger-ui.css draws its icons with data: URL images. connect-src 'self'
// covers /openapi.json, the token URL and "Try it out" against this server;
// an OpenAPI servers entry on another origin would need to be added there.
const CSP = "default-src 'self'; " +
	"script-src 'self'; " +
	"style-src 'self'; " +
	"img-src 'self' data:; " +
	"font-src 'self'; " +
	"connect-src 'self'; " +
	"object-src 'none'; " +
	"base-uri 'self'; " +
	"form-action 'self'; " +
	"frame-ancestors 'none'"

// Cache-Control values.
const (
	// cacheLong is for the vendored Swagger UI files: they change only when
	// assets/ is refreshed, and the page links them with ?v=<content hash>
	// so a refresh reaches browsers anyway.
	cacheLong = "public, max-age=31536000, immutable"
	// cacheRevalidate is for the page and our own small files.
	cacheRevalidate = "no-cache"
)

//go:embed assets page
var files embed.FS

type file struct {
	*precompress.File
	contentType  string
	cacheControl string
}

type handler struct {
	page  *file
	files map[string]*file // by name below Prefix + "/"
}

var load = sync.OnceValue(func() *handler {
	h, err := build()
	if err != nil {
		// The files are embedded at compile time, so this is a build bug.
		panic("docsui: " + err.Error())
	}
	return h
})

// Handler returns the handler for /docs and /docs/<asset>. It expects the
// full request path (do not strip the prefix).
func Handler() http.Handler { return load() }

// served lists what is served below Prefix + "/", mapped to the embedded
// file and its cache policy.
var served = []struct {
	name, src string
	long      bool
}{
	{"swagger-ui-bundle.js", "assets/swagger-ui-bundle.js", true},
	{"swagger-ui.css", "assets/swagger-ui.css", true},
	{"favicon-16x16.png", "assets/favicon-16x16.png", true},
	{"favicon-32x32.png", "assets/favicon-32x32.png", true},
	{"swagger-ui-bundle.js.LICENSE.txt", "assets/swagger-ui-bundle.js.LICENSE.txt", false},
	{"LICENSE", "assets/LICENSE", false},
	{"NOTICE", "assets/NOTICE", false},
	{"init.js", "page/init.js", false},
	{"docs.css", "page/docs.css", false},
}

func build() (*handler, error) {
	h := &handler{files: make(map[string]*file, len(served))}
	for _, s := range served {
		f, err := precompress.Load(files, s.src)
		if err != nil {
			return nil, err
		}
		cc := cacheRevalidate
		if s.long {
			cc = cacheLong
		}
		h.files[s.name] = &file{File: f, contentType: contentType(s.name), cacheControl: cc}
	}
	data := map[string]any{
		"Title":  Title,
		"Prefix": Prefix,
		"Spec":   SpecURL,
		"V": map[string]string{
			"bundle":  h.files["swagger-ui-bundle.js"].Hash(),
			"css":     h.files["swagger-ui.css"].Hash(),
			"fav16":   h.files["favicon-16x16.png"].Hash(),
			"fav32":   h.files["favicon-32x32.png"].Hash(),
			"init":    h.files["init.js"].Hash(),
			"docscss": h.files["docs.css"].Hash(),
		},
		"Protocol": string(docs.Protocol),
	}
	page, err := render("page/index.html", data)
	if err != nil {
		return nil, err
	}
	h.page = &file{File: precompress.New(page), contentType: "text/html; charset=utf-8", cacheControl: cacheRevalidate}
	protocol, err := render("page/protocol.html", data)
	if err != nil {
		return nil, err
	}
	h.files["protocol"] = &file{File: precompress.New(protocol), contentType: "text/html; charset=utf-8", cacheControl: cacheRevalidate}
	h.files["protocol.md"] = &file{File: precompress.New(docs.Protocol), contentType: "text/markdown; charset=utf-8", cacheControl: cacheRevalidate}
	return h, nil
}

func render(name string, data any) ([]byte, error) {
	tmpl, err := template.ParseFS(files, name)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".png":
		return "image/png"
	case ".html":
		return "text/html; charset=utf-8"
	default: // LICENSE, NOTICE, *.txt
		return "text/plain; charset=utf-8"
	}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", CSP)
	hdr.Set("X-Content-Type-Options", "nosniff")

	p := r.URL.Path
	var f *file
	switch {
	case p == Prefix:
		f = h.page
	case p == Prefix+"/":
		if !allowMethod(w, r) {
			return
		}
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	case strings.HasPrefix(p, Prefix+"/"):
		f = h.files[p[len(Prefix)+1:]]
	}
	if f == nil {
		http.NotFound(w, r)
		return
	}
	if !allowMethod(w, r) {
		return
	}

	f.Serve(w, r, f.contentType, f.cacheControl)
}

func allowMethod(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, fmt.Sprintf("method %s not allowed", r.Method), http.StatusMethodNotAllowed)
	return false
}
