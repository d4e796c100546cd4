package httpapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/wschat/chat/internal/chat"
)

// fileCSP is the Content-Security-Policy of every download: a sandbox (no script, no forms,
// an opaque origin) that loads nothing but the file itself, so an uploaded HTML or SVG opened
// by URL can never run script in our origin.
const fileCSP = "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'"

// uploadOverhead is what a multipart body may hold besides the file: headers and boundaries.
const uploadOverhead = 64 << 10

// bodyLimit is the most a request body may hold: MaxBodyBytes, except an upload's, which may
// hold a whole file (FileService.Upload enforces the file's own limit exactly).
func (s *Server) bodyLimit(r *http.Request) int64 {
	if s.opts.Files != nil && r.Method == http.MethodPost && isUploadPath(r.URL.Path) {
		return s.opts.Files.Limits().MaxFileBytes + uploadOverhead
	}
	return MaxBodyBytes
}

// isUploadPath matches /api/v1/chats/{id}/files.
func isUploadPath(p string) bool {
	id, ok := strings.CutPrefix(p, "/api/v1/chats/")
	if !ok {
		return false
	}
	id, ok = strings.CutSuffix(id, "/files")
	return ok && id != "" && !strings.Contains(id, "/")
}

type uploadIn struct {
	ID   int64 `path:"id" minimum:"1"`
	req  *http.Request
	resp http.ResponseWriter
}

// Resolve keeps the request: the multipart body is streamed by the handler, not read by huma.
func (u *uploadIn) Resolve(ctx huma.Context) []error {
	u.req, u.resp = humago.Unwrap(ctx)
	return nil
}

type fileOut struct {
	Status int
	Body   struct {
		File chat.File `json:"file"`
	}
}

type fileIn struct {
	ID int64 `path:"id" minimum:"1"`
}

// FileLimits are the file limits clients show before an upload.
type FileLimits struct {
	MaxFileBytes       int64 `json:"max_file_bytes" doc:"bytes of one file"`
	UserDailyBytes     int64 `json:"user_daily_bytes" doc:"bytes one user may upload in any 24 hours"`
	ChatBytes          int64 `json:"chat_bytes" doc:"bytes the files of one chat may take together"`
	MaxPixels          int64 `json:"max_pixels" doc:"an image's width × height"`
	MaxFilesPerMessage int   `json:"max_files_per_message"`
	AttachWithinSecs   int   `json:"attach_within_seconds" doc:"an upload not attached to a message within this time is deleted"`
	MinUploadRate      int64 `json:"min_upload_bytes_per_second" doc:"an upload slower than this on average over upload_rate_window_seconds (after that long) is cut with 408; 0: no minimum"`
	UploadRateWindow   int   `json:"upload_rate_window_seconds"`
}

type fileLimitsOut struct{ Body FileLimits }

// tooLargeBody turns the HTTP limit on the body into the domain's too_large.
type tooLargeBody struct{ r io.Reader }

func (t tooLargeBody) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	return n, tooLarge(err)
}

// tooLarge is err, or too_large when err is the body's size limit, or request_timeout when the
// body stalled (idleBody).
func tooLarge(err error) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return &chat.Error{Code: chat.CodeTooLarge, Field: "body.file", Message: fmt.Sprintf("the request body exceeds %d bytes", mb.Limit)}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &chat.Error{Code: chat.CodeRequestTimeout, Field: "body.file", Message: "the upload stalled: nothing came for too long"}
	}
	return err
}

// DefaultUploadIdle is how long an upload may send nothing before it is answered 408
// request_timeout (Options.UploadIdle). An upload may take long on a slow line, so the whole
// has no bound; one that stalls would hold its connection and goroutine for ever.
const DefaultUploadIdle = 30 * time.Second

// idleBody moves the connection's read deadline idle ahead before every read, until the body
// has ended: net/http then clears the deadline for its own read of the idle connection (which
// cancels the request's context when it fails), and a deadline set after that would end a
// handler still at work.
type idleBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	idle  time.Duration
	ended bool
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.ended {
		return 0, io.EOF
	}
	if err := b.rc.SetReadDeadline(time.Now().Add(b.idle)); err != nil {
		return 0, fmt.Errorf("upload: set the read deadline: %w", err)
	}
	n, err := b.ReadCloser.Read(p)
	b.ended = err == io.EOF
	return n, err
}

