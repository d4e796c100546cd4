// Package precompress serves embedded files compressed with brotli or gzip, chosen by the
// request's Accept-Encoding, without compressing anything per request.
//
// Static files are compressed ahead of time: `go generate` (scripts/precompress, which calls
// Write) puts name.br and name.gz next to each compressible source file, they are committed and
// embedded with it, and Load picks them up. A test of each embedding package calls Stale, which
// fails when a variant is missing or does not decompress to its source, so nobody can forget to
// regenerate. Pages made at start-up from a template are small and compressed once by New, on
// first use.
package precompress

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/andybalholm/brotli"
)

// MinSize is the smallest file that gets compressed variants: below it the saving is a few
// bytes, not worth a second and third copy.
const MinSize = 512

// Extensions of the variants.
const (
	extBrotli = ".br"
	extGzip   = ".gz"
)

// compressible lists the extensions of text formats; an empty extension is a LICENSE or NOTICE.
var compressible = map[string]bool{
	".js": true, ".css": true, ".html": true, ".svg": true, ".json": true, ".txt": true, ".md": true, "": true,
}

// Compressible reports whether a file of this name and size gets .br and .gz variants.
func Compressible(name string, size int) bool {
	return size >= MinSize && compressible[path.Ext(name)]
}

// IsVariant reports whether name is a compressed variant (.br or .gz).
func IsVariant(name string) bool {
	return strings.HasSuffix(name, extBrotli) || strings.HasSuffix(name, extGzip)
}

// File is one file with its compressed variants (nil when it has none).
type File struct {
	body, br, gz []byte
	hash         string // of body: the ETag, with a suffix per encoding
	// key, for a File of New, is the body's SHA-256: it has both variants, each made (or taken
	// from made) when it is first served, under its once.
	key            *[sha256.Size]byte
	brOnce, gzOnce sync.Once
}

// New makes a File of body (a small page or document built at start-up), with a brotli and a
// gzip variant each compressed on first use: by the first request that takes it, not when the
// server starts.
func New(body []byte) *File {
	key := sha256.Sum256(body)
	f := &File{body: body, hash: hashOf(key)}
	if Compressible(".html", len(body)) {
		f.key = &key
	}
	return f
}

// made holds what New's Files compressed, by encoding and the body's SHA-256, for the life of
// the process: the bodies are a few pages and API documents, the same for every server a
// process makes (a test binary makes hundreds, and brotli at its best quality was a tenth of
// their CPU). That is also why a File compresses a variant on first use: most test servers
// serve none of these pages, Go's HTTP client asks for gzip only, and brotli at its best
// quality under the race detector cost a test binary a second or more of CPU for each page.
var made sync.Map

type madeKey struct {
	enc string
	sum [sha256.Size]byte
}

// variant returns the File's variant in enc ("br" or "gzip"), making it if it is the first use.
func (f *File) variant(enc string) []byte {
	v, once, compress := &f.gz, &f.gzOnce, compressGzip
	if enc == "br" {
		v, once, compress = &f.br, &f.brOnce, compressBrotli
	}
	if f.key != nil {
		once.Do(func() {
			k := madeKey{enc, *f.key}
			if b, ok := made.Load(k); ok {
				*v = b.([]byte)
				return
			}
			b, err := compress(f.body)
			if err != nil {
				panic("precompress: " + err.Error()) // writers to memory do not fail
			}
			*v = b
			made.Store(k, b)
		})
	}
	return *v
}

// Load reads name and its variants (name.br, name.gz, when present) from fsys.
func Load(fsys fs.FS, name string) (*File, error) {
	body, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	f := &File{body: body, hash: hash(body)}
	if f.br, err = readOptional(fsys, name+extBrotli); err != nil {
		return nil, err
	}
	if f.gz, err = readOptional(fsys, name+extGzip); err != nil {
		return nil, err
	}
	return f, nil
}

