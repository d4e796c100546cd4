// Package web serves the browser client: plain JavaScript modules, HTML and CSS embedded in
// the binary, with no build step.
//
// Routes (the handler expects the full request path; mount it at "/"):
//
//	GET /                          index.html, Cache-Control: no-cache, with an ETag
//	GET /assets/<version>/<file>   a file below static/ (not index.html), cached for a year
//	                               as immutable; <version> is a hash of every embedded file
//	GET /sw.js                     the service worker (Web Push), Cache-Control: no-cache: a
//	                               worker's URL must stay the same, and its scope is the
//	                               directory it is served from, so it lives at the root; a
//	                               module worker, it imports modules of its release by their
//	                               versioned path, filled in at start-up as in index.html
//	anything else                  404 (index.html is served for "/" only)
//
// The version is part of the path rather than a query so that relative module imports
// (import "./api.js") inherit it: a release changes every asset URL at once, and a page never
// mixes modules of two releases. An asset asked for under another version is a 404 rather than
// today's file, so a cache never keeps the wrong content under an immutable URL.
//
// Every response is brotli or gzip when the client accepts it (Vary: Accept-Encoding, an ETag
// per encoding). The files below static/ are compressed ahead of time: `go generate
// ./internal/web` writes name.br and name.gz next to each of them (scripts/precompress), and
// TestPrecompressedFilesAreFresh fails when one is missing or stale. index.html and sw.js are
// templates, filled in at start-up and compressed once, when first asked for; index.html preloads every module (modulepreload), so a
// first visit fetches the whole client in one round of requests.
//
// HEAD works wherever GET does; other methods get 405. The page needs no inline script or
// style, so it runs under the server's strict Content-Security-Policy.
package web

//go:generate go run ../../scripts/precompress -skip index.html,sw.js static

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/wschat/chat/internal/precompress"
)

// AssetPrefix is the URL path below which the versioned assets live.
const AssetPrefix = "/assets/"

const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

//go:embed static
var static embed.FS

type file struct {
	*precompress.File
	contentType string
	cache       string
}

type handler struct {
	version string
	page    *file
	worker  *file            // sw.js at /sw.js
	assets  map[string]*file // by path below AssetPrefix + version + "/"
}

var load = sync.OnceValue(func() *handler {
	h, err := build(static)
	if err != nil {
		// The files are embedded at compile time, so this is a build bug.
		panic("web: " + err.Error())
	}
	return h
})

// Handler returns the handler of the web client.
func Handler() http.Handler { return load() }

// Version is the asset version of this build (a hash of every embedded file).
func Version() string { return load().version }

func build(fsys fs.FS) (*handler, error) {
	root, err := fs.Sub(fsys, "static")
	if err != nil {
		return nil, err
	}
	h := &handler{assets: map[string]*file{}}
	var names []string
	err = fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || precompress.IsVariant(p) {
			return err
		}
		names = append(names, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(names)

	all := sha256.New()
	var page, worker []byte
	var modules []string
	for _, name := range names {
		b, err := fs.ReadFile(root, name)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(all, "%s\x00%d\x00", name, len(b))
		all.Write(b)
		if name == "index.html" {
			page = b
			continue
		}
		if name == "sw.js" {
			worker = b
			continue
		}
		ctype := mime.TypeByExtension(path.Ext(name))
		if t, ok := contentTypes[path.Ext(name)]; ok {
			ctype = t
		}
		if ctype == "" {
			return nil, fmt.Errorf("no content type for %s", name)
		}
		f, err := precompress.Load(root, name)
		if err != nil {
			return nil, err
		}
		h.assets[name] = &file{File: f, contentType: ctype, cache: cacheImmutable}
		if strings.HasPrefix(name, "js/") && path.Ext(name) == ".js" && name != "js/main.js" {
			modules = append(modules, name)
		}
	}
	if page == nil {
		return nil, fmt.Errorf("static/index.html is missing")
	}
	h.version = hex.EncodeToString(all.Sum(nil))[:16]
	if worker != nil {
		// Its imports name this release's assets ([[.Assets]], as in index.html).
		src := bytes.ReplaceAll(worker, []byte("[[.Assets]]"), []byte(AssetPrefix+h.version))
		h.worker = &file{File: precompress.New(src), contentType: contentTypes[".js"], cache: cacheRevalidate}
	}

	tmpl, err := template.New("index.html").Delims("[[", "]]").Parse(string(page))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, map[string]any{"Assets": AssetPrefix + h.version, "Modules": modules}); err != nil {
		return nil, err
	}
	h.page = &file{File: precompress.New(buf.Bytes()), contentType: "text/html; charset=utf-8", cache: cacheRevalidate}
	return h, nil
}

// contentTypes pins the types that matter, independent of the host's mime tables.
var contentTypes = map[string]string{
	".js":          "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".json":        "application/json",
	".txt":         "text/plain; charset=utf-8",
	".webmanifest": "application/manifest+json",
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	f := h.lookup(r.URL.Path)
	if f == nil {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, fmt.Sprintf("method %s not allowed", r.Method), http.StatusMethodNotAllowed)
		return
	}
	f.Serve(w, r, f.contentType, f.cache)
}

func (h *handler) lookup(p string) *file {
	if p == "/" {
		return h.page
	}
	if p == "/sw.js" {
		return h.worker
	}
	rest, ok := strings.CutPrefix(p, AssetPrefix+h.version+"/")
	if !ok {
		return nil
	}
	return h.assets[rest]
}
