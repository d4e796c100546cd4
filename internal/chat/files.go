package chat

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Files in chats: a member uploads a file into a chat, then (issue 15's attach step) a message
// carries it. Metadata lives in the database (FileStore); the bytes never do, they live in a
// Blobs store (a local directory or an S3-compatible bucket). A file is downloadable by the
// members of its chat once attached, and by its uploader (while a member) before; everyone
// else gets 404, as for a file that does not exist.

// Error codes of file uploads (besides invalid, too_large, not_found, not_member).
const (
	// CodeQuotaExceeded: the uploader's bytes of the last 24 h would exceed their quota (429).
	CodeQuotaExceeded = "quota_exceeded"
	// CodeStorageFull: the chat's files would exceed its total (413).
	CodeStorageFull = "storage_full"
)

// Error codes of a send's file_ids (422 each), in the order they are checked: the first that
// applies to the first refused file is the answer.
const (
	// CodeFileNotFound: no such file, or one the sender cannot see (its chat is not theirs),
	// or an upload that never finished.
	CodeFileNotFound = "file_not_found"
	// CodeFileNotYours: another member uploaded it; only the uploader attaches a file.
	CodeFileNotYours = "file_not_yours"
	// CodeFileOtherChat: the sender uploaded it into another chat.
	CodeFileOtherChat = "file_other_chat"
	// CodeFileAttached: it is attached to a message already (or was, to a deleted one).
	CodeFileAttached = "file_attached"
	// CodeFileExpired: uploaded more than FileAttachWindow ago; upload it again.
	CodeFileExpired = "file_expired"
)

// FileClaim is how a file stands for a send that would attach it (Store.FileClaims).
type FileClaim struct {
	ID         int64
	ChatID     int64
	UploaderID int64
	Stored     bool // its upload finished
	Attached   bool // attached to a message, now or before (a deleted message's files stay taken)
	CreatedAt  time.Time
	// Visible: the viewer is a member of the file's chat.
	Visible bool
}

// attachRefusal says why the files of a send by userID to chatID cannot be attached: the first
// file of ids (in the client's order) that may not be, as a 422 on its place in body.file_ids.
// Nil when every file may be (the files changed since the store refused them).
func attachRefusal(claims []FileClaim, userID, chatID int64, ids []int64, now time.Time) error {
	byID := make(map[int64]FileClaim, len(claims))
	for _, c := range claims {
		byID[c.ID] = c
	}
	for i, id := range ids {
		c, ok := byID[id]
		field := fmt.Sprintf("body.file_ids[%d]", i)
		var code, msg string
		switch {
		case !ok || !c.Stored || (c.UploaderID != userID && !c.Visible):
			code, msg = CodeFileNotFound, fmt.Sprintf("file %d not found", id)
		case c.UploaderID != userID:
			code, msg = CodeFileNotYours, fmt.Sprintf("file %d was uploaded by someone else: only its uploader can attach it", id)
		case c.ChatID != chatID:
			code, msg = CodeFileOtherChat, fmt.Sprintf("file %d was uploaded to another chat", id)
		case c.Attached:
			code, msg = CodeFileAttached, fmt.Sprintf("file %d is already attached to a message", id)
		case !c.CreatedAt.After(now.Add(-FileAttachWindow)):
			code, msg = CodeFileExpired, fmt.Sprintf("file %d was uploaded more than %s ago: upload it again", id, FileAttachWindow)
		default:
			continue
		}
		return &Error{Code: code, Field: field, Message: msg}
	}
	return nil
}

// checkFileIDs checks a send's file_ids: at most MaxFilesPerMessage ids, each positive and
// named once.
func checkFileIDs(ids []int64) error {
	if len(ids) > MaxFilesPerMessage {
		return Invalid("body.file_ids", "a message may carry at most %d files", MaxFilesPerMessage)
	}
	seen := make(map[int64]bool, len(ids))
	for i, id := range ids {
		field := fmt.Sprintf("body.file_ids[%d]", i)
		if id <= 0 {
			return Invalid(field, "%s must be a file id", field)
		}
		if seen[id] {
			return Invalid(field, "file %d is named twice", id)
		}
		seen[id] = true
	}
	return nil
}

// File limits and timings.
const (
	// MaxFilesPerMessage is how many files one message may carry.
	MaxFilesPerMessage = 10
	// FileAttachWindow is how long an uploaded file may wait to be attached to a message.
	FileAttachWindow = 24 * time.Hour
	// fileExpiryGrace is added to FileAttachWindow before the janitor deletes an unattached
	// file, so that instances whose clocks differ a little never delete a file another may
	// still attach.
	fileExpiryGrace = time.Hour
	// MaxFileNameChars bounds a stored file name; longer names are shortened.
	MaxFileNameChars = 255
	// ThumbnailSize is the box a thumbnail fits in, in pixels.
	ThumbnailSize = 320
	// maxUploadTime bounds one upload; the janitor forgets uploads older than twice this.
	maxUploadTime = time.Hour
)

// File states and thumbnail states, as stored.
const (
	FileUploading = "uploading" // the bytes are being written
	FileStored    = "stored"

	ThumbNone    = "none"    // not an image: no thumbnail
	ThumbPending = "pending" // to be made (or being made: ThumbClaimed set)
	ThumbReady   = "ready"
	ThumbFailed  = "failed" // the image could not be decoded
)

// File is an uploaded file. The JSON fields are what clients see (the upload's answer and,
// once attached, a message's files); the others stay on the server.
type File struct {
	ID           int64  `json:"id"`
	Name         string `json:"name" doc:"the uploader's file name, made safe: no path, no control or bidi characters, at most 255 characters"`
	Size         int64  `json:"size" doc:"bytes, as stored (an image's metadata is removed before)"`
	ContentType  string `json:"content_type" doc:"detected from the bytes, never taken from the client"`
	Width        int    `json:"width,omitempty" doc:"images: width in pixels, upright"`
	Height       int    `json:"height,omitempty" doc:"images: height in pixels, upright"`
	ThumbnailURL string `json:"thumbnail_url,omitempty" doc:"images: a thumbnail that fits in 320 × 320 px"`
	URL          string `json:"url" doc:"where members download it"`

	ChatID      int64     `json:"-"`
	UploaderID  int64     `json:"-"`
	State       string    `json:"-"`
	Key         string    `json:"-"` // the object's name in the Blobs store
	SHA256      []byte    `json:"-"`
	Orientation int       `json:"-"` // EXIF orientation of a JPEG (1-8)
	CreatedAt   time.Time `json:"-"`
	MessageID   int64     `json:"-"` // 0 while unattached
	Thumb       Thumbnail `json:"-"`
}

// Thumbnail is a file's thumbnail as stored.
type Thumbnail struct {
	State       string
	Key         string
	ContentType string
	Size        int64
	SHA256      []byte
	Claimed     time.Time // when an instance began making it; zero when nobody is
}

// FileURL is where a file is downloaded.
func FileURL(id int64) string { return "/api/v1/files/" + strconv.FormatInt(id, 10) }

// ThumbnailURL is where a file's thumbnail is downloaded.
func ThumbnailURL(id int64) string { return FileURL(id) + "/thumbnail" }

// SetURLs fills the URL fields from the id and the thumbnail's state.
func (f *File) SetURLs() {
	f.URL = FileURL(f.ID)
	f.ThumbnailURL = ""
	if f.Thumb.State == ThumbPending || f.Thumb.State == ThumbReady {
		f.ThumbnailURL = ThumbnailURL(f.ID)
	}
}

// FileLimits bound what users may store. Zero fields take DefaultFileLimits.
type FileLimits struct {
	MaxFileBytes   int64 // one file
	UserDailyBytes int64 // what one user uploads in any 24 hours
	ChatBytes      int64 // the files of one chat together
	MaxPixels      int64 // an image's width × height
}

// DefaultFileLimits are the limits of docs/SECURITY.md.
var DefaultFileLimits = FileLimits{
	MaxFileBytes:   25 << 20,
	UserDailyBytes: 1 << 30,
	ChatBytes:      10 << 30,
	MaxPixels:      40_000_000,
}

func (l *FileLimits) defaults() {
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = DefaultFileLimits.MaxFileBytes
	}
	if l.UserDailyBytes <= 0 {
		l.UserDailyBytes = DefaultFileLimits.UserDailyBytes
	}
	if l.ChatBytes <= 0 {
		l.ChatBytes = DefaultFileLimits.ChatBytes
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultFileLimits.MaxPixels
	}
}

