package chat

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wschat/chat/internal/media"
)

// FileOptions configure a FileService. Zero values take the defaults.
type FileOptions struct {
	Limits FileLimits
	// Redirect, when positive, sends downloads to presigned URLs of the Blobs store valid
	// this long, when the store can make them; else the server streams every download.
	Redirect time.Duration
	// ThumbWorkers bound the thumbnails made at once on this instance (default 2): each
	// decodes one image of up to Limits.MaxPixels (4 bytes a pixel).
	ThumbWorkers int
	// MaxUploads bounds the uploads streaming at once on this instance (default
	// DefaultMaxUploads); more wait, up to UploadQueueWait, then are answered 503 unavailable.
	MaxUploads int
	// MaxUserUploads bounds the uploads of one user streaming at once on this instance
	// (default DefaultMaxUserUploads); the user's others wait for one of theirs to end, holding no slot of
	// MaxUploads: one account trickling bytes into many uploads cannot take every slot.
	MaxUserUploads int
	// MaxAddressUploads bounds the uploads from one client address (an IPv6 client's /64)
	// streaming at once on this instance (default DefaultMaxAddressUploads), whoever's they are:
	// a few accounts on one address, each at just above MinUploadRate, would otherwise hold
	// every slot of MaxUploads for up to maxUploadTime. An address's others wait like a user's.
	// It is above MaxUserUploads, for the people of one office or household behind one NAT.
	MaxAddressUploads int
	// UploadQueueWait is how long an upload waits for a slot, one of the user's and then one of
	// MaxUploads, both within it (default DefaultUploadQueueWait); then it is answered 503
	// unavailable.
	UploadQueueWait time.Duration
	// MinUploadRate is the least an upload's body must deliver, in bytes a second over the last
	// UploadRateWindow of the time spent waiting for it, once it has been waited for that
	// long; a slower one is cut with request_timeout, so that trickling bytes cannot hold a
	// slot for maxUploadTime. 0 takes the default (1 KiB/s), a negative value means none.
	MinUploadRate int64
	// UploadRateWindow is the window of MinUploadRate and its grace (default 30 s).
	UploadRateWindow time.Duration
	// SlowUploadPenalty is how long the user's (and address's) slot of an upload cut for being
	// too slow (or for sending nothing, request_timeout either way) stays taken after the cut (0 takes
	// DefaultSlowUploadPenalty, a negative value means none; the instance's slot is given back
	// at once), so that trickling again at once wins no slot from the uploads waiting for one.
	SlowUploadPenalty time.Duration
	// JanitorEvery is how often Run deletes expired files (default 10 minutes).
	JanitorEvery time.Duration
	Observer     FileObserver
}

// FileService is the rules of files: who may upload and download, the limits, what is made of
// an image, and the janitor. It shares the chat Service's membership rules and clock.
type FileService struct {
	svc   *Service
	store FileStore
	blobs Blobs
	opts  FileOptions
	log   *slog.Logger

	uploads     chan struct{} // upload slots
	userUploads slots[int64]  // each user's upload slots
	addrUploads slots[string] // each client address's (addrKey)
	thumbs      chan int64    // files whose thumbnail is to be made on this instance
	sweep       chan struct{} // a janitor pass asked for before its time (Service.filesDetached)

	lastTempSweep atomic.Int64 // when Sweep last removed crashed writes' temporary files (Unix ms)
}

// tempSweepEvery is how often Sweep looks for temporary files that crashed writes left.
const tempSweepEvery = time.Hour

// thumbClaimTTL is how long a claim on a thumbnail holds before another instance may redo it
// (its maker crashed).
const thumbClaimTTL = 5 * time.Minute

// DefaultMinUploadRate is FileOptions.MinUploadRate's default, in bytes a second: a slow
// mobile line sends many times more, a client trickling bytes to hold a slot much less.
const DefaultMinUploadRate = 1 << 10