func (s *Server) fileRoutes() {
	files := s.opts.Files
	disabled := func(ctx context.Context) error {
		return s.problem(ctx, chat.Errorf(chat.CodeNotFound, "files are not enabled on this server"))
	}
	binary := func(desc string) map[string]*huma.Response {
		r := errorResponses(chat.CodeUnauthenticated, chat.CodeNotFound, chat.CodeUnavailable, codeOf(http.StatusRequestedRangeNotSatisfiable),
			codeOf(http.StatusPreconditionFailed))
		r["200"] = &huma.Response{Description: desc, Content: map[string]*huma.MediaType{
			"application/octet-stream": {Schema: &huma.Schema{Type: "string", Format: "binary"}}}}
		r["206"] = &huma.Response{Description: "Part of it (a Range request)."}
		r["304"] = &huma.Response{Description: "Not modified (If-None-Match with the ETag)."}
		r["302"] = &huma.Response{Description: "When the server redirects downloads (CHAT_FILES_REDIRECT): a short-lived URL of the object store."}
		return r
	}

	huma.Register(s.api, huma.Operation{
		OperationID: "upload-file", Method: http.MethodPost, Path: "/api/v1/chats/{id}/files", Tags: []string{"files"},
		Summary: "Upload a file into a chat",
		Description: "multipart/form-data with one part named `file` (the first such part counts). Members only. " +
			"The type is detected from the bytes; images (PNG, JPEG, GIF, WebP) get their dimensions and a thumbnail; a JPEG's " +
			"metadata (EXIF, GPS, XMP) is removed. Attach the file to a message within 24 hours or it is deleted.",
		DefaultStatus: http.StatusCreated, Security: authSecurity,
		Responses: errorResponses(chat.CodeUnauthenticated, chat.CodeNotFound, chat.CodeNotMember, chat.CodePeerDeleted, chat.CodeInvalid,
			chat.CodeTooLarge, codeOf(http.StatusUnsupportedMediaType), chat.CodeStorageFull, chat.CodeQuotaExceeded, chat.CodeUnavailable),
	}, func(ctx context.Context, in *uploadIn) (*fileOut, error) {
		if files == nil {
			return nil, disabled(ctx)
		}
		idle := cmp.Or(s.opts.UploadIdle, DefaultUploadIdle)
		in.req.Body = &idleBody{ReadCloser: in.req.Body, rc: http.NewResponseController(in.resp), idle: idle}
		mr, err := in.req.MultipartReader()
		if err != nil {
			return nil, newProblem(http.StatusUnsupportedMediaType, codeOf(http.StatusUnsupportedMediaType),
				"the body must be multipart/form-data with a part named file")
		}
		for {
			part, err := mr.NextPart()
			if err != nil {
				var e *chat.Error
				if errors.As(tooLarge(err), &e) {
					return nil, s.problem(ctx, e)
				}
				if err == io.EOF {
					return nil, s.problem(ctx, chat.Invalid("body.file", "the body has no part named file"))
				}
				return nil, s.problem(ctx, chat.Invalid("body.file", "the multipart body is malformed"))
			}
			if part.FormName() != "file" {
				continue
			}
			f, err := files.Upload(ctx, principal(ctx), in.ID, chat.UploadInput{Name: formFileName(part.FileName()), Body: tooLargeBody{part}, Addr: Info(ctx).Addr})
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			out := &fileOut{Status: http.StatusCreated}
			out.Body.File = f
			return out, nil
		}
	})
	// Described after registering: a request body declared before would make huma read it.
	s.api.OpenAPI().Paths["/api/v1/chats/{id}/files"].Post.RequestBody = &huma.RequestBody{Required: true,
		Content: map[string]*huma.MediaType{"multipart/form-data": {
			Schema: &huma.Schema{Type: "object", Required: []string{"file"}, Properties: map[string]*huma.Schema{
				"file": {Type: "string", Format: "binary", Description: "the file; its name is kept (made safe)"},
			}},
		}}}

	huma.Register(s.api, huma.Operation{
		OperationID: "file-limits", Method: http.MethodGet, Path: "/api/v1/files/limits", Tags: []string{"files"},
		Summary: "File limits", Description: "What an upload may be, for clients to check before uploading.",
		Security: authSecurity, Responses: errorResponses(chat.CodeUnauthenticated),
	}, func(ctx context.Context, _ *sessionOnly) (*fileLimitsOut, error) {
		if files == nil {
			return nil, disabled(ctx)
		}
		l := files.Limits()
		rate, window := files.UploadRate()
		return &fileLimitsOut{Body: FileLimits{MaxFileBytes: l.MaxFileBytes, UserDailyBytes: l.UserDailyBytes, ChatBytes: l.ChatBytes,
			MaxPixels: l.MaxPixels, MaxFilesPerMessage: chat.MaxFilesPerMessage, AttachWithinSecs: int(chat.FileAttachWindow.Seconds()),
			MinUploadRate: rate, UploadRateWindow: int(window.Seconds())}}, nil
	})

	download := func(thumb bool) func(context.Context, *fileIn) (*huma.StreamResponse, error) {
		return func(ctx context.Context, in *fileIn) (*huma.StreamResponse, error) {
			if files == nil {
				return nil, disabled(ctx)
			}
			d, err := files.Download(ctx, principal(ctx), in.ID, thumb)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			return &huma.StreamResponse{Body: func(hctx huma.Context) {
				r, w := humago.Unwrap(hctx)
				serveDownload(w, r, d)
			}}, nil
		}
	}
	huma.Register(s.api, huma.Operation{
		OperationID: "download-file", Method: http.MethodGet, Path: "/api/v1/files/{id}", Tags: []string{"files"},
		Summary: "Download a file",
		Description: "For the members of the file's chat once it is attached to a message, and for its uploader before; 404 for " +
			"everyone else. Range requests, a strong ETag (the SHA-256 of the bytes), `Cache-Control: private`, `nosniff` and a " +
			"sandboxing Content-Security-Policy. PNG, JPEG, GIF and WebP are shown inline; everything else is an attachment, and " +
			"types that could run script (HTML, SVG, XML...) are served as application/octet-stream.",
		Security: authSecurity, Responses: binary("The file."),
	}, download(false))
	huma.Register(s.api, huma.Operation{
		OperationID: "download-thumbnail", Method: http.MethodGet, Path: "/api/v1/files/{id}/thumbnail", Tags: []string{"files"},
		Summary: "Download an image's thumbnail",
		Description: "A JPEG (a PNG for images with transparency) that fits in 320 × 320 pixels, upright, without metadata. " +
			"Made once after the upload; a request that comes before it is ready waits up to 10 s, then answers 503 with Retry-After. " +
			"404 for files that are not images, images that could not be decoded, and for everyone who may not download the file.",
		Security: authSecurity, Responses: binary("The thumbnail."),
	}, download(true))
}