// QuotaError is what FileStore.FinishUpload returns when storing a file would exceed a quota;
// the upload is not stored.
type QuotaError struct {
	Chat bool // the chat's total; else the uploader's daily bytes
	Used int64
	// Oldest is when the oldest upload counted against the uploader's daily quota was made.
	Oldest time.Time
}

func (e *QuotaError) Error() string {
	if e.Chat {
		return fmt.Sprintf("the chat's files already take %d bytes", e.Used)
	}
	return fmt.Sprintf("the user uploaded %d bytes in the last 24 hours", e.Used)
}

// NewUpload is an upload about to begin.
type NewUpload struct {
	ChatID     int64
	UploaderID int64
	Key        string
	Now        time.Time
}

// FileUsage is what counts against the quotas of an upload.
type FileUsage struct {
	UserBytes  int64     // the uploader's stored bytes since the start of the window
	UserOldest time.Time // the oldest of those uploads
	ChatBytes  int64     // the chat's stored bytes
}

// FileStore is the metadata of files. Like Store, every method is one transaction and both
// databases pass one conformance suite.
type FileStore interface {
	// BeginUpload records an upload (state uploading) by a member of the chat and returns its
	// id; ErrNotMember when the uploader is not a member, ErrNotFound when there is no chat.
	BeginUpload(ctx context.Context, u NewUpload) (int64, error)
	// FinishUpload stores the file's metadata (f.ID names the upload) if the uploader is still
	// a member and the quotas allow it: the uploader's stored bytes since dayStart plus f.Size
	// within userDaily, the chat's plus f.Size within chatTotal; else *QuotaError or
	// ErrNotMember, and nothing changes.
	FinishUpload(ctx context.Context, f File, dayStart time.Time, userDaily, chatTotal int64) (File, error)
	// DropUpload forgets an upload that failed (one still uploading).
	DropUpload(ctx context.Context, id int64) error
	// FileUsage reports what counts against the quotas of the user's next upload into a chat.
	FileUsage(ctx context.Context, userID, chatID int64, dayStart time.Time) (FileUsage, error)
	// FileFor returns a stored file the viewer may download: the viewer is a member of its
	// chat and the file is attached to a message or the viewer uploaded it. Else ErrNotFound.
	FileFor(ctx context.Context, viewerID, fileID int64) (File, error)
	// ClaimThumbnail marks a stored file's pending thumbnail as being made by the caller, when
	// nobody claimed it since staleBefore, and returns the file; false when it is not to be
	// made (made, failed, claimed by another, or gone).
	ClaimThumbnail(ctx context.Context, fileID int64, now, staleBefore time.Time) (File, bool, error)
	// SetThumbnail records the outcome of making a thumbnail (t.State ready or failed).
	SetThumbnail(ctx context.Context, fileID int64, t Thumbnail) error
	// PendingThumbnails lists files whose thumbnail is pending and unclaimed since
	// staleBefore, created before createdBefore.
	PendingThumbnails(ctx context.Context, createdBefore, staleBefore time.Time, limit int) ([]int64, error)
	// ExpiredFiles lists files never attached and created before unattachedBefore, and uploads
	// begun before uploadingBefore that never finished.
	ExpiredFiles(ctx context.Context, unattachedBefore, uploadingBefore time.Time, limit int) ([]File, error)
	// DeleteExpired deletes a file listed by ExpiredFiles if it is still unattached; false when
	// it was not (attached meanwhile, or already deleted by another instance).
	DeleteExpired(ctx context.Context, fileID int64) (bool, error)
	// StoredBytes is the size of every stored file and thumbnail.
	StoredBytes(ctx context.Context) (int64, error)
}