// The defaults of the upload slots (FileOptions), which CHAT_LIMIT_UPLOADS,
// CHAT_LIMIT_UPLOADS_USER, CHAT_LIMIT_UPLOADS_ADDRESS, CHAT_LIMIT_UPLOAD_WAIT and CHAT_LIMIT_SLOW_UPLOAD_PENALTY change.
const (
	DefaultMaxUploads        = 32
	DefaultMaxUserUploads    = 4
	DefaultMaxAddressUploads = 16
	DefaultUploadQueueWait   = 30 * time.Second
	DefaultSlowUploadPenalty = time.Minute
)

// uploadPeek is how much of an upload is read before it is stored: the sniffed type and the
// image header come from it. A JPEG's header (with its EXIF and colour profile) fits.
const uploadPeek = 256 << 10

// NewFileService builds the file rules over svc's membership rules.
func NewFileService(svc *Service, store FileStore, blobs Blobs, opts FileOptions) *FileService {
	opts.Limits.defaults()
	if opts.ThumbWorkers <= 0 {
		opts.ThumbWorkers = 2
	}
	if opts.MaxUploads <= 0 {
		opts.MaxUploads = DefaultMaxUploads
	}
	if opts.MaxUserUploads <= 0 {
		opts.MaxUserUploads = DefaultMaxUserUploads
	}
	if opts.MaxAddressUploads <= 0 {
		opts.MaxAddressUploads = DefaultMaxAddressUploads
	}
	if opts.UploadQueueWait <= 0 {
		opts.UploadQueueWait = DefaultUploadQueueWait
	}
	if opts.MinUploadRate == 0 {
		opts.MinUploadRate = DefaultMinUploadRate
	}
	if opts.UploadRateWindow <= 0 {
		opts.UploadRateWindow = 30 * time.Second
	}
	if opts.SlowUploadPenalty == 0 {
		opts.SlowUploadPenalty = DefaultSlowUploadPenalty
	}
	if opts.JanitorEvery <= 0 {
		opts.JanitorEvery = 10 * time.Minute
	}
	f := &FileService{svc: svc, store: store, blobs: blobs, opts: opts, log: svc.log,
		uploads: make(chan struct{}, opts.MaxUploads), userUploads: slots[int64]{per: opts.MaxUserUploads},
		addrUploads: slots[string]{per: opts.MaxAddressUploads}, thumbs: make(chan int64, 1024),
		sweep: make(chan struct{}, 1)}
	svc.onFilesDetached(func() {
		select {
		case f.sweep <- struct{}{}:
		default: // one is asked for already
		}
	})
	return f
}