func readOptional(fsys fs.FS, name string) ([]byte, error) {
	b, err := fs.ReadFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// Hash is a short hash of the file's content (also its identity ETag, unquoted).
func (f *File) Hash() string { return f.hash }

// Body is the file's uncompressed content.
func (f *File) Body() []byte { return f.body }

// Serve answers r with the file in the best encoding the client accepts: brotli, then gzip,
// then as it is. It sets Content-Type, Cache-Control, Content-Encoding, Vary and an ETag per
// encoding and Content-Length; http.ServeContent answers HEAD, If-None-Match and (for the
// uncompressed body only) Range.
func (f *File) Serve(w http.ResponseWriter, r *http.Request, contentType, cacheControl string) {
	hdr := w.Header()
	body, etag := f.body, f.hash
	haveBr, haveGz := f.key != nil || f.br != nil, f.key != nil || f.gz != nil
	if haveBr || haveGz {
		hdr.Add("Vary", "Accept-Encoding")
		switch enc := Negotiate(r.Header.Get("Accept-Encoding"), haveBr, haveGz); enc {
		case "br":
			body, etag = f.variant(enc), f.hash+"-br"
			hdr.Set("Content-Encoding", enc)
		case "gzip":
			body, etag = f.variant(enc), f.hash+"-gz"
			hdr.Set("Content-Encoding", enc)
		}
	}
	hdr.Set("Content-Type", contentType)
	hdr.Set("Cache-Control", cacheControl)
	hdr.Set("ETag", `"`+etag+`"`)
	if hdr.Get("Content-Encoding") != "" {
		// ServeContent leaves Content-Length out for an encoded body, and a range of compressed
		// bytes is of no use to anyone: send the whole body, with its length.
		if r.Header.Get("Range") != "" {
			r = r.Clone(r.Context())
			r.Header.Del("Range")
		}
		hdr.Set("Content-Length", strconv.Itoa(len(body)))
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// Negotiate picks "br", "gzip" or "" (identity) for an Accept-Encoding header, given which
// variants exist. Brotli wins whenever both are acceptable (it is smaller); q=0 refuses a coding,
// and "*" stands for any coding not named.
func Negotiate(accept string, haveBr, haveGz bool) string {
	q := map[string]float64{}
	for _, part := range strings.Split(accept, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		weight := 1.0
		if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(k) == "q" {
			if w, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				weight = w
			}
		}
		q[name] = weight
	}
	accepts := func(coding string) bool {
		if w, ok := q[coding]; ok {
			return w > 0
		}
		w, ok := q["*"]
		return ok && w > 0
	}
	switch {
	case haveBr && accepts("br"):
		return "br"
	case haveGz && accepts("gzip"):
		return "gzip"
	}
	return ""
}

func hash(b []byte) string { return hashOf(sha256.Sum256(b)) }

// hashOf is hash of the body whose SHA-256 is sum.
func hashOf(sum [sha256.Size]byte) string { return hex.EncodeToString(sum[:8]) }

// Compress returns b compressed with brotli (best) and gzip (best). brotli's window is as
// small as b allows: at its default (4 MiB) its best quality takes 32 MiB of working memory,
// which a server compressing a small page at start-up would carry as resident memory.
func Compress(b []byte) (br, gz []byte, err error) {
	if br, err = compressBrotli(b); err != nil {
		return nil, nil, err
	}
	if gz, err = compressGzip(b); err != nil {
		return nil, nil, err
	}
	return br, gz, nil
}

func compressBrotli(b []byte) ([]byte, error) {
	var bb bytes.Buffer
	lgwin := 16
	for lgwin < 24 && 1<<lgwin < len(b) {
		lgwin++
	}
	bw := brotli.NewWriterOptions(&bb, brotli.WriterOptions{Quality: brotli.BestCompression, LGWin: lgwin})
	if _, err := bw.Write(b); err != nil {
		return nil, err
	}
	if err := bw.Close(); err != nil {
		return nil, err
	}
	return bb.Bytes(), nil
}

func compressGzip(b []byte) ([]byte, error) {
	var gb bytes.Buffer
	gw, err := gzip.NewWriterLevel(&gb, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := gw.Write(b); err != nil {
		return nil, err
	}
	if err := gw.Close(); err != nil {
		return nil, err
	}
	return gb.Bytes(), nil
}

// Skip names files (slash-separated, relative to the walked directory) that get no variants,
// such as templates that are served only after being filled in.
type Skip func(name string) bool

// sources lists the compressible files of fsys, minus skipped ones and variants.
func sources(fsys fs.FS, skip Skip) ([]string, error) {
	var out []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || IsVariant(p) || (skip != nil && skip(p)) {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if Compressible(p, int(info.Size())) {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// Write brings the variants below dir up to date: for each compressible file it writes name.br
// and name.gz unless they already decompress to the file, and it removes variants whose source
// is gone or no longer compressible. It returns the paths it wrote or removed.
func Write(dir string, skip Skip) ([]string, error) {
	fsys := os.DirFS(dir)
	names, err := sources(fsys, skip)
	if err != nil {
		return nil, err
	}
	var changed []string
	want := map[string]bool{}
	for _, name := range names {
		want[name+extBrotli], want[name+extGzip] = true, true
		if len(check(fsys, name)) == 0 {
			continue
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return changed, err
		}
		br, gz, err := Compress(body)
		if err != nil {
			return changed, fmt.Errorf("compress %s: %w", name, err)
		}
		for ext, b := range map[string][]byte{extBrotli: br, extGzip: gz} {
			p := filepath.Join(dir, filepath.FromSlash(name+ext))
			if err := os.WriteFile(p, b, 0o644); err != nil {
				return changed, err
			}
			changed = append(changed, p)
		}
	}
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !IsVariant(p) || want[p] {
			return err
		}
		full := filepath.Join(dir, filepath.FromSlash(p))
		changed = append(changed, full)
		return os.Remove(full)
	})
	sort.Strings(changed)
	return changed, err
}

// Stale lists what is wrong with the variants in fsys: a compressible file whose .br or .gz is
// missing or does not decompress to it, and a variant without a source that needs it. Empty
// means `go generate` has nothing to do.
func Stale(fsys fs.FS, skip Skip) ([]string, error) {
	names, err := sources(fsys, skip)
	if err != nil {
		return nil, err
	}
	var out []string
	want := map[string]bool{}
	for _, name := range names {
		want[name+extBrotli], want[name+extGzip] = true, true
		out = append(out, check(fsys, name)...)
	}
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && IsVariant(p) && !want[p] {
			out = append(out, p+": no source needs it")
		}
		return err
	})
	return out, err
}

// check reports the problems of one source's variants.
func check(fsys fs.FS, name string) []string {
	body, err := fs.ReadFile(fsys, name)
	if err != nil {
		return []string{name + ": " + err.Error()}
	}
	var out []string
	for _, v := range []struct {
		ext    string
		reader func(io.Reader) (io.Reader, error)
	}{
		{extBrotli, func(r io.Reader) (io.Reader, error) { return brotli.NewReader(r), nil }},
		{extGzip, func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }},
	} {
		packed, err := fs.ReadFile(fsys, name+v.ext)
		if err != nil {
			out = append(out, name+v.ext+": missing")
			continue
		}
		r, err := v.reader(bytes.NewReader(packed))
		if err != nil {
			out = append(out, name+v.ext+": "+err.Error())
			continue
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, body) {
			out = append(out, name+v.ext+": stale (does not decompress to "+name+")")
		}
	}
	return out
}