// serveDownload writes a download: a redirect to the object store, or the bytes with Range
// and conditional requests answered by http.ServeContent.
func serveDownload(w http.ResponseWriter, r *http.Request, d chat.Download) {
	h := w.Header()
	h.Set("Content-Security-Policy", fileCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if d.Redirect != "" {
		h.Set("Cache-Control", "private, no-store")
		http.Redirect(w, r, d.Redirect, http.StatusFound)
		return
	}
	defer d.Body.Close()
	h.Set("Cache-Control", "private, no-cache")
	h.Set("Content-Type", d.ContentType)
	h.Set("Content-Disposition", d.Disposition)
	h.Set("ETag", d.ETag)
	http.ServeContent(&problemErrors{ResponseWriter: w}, r, "", d.File.CreatedAt, d.Body)
}

// problemErrors turns the plain-text errors of http.ServeContent (416 for a range past the
// end, 412 for a failed If-Match, 500 for a store that fails mid-way) into problem documents.
type problemErrors struct {
	http.ResponseWriter
	failed bool
}

func (p *problemErrors) WriteHeader(status int) {
	if status < 400 {
		p.ResponseWriter.WriteHeader(status)
		return
	}
	p.failed = true
	h := p.Header()
	for _, k := range []string{"Content-Disposition", "ETag", "Cache-Control", "Last-Modified"} {
		h.Del(k)
	}
	detail := "internal error"
	switch status {
	case http.StatusRequestedRangeNotSatisfiable:
		detail = "the requested range is not satisfiable"
	case http.StatusPreconditionFailed:
		detail = "the file does not match If-Match or If-Unmodified-Since"
	}
	writeProblem(p.ResponseWriter, newProblem(status, codeOf(status), detail))
}

func (p *problemErrors) Write(b []byte) (int, error) {
	if p.failed {
		return len(b), nil
	}
	return p.ResponseWriter.Write(b)
}

// formFileName undoes the escapes browsers put in a multipart file name (the HTML standard's
// multipart/form-data encoding: a quote as %22, line feed and carriage return as %0A and %0D),
// which would otherwise show as written. A name that holds those three sequences for what they
// are (sent by another client) loses them the same way: the price of showing browsers' names
// right.
func formFileName(name string) string {
	return browserEscapes.Replace(name)
}

var browserEscapes = strings.NewReplacer("%22", `"`, "%0A", "\n", "%0D", "\r")