// Blobs keeps the bytes of files under keys. Implementations: internal/blob (a local directory,
// an S3-compatible bucket).
type Blobs interface {
	// Put stores r under key, streaming it; it returns the bytes written. On error nothing is
	// left under key.
	Put(ctx context.Context, key string, r io.Reader, contentType string) (int64, error)
	// Open returns the blob for reading and seeking (Range requests).
	Open(ctx context.Context, key string) (BlobReader, error)
	// Delete removes a blob; a missing one is not an error.
	Delete(ctx context.Context, key string) error
	// PresignGet returns a URL that serves the blob without us for ttl, with these response
	// headers, or ErrNoPresign when the store cannot.
	PresignGet(ctx context.Context, key string, ttl time.Duration, contentType, disposition string) (string, error)
}

// TempSweeper is a Blobs store that keeps what a write has so far apart from the blobs (a
// directory's temporary files), which a crash mid-write leaves behind: SweepTemp removes those
// last written before before, and returns how many. The file janitor calls it.
type TempSweeper interface {
	SweepTemp(ctx context.Context, before time.Time) (int, error)
}

// BlobReader is an open blob.
type BlobReader interface {
	io.ReadSeekCloser
}

// ErrNoPresign is what Blobs.PresignGet returns for a store that cannot hand out URLs.
var ErrNoPresign = fmt.Errorf("this store cannot presign URLs")

// FileObserver is told what happens to files, for metrics. Any field may be nil.
type FileObserver struct {
	Uploaded  func(bytes int64)
	Refused   func(reason string)
	Thumbnail func(d time.Duration, ok bool)
	Deleted   func(files int)
	Stored    func(bytes int64)
}

// Refusal reasons of FileObserver.Refused.
const (
	RefusedTooLarge  = "too_large"
	RefusedUserQuota = "user_quota"
	RefusedChatQuota = "chat_quota"
	RefusedPixels    = "pixels"
	RefusedBadImage  = "bad_image"
	RefusedEmpty     = "empty"
	RefusedNotMember = "not_member"
	RefusedTooSlow   = "too_slow"
)