// RedirectOrigin is the origin (scheme://host[:port]) downloads are redirected to, or "" when
// the server streams them: pages that show images of this server (the web client) must allow
// it. It is read from a presigned URL, as the store makes them.
func (f *FileService) RedirectOrigin(ctx context.Context) string {
	if f.opts.Redirect <= 0 {
		return ""
	}
	raw, err := f.blobs.PresignGet(ctx, "origin", f.opts.Redirect, "image/png", "inline")
	if err != nil {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// Limits are the limits in force, for clients to show before an upload.
func (f *FileService) Limits() FileLimits { return f.opts.Limits }

// UploadRate is the minimum transfer rate in force (bytes a second, 0 for none) and its window.
func (f *FileService) UploadRate() (int64, time.Duration) {
	return max(f.opts.MinUploadRate, 0), f.opts.UploadRateWindow
}

func (f *FileService) refused(reason string) {
	if f.opts.Observer.Refused != nil {
		f.opts.Observer.Refused(reason)
	}
}

// UploadInput is one file to upload.
type UploadInput struct {
	Name string    // as the client named it
	Body io.Reader // the bytes; read once, never held whole
	Addr string    // the client's address, for the address's upload slots ("": none taken)
}

// errTooBig marks an upload that passed its byte budget; errTooSlow one that fell below the
// minimum rate.
var (
	errTooBig  = errors.New("upload too big")
	errTooSlow = errors.New("upload too slow")
)

// bodyReader reads an upload's bytes: it fails with errTooBig once more than n bytes were read,
// or errTooSlow once they come slower than rate allows, and remembers the first failure, so
// that what went wrong is known whatever the Blobs store makes of it: the client's fault (too
// big, too slow, cut off, malformed) or ours.
type bodyReader struct {
	r    io.Reader
	n    int64
	rate *rateFloor // nil: no minimum
	now  func() time.Time
	err  error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	var start time.Time
	if b.rate != nil {
		start = b.now()
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	switch {
	case b.n < 0:
		err = errTooBig
	case err == nil && b.rate != nil:
		err = b.rate.read(b.now().Sub(start), n)
	}
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// rateFloor is a minimum transfer rate. It counts only the time spent in the body's reads,
// waiting for the client: the time the Blobs store takes to write what was read is ours.
type rateFloor struct {
	min    int64 // bytes a second
	window time.Duration
	waited time.Duration // in reads, in all
	total  int64         // bytes read
	// marks are (waited, total) at least window/16 apart, from the last one at or before
	// waited-window on: at most about 17, however the bytes come.
	marks []rateMark
}

type rateMark struct {
	waited time.Duration
	total  int64
}

func newRateFloor(min int64, window time.Duration) *rateFloor {
	return &rateFloor{min: min, window: window, marks: []rateMark{{}}}
}

// read counts n bytes that took d to come. Once the body has been waited for a whole window
// (its grace), it returns errTooSlow when the bytes of the last window (or a little more: from
// the last mark before it) are fewer than min a second.
func (r *rateFloor) read(d time.Duration, n int) error {
	r.waited += max(d, 0)
	r.total += int64(n)
	if last := r.marks[len(r.marks)-1]; r.waited-last.waited >= r.window/16 {
		r.marks = append(r.marks, rateMark{r.waited, r.total})
	}
	for len(r.marks) > 1 && r.marks[1].waited <= r.waited-r.window {
		r.marks = r.marks[1:]
	}
	from := r.marks[0]
	span := r.waited - from.waited
	if span < r.window {
		return nil
	}
	if float64(r.total-from.total) < float64(r.min)*span.Seconds() {
		return errTooSlow
	}
	return nil
}

// Upload stores a file in a chat the caller is a member of. The bytes go to the Blobs store as
// they arrive, hashed on the way; the type is sniffed from them; an image's header is read and
// its pixels counted before anything else happens; a JPEG loses its metadata on the way.
func (f *FileService) Upload(ctx context.Context, p Principal, chatID int64, in UploadInput) (File, error) {
	lim := f.opts.Limits
	c, err := f.svc.memberChat(ctx, p, chatID)
	if err != nil {
		f.refused(RefusedNotMember)
		return File{}, err
	}
	if c.ReadOnly { // nothing can be sent there, so an upload could never be attached
		return File{}, readOnly(c)
	}
	now := f.svc.now()
	dayStart := now.Add(-24 * time.Hour)
	use, err := f.store.FileUsage(ctx, p.UserID, chatID, dayStart)
	if err != nil {
		return File{}, storeErr(err, "file usage of user %d", p.UserID)
	}
	budget := lim.MaxFileBytes
	userRoom, chatRoom := lim.UserDailyBytes-use.UserBytes, lim.ChatBytes-use.ChatBytes
	budget = min(budget, userRoom, chatRoom)
	overBudget := func() error {
		switch budget {
		case lim.MaxFileBytes:
			f.refused(RefusedTooLarge)
			return &Error{Code: CodeTooLarge, Field: "body.file", Message: fmt.Sprintf("a file may have at most %d bytes", lim.MaxFileBytes)}
		case userRoom:
			return f.quotaErr(&QuotaError{Used: use.UserBytes, Oldest: use.UserOldest}, now)
		}
		return f.quotaErr(&QuotaError{Chat: true, Used: use.ChatBytes}, now)
	}
	if budget <= 0 {
		return File{}, overBudget()
	}

	// One wait bounds both queues: for one of the user's slots, then for one of the instance's.
	wait := time.NewTimer(f.opts.UploadQueueWait)
	defer wait.Stop()
	releaseUser, err := f.userUploads.take(ctx, p.UserID, wait.C)
	if errors.Is(err, errQueueWait) {
		return File{}, &Error{Code: CodeUnavailable, RetryAfter: 5,
			Message: fmt.Sprintf("you have %d uploads going on this server; try again when one has ended", f.opts.MaxUserUploads)}
	}
	if err != nil {
		return File{}, err
	}
	release := releaseUser
	if in.Addr != "" {
		releaseAddr, err := f.addrUploads.take(ctx, addrKey(in.Addr), wait.C)
		if err != nil {
			releaseUser()
			if errors.Is(err, errQueueWait) {
				return File{}, &Error{Code: CodeUnavailable, RetryAfter: 5,
					Message: fmt.Sprintf("%d uploads from your network are going on this server; try again when one has ended", f.opts.MaxAddressUploads)}
			}
			return File{}, err
		}
		release = func() { releaseAddr(); releaseUser() }
	}
	var tooSlow bool
	defer func() {
		if tooSlow && f.opts.SlowUploadPenalty > 0 {
			time.AfterFunc(f.opts.SlowUploadPenalty, release)
		} else {
			release()
		}
	}()
	select {
	case f.uploads <- struct{}{}:
		defer func() { <-f.uploads }()
	case <-wait.C:
		return File{}, &Error{Code: CodeUnavailable, Message: "too many uploads on this server right now; try again", RetryAfter: 5}
	case <-ctx.Done():
		return File{}, ctx.Err()
	}
	ctx, cancel := context.WithTimeout(ctx, maxUploadTime)
	defer cancel()

	key := newBlobKey()
	id, err := f.store.BeginUpload(ctx, NewUpload{ChatID: chatID, UploaderID: p.UserID, Key: key, Now: now})
	if errors.Is(err, ErrNotMember) || errors.Is(err, ErrNotFound) {
		f.refused(RefusedNotMember)
		return File{}, f.svc.refusal(ctx, p, chatID)
	}
	if err != nil {
		return File{}, storeErr(err, "begin upload to chat %d", chatID)
	}
	file, err := f.store1(ctx, p, chatID, id, key, in, budget, overBudget)
	if err != nil {
		// Too slow, or nothing for the HTTP layer's idle timeout: the same trickle.
		tooSlow = ErrorCode(err) == CodeRequestTimeout
		// Nothing stays behind a failed upload: the blob (if any) and the upload's row go.
		dctx := context.WithoutCancel(ctx)
		if derr := f.blobs.Delete(dctx, key); derr != nil {
			f.log.Warn("delete blob of a failed upload", "key", key, "err", derr)
		}
		if derr := f.store.DropUpload(dctx, id); derr != nil {
			f.log.Warn("forget a failed upload", "file_id", id, "err", derr)
		}
		return File{}, err
	}
	if o := f.opts.Observer.Uploaded; o != nil {
		o(file.Size)
	}
	if file.Thumb.State == ThumbPending {
		f.queueThumbnail(file.ID)
	}
	file.SetURLs()
	return file, nil
}

// store1 streams one upload to the Blobs store and records it.
func (f *FileService) store1(ctx context.Context, p Principal, chatID, id int64, key string, in UploadInput, budget int64, overBudget func() error) (File, error) {
	lim := f.opts.Limits
	body := &bodyReader{r: in.Body, n: budget, now: f.svc.limiterNow}
	if f.opts.MinUploadRate > 0 {
		body.rate = newRateFloor(f.opts.MinUploadRate, f.opts.UploadRateWindow)
	}
	br := bufio.NewReaderSize(body, uploadPeek)
	head, _ := br.Peek(uploadPeek)
	switch {
	case errors.Is(body.err, errTooBig):
		return File{}, overBudget()
	case body.err != nil:
		return File{}, f.bodyErr(body.err)
	case len(head) == 0:
		f.refused(RefusedEmpty)
		return File{}, Invalid("body.file", "the file is empty")
	}
	file := File{ID: id, ChatID: chatID, UploaderID: p.UserID, Key: key, Name: CleanFileName(in.Name),
		ContentType: media.Sniff(head[:min(len(head), media.SniffLen)]), Orientation: 1, Thumb: Thumbnail{State: ThumbNone}}
	if media.IsImage(file.ContentType) {
		w, h, err := media.Config(head, lim.MaxPixels)
		if tm := (*media.TooManyPixelsError)(nil); errors.As(err, &tm) {
			f.refused(RefusedPixels)
			return File{}, Invalid("body.file", "the image is %d × %d pixels; at most %d pixels are allowed", tm.Width, tm.Height, tm.Max)
		}
		if err != nil {
			f.refused(RefusedBadImage)
			return File{}, Invalid("body.file", "the file looks like %s but its header cannot be read", file.ContentType)
		}
		file.Width, file.Height = w, h
		file.Thumb.State = ThumbPending
	}

	var src io.Reader = br
	var stripped chan stripResult
	if strip := stripperOf(file.ContentType); strip != nil {
		pr, pw := io.Pipe()
		stripped = make(chan stripResult, 1)
		go func() {
			o, err := strip(pw, br)
			pw.CloseWithError(err)
			stripped <- stripResult{o, err}
		}()
		defer pr.Close() // ends the goroutine if the store stops reading early
		src = pr
	}
	sum := sha256.New()
	n, err := f.blobs.Put(ctx, key, io.TeeReader(src, sum), media.ServedType(file.ContentType))
	var strip stripResult
	if stripped != nil {
		if err != nil {
			src.(*io.PipeReader).CloseWithError(err)
		}
		strip = <-stripped
	}
	switch {
	case errors.Is(body.err, errTooBig):
		return File{}, overBudget()
	case body.err != nil:
		return File{}, f.bodyErr(body.err)
	case strip.err != nil:
		f.refused(RefusedBadImage)
		return File{}, Invalid("body.file", "the %s image is truncated or malformed", imageKind(file.ContentType))
	case err != nil:
		return File{}, storeErr(err, "store upload")
	}
	file.Size, file.SHA256 = n, sum.Sum(nil)
	if stripped != nil {
		file.Orientation = strip.orientation
		if media.Rotated(strip.orientation) {
			file.Width, file.Height = file.Height, file.Width
		}
	}
	now := f.svc.now()
	stored, err := f.store.FinishUpload(ctx, file, now.Add(-24*time.Hour), lim.UserDailyBytes, lim.ChatBytes)
	var q *QuotaError
	switch {
	case errors.As(err, &q):
		return File{}, f.quotaErr(q, now)
	case errors.Is(err, ErrNotMember) || errors.Is(err, ErrNotFound):
		f.refused(RefusedNotMember)
		return File{}, f.svc.refusal(ctx, p, chatID)
	case err != nil:
		return File{}, storeErr(err, "finish upload %d", id)
	}
	return stored, nil
}

// stripperOf returns what copies an image of type ct without its metadata, returning the
// orientation it read (JPEG; 1 for the others); nil for a type that has none to remove.
func stripperOf(ct string) func(io.Writer, io.Reader) (int, error) {
	switch ct {
	case media.JPEG:
		return media.StripJPEG
	case media.PNG:
		return func(w io.Writer, r io.Reader) (int, error) { return 1, media.StripPNG(w, r) }
	case media.WebP:
		return func(w io.Writer, r io.Reader) (int, error) { return 1, media.StripWebP(w, r) }
	case media.GIF:
		return func(w io.Writer, r io.Reader) (int, error) { return 1, media.StripGIF(w, r) }
	}
	return nil
}

// imageKind names an image type for people: "JPEG", "PNG".
func imageKind(ct string) string {
	if k, ok := strings.CutPrefix(ct, "image/"); ok {
		return strings.ToUpper(k)
	}
	return ct
}

type stripResult struct {
	orientation int
	err         error
}

// bodyErr is the error for an upload whose bytes could not be read: a domain error the caller's
// reader gave (the HTTP layer's size limit), bytes slower than MinUploadRate, or a body cut off
// or malformed.
func (f *FileService) bodyErr(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, errTooSlow) {
		f.refused(RefusedTooSlow)
		return &Error{Code: CodeRequestTimeout, Field: "body.file", Message: fmt.Sprintf(
			"the upload is too slow: it sent less than %d bytes a second over %s", f.opts.MinUploadRate, f.opts.UploadRateWindow)}
	}
	return Invalid("body.file", "the upload could not be read: it ended early or is malformed")
}

// quotaErr is the answer to an upload that would exceed a quota.
func (f *FileService) quotaErr(q *QuotaError, now time.Time) error {
	lim := f.opts.Limits
	if q.Chat {
		f.refused(RefusedChatQuota)
		return Errorf(CodeStorageFull, "the files of this chat may take at most %d bytes; %d are used", lim.ChatBytes, q.Used)
	}
	f.refused(RefusedUserQuota)
	wait := q.Oldest.Add(24 * time.Hour).Sub(now)
	e := rateLimited(wait).(*Error)
	e.Code = CodeQuotaExceeded
	e.Message = fmt.Sprintf("you may upload at most %d bytes in 24 hours; %d are used; retry in %d s", lim.UserDailyBytes, q.Used, e.RetryAfter)
	return e
}

// newBlobKey names a new blob: random, so names reveal nothing and never collide.
func newBlobKey() string {
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:2] + "/" + h
}

// Download is a file (or its thumbnail) to send: either Body to stream or Redirect to send the
// client to.
type Download struct {
	File        File
	ContentType string // what the response says: media.ServedType of the file's type
	Disposition string
	Inline      bool
	ETag        string // strong: the SHA-256 of the bytes
	Body        BlobReader
	Redirect    string
}

// Download opens a file the caller may download (see FileStore.FileFor); anything else is
// 404. With thumb, the file's thumbnail, waiting a little while it is being made.
func (f *FileService) Download(ctx context.Context, p Principal, fileID int64, thumb bool) (Download, error) {
	file, err := f.fileFor(ctx, p, fileID)
	if err != nil {
		return Download{}, err
	}
	if thumb {
		if file, err = f.awaitThumbnail(ctx, p, file); err != nil {
			return Download{}, err
		}
	}
	d := Download{File: file, ContentType: media.ServedType(file.ContentType), Inline: media.Inline(file.ContentType)}
	key, sum, name := file.Key, file.SHA256, file.Name
	if thumb {
		d.ContentType, d.Inline = file.Thumb.ContentType, true
		// Named for what it is: the picture's name with the thumbnail's own extension.
		ext := ".jpg"
		if file.Thumb.ContentType == media.PNG {
			ext = ".png"
		}
		key, sum, name = file.Thumb.Key, file.Thumb.SHA256, "thumbnail-"+strings.TrimSuffix(file.Name, path.Ext(file.Name))+ext
	}
	d.ETag = `"` + hex.EncodeToString(sum) + `"`
	d.Disposition = ContentDisposition(d.Inline, name)
	if f.opts.Redirect > 0 {
		u, err := f.blobs.PresignGet(ctx, key, f.opts.Redirect, d.ContentType, d.Disposition)
		if err == nil {
			d.Redirect = u
			return d, nil
		}
		if !errors.Is(err, ErrNoPresign) {
			return Download{}, fmt.Errorf("presign file %d: %w", fileID, err)
		}
	}
	if d.Body, err = f.blobs.Open(ctx, key); err != nil {
		return Download{}, storeErr(err, "open file %d", fileID)
	}
	return d, nil
}

func (f *FileService) fileFor(ctx context.Context, p Principal, fileID int64) (File, error) {
	file, err := f.store.FileFor(ctx, p.UserID, fileID)
	if errors.Is(err, ErrNotFound) {
		return File{}, Errorf(CodeNotFound, "file %d not found", fileID)
	}
	if err != nil {
		return File{}, storeErr(err, "load file %d", fileID)
	}
	file.SetURLs()
	return file, nil
}

// thumbWait bounds how long a thumbnail download waits for the thumbnail to be made.
const thumbWait = 10 * time.Second

// awaitThumbnail returns the file once its thumbnail is ready: at once when it is, else after
// asking for it (on this instance) and watching the database until it is made here or on
// another instance.
func (f *FileService) awaitThumbnail(ctx context.Context, p Principal, file File) (File, error) {
	deadline := time.Now().Add(thumbWait)
	asked := false
	for {
		switch file.Thumb.State {
		case ThumbReady:
			return file, nil
		case ThumbNone, ThumbFailed:
			return File{}, Errorf(CodeNotFound, "file %d has no thumbnail", file.ID)
		}
		if !asked {
			f.queueThumbnail(file.ID)
			asked = true
		}
		if time.Now().After(deadline) {
			return File{}, &Error{Code: CodeUnavailable, Message: "the thumbnail is still being made; retry", RetryAfter: 1}
		}
		select {
		case <-ctx.Done():
			return File{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		var err error
		if file, err = f.fileFor(ctx, p, file.ID); err != nil {
			return File{}, err
		}
	}
}

// queueThumbnail asks this instance's workers for a file's thumbnail. A full queue drops the
// request: the janitor finds the pending thumbnail later.
func (f *FileService) queueThumbnail(id int64) {
	select {
	case f.thumbs <- id:
	default:
	}
}

// makeThumbnail makes one thumbnail if nobody else is, and records the outcome.
func (f *FileService) makeThumbnail(ctx context.Context, id int64) {
	now := f.svc.now()
	file, ok, err := f.store.ClaimThumbnail(ctx, id, now, now.Add(-thumbClaimTTL))
	if err != nil {
		f.log.Warn("claim thumbnail", "file_id", id, "err", err)
		return
	}
	if !ok {
		return
	}
	start := time.Now()
	t, err := f.thumbnail(ctx, file)
	var merr error
	switch {
	case errors.Is(err, media.ErrNotImage) || errors.As(err, new(*media.TooManyPixelsError)):
		f.log.Info("no thumbnail: the image cannot be decoded", "file_id", id, "err", err)
		merr = f.store.SetThumbnail(ctx, id, Thumbnail{State: ThumbFailed})
	case err != nil:
		// Storage trouble: the claim lapses and the janitor retries.
		f.log.Warn("make thumbnail", "file_id", id, "err", err)
		return
	default:
		merr = f.store.SetThumbnail(ctx, id, t)
	}
	if merr != nil {
		f.log.Warn("record thumbnail", "file_id", id, "err", merr)
	}
	if o := f.opts.Observer.Thumbnail; o != nil {
		o(time.Since(start), err == nil)
	}
}

func (f *FileService) thumbnail(ctx context.Context, file File) (Thumbnail, error) {
	rd, err := f.blobs.Open(ctx, file.Key)
	if err != nil {
		return Thumbnail{}, err
	}
	defer rd.Close()
	t, err := media.Thumbnail(rd, file.Orientation, ThumbnailSize, f.opts.Limits.MaxPixels)
	if err != nil {
		return Thumbnail{}, err
	}
	key := file.Key + ".thumb"
	n, err := f.blobs.Put(ctx, key, bytes.NewReader(t.Data), t.ContentType)
	if err != nil {
		return Thumbnail{}, err
	}
	sum := sha256.Sum256(t.Data)
	return Thumbnail{State: ThumbReady, Key: key, ContentType: t.ContentType, Size: n, SHA256: sum[:]}, nil
}

// Run makes thumbnails and deletes expired files until ctx ends: ThumbWorkers workers, and a
// janitor pass every JanitorEvery. Every instance runs it; they share the work through the
// database (claims), so any number may run at once.
func (f *FileService) Run(ctx context.Context) {
	done := make(chan struct{})
	for range f.opts.ThumbWorkers {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-ctx.Done():
					return
				case id := <-f.thumbs:
					f.makeThumbnail(ctx, id)
				}
			}
		}()
	}
	t := time.NewTicker(f.opts.JanitorEvery)
	defer t.Stop()
	for {
		if _, err := f.Sweep(ctx); err != nil && ctx.Err() == nil {
			f.log.Warn("file janitor", "err", err)
		}
		select {
		case <-ctx.Done():
			for range f.opts.ThumbWorkers {
				<-done
			}
			return
		case <-t.C:
		case <-f.sweep:
		}
	}
}

// Sweep is one janitor pass: it deletes files never attached within FileAttachWindow (and
// uploads that died half-way) with their bytes, and queues thumbnails that nobody is making.
// It returns how many files it deleted. Instances may sweep at once: each file is deleted
// once, and deleting bytes twice is harmless.
func (f *FileService) Sweep(ctx context.Context) (int, error) {
	now := f.svc.now()
	deleted := 0
	for {
		expired, err := f.store.ExpiredFiles(ctx, now.Add(-FileAttachWindow-fileExpiryGrace), now.Add(-2*maxUploadTime), 200)
		if err != nil {
			return deleted, storeErr(err, "list expired files")
		}
		for _, file := range expired {
			// The bytes first: a crash in between leaves a row, which the next pass finds
			// again, never bytes that nothing names.
			for _, key := range []string{file.Key, file.Thumb.Key} {
				if key == "" {
					continue
				}
				if err := f.blobs.Delete(ctx, key); err != nil {
					return deleted, fmt.Errorf("delete blob of file %d: %w", file.ID, err)
				}
			}
			ok, err := f.store.DeleteExpired(ctx, file.ID)
			if err != nil {
				return deleted, storeErr(err, "delete file %d", file.ID)
			}
			if ok {
				deleted++
			}
		}
		if len(expired) < 200 {
			break
		}
	}
	if deleted > 0 {
		f.log.Info("deleted expired files", "count", deleted)
		if o := f.opts.Observer.Deleted; o != nil {
			o(deleted)
		}
	}
	if ts, ok := f.blobs.(TempSweeper); ok {
		// Hourly: a directory walk. A write is cut at maxUploadTime, so a temporary file
		// nothing wrote to for twice that is a crashed write's, whichever instance began it.
		if last := f.lastTempSweep.Load(); last == 0 || now.Sub(time.UnixMilli(last)) >= tempSweepEvery {
			f.lastTempSweep.Store(now.UnixMilli())
			n, err := ts.SweepTemp(ctx, now.Add(-2*maxUploadTime))
			if err != nil && ctx.Err() == nil {
				f.log.Warn("remove temporary files of interrupted uploads", "err", err)
			}
			if n > 0 {
				f.log.Info("removed temporary files of interrupted uploads", "count", n)
			}
		}
	}
	pending, err := f.store.PendingThumbnails(ctx, now.Add(-time.Minute), now.Add(-thumbClaimTTL), 100)
	if err != nil {
		return deleted, storeErr(err, "list pending thumbnails")
	}
	for _, id := range pending {
		f.queueThumbnail(id)
	}
	if o := f.opts.Observer.Stored; o != nil {
		n, err := f.store.StoredBytes(ctx)
		if err != nil {
			return deleted, storeErr(err, "stored bytes")
		}
		o(n)
	}
	return deleted, nil
}

// slots bounds what each user (or address) has going at once: per slots a key, taken by
// waiting.
type slots[K comparable] struct {
	per  int
	mu   sync.Mutex
	keys map[K]*slot
}

type slot struct {
	ch    chan struct{}
	users int // takers holding or waiting for one of ch's slots
}

// errQueueWait is take's error when its wait ended before a slot was free.
var errQueueWait = errors.New("no upload slot within the queue's wait")

// take waits for one of key's slots, until ctx ends or expired fires (errQueueWait), and
// returns what gives it back.
func (u *slots[K]) take(ctx context.Context, key K, expired <-chan time.Time) (release func(), err error) {
	u.mu.Lock()
	if u.keys == nil {
		u.keys = map[K]*slot{}
	}
	s := u.keys[key]
	if s == nil {
		s = &slot{ch: make(chan struct{}, u.per)}
		u.keys[key] = s
	}
	s.users++
	u.mu.Unlock()
	leave := func() {
		u.mu.Lock()
		if s.users--; s.users == 0 {
			delete(u.keys, key)
		}
		u.mu.Unlock()
	}
	select {
	case s.ch <- struct{}{}:
		return func() {
			<-s.ch
			leave()
		}, nil
	case <-expired:
		leave()
		return nil, errQueueWait
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}
