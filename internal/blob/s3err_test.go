package blob

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"syscall"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/wschat/chat/internal/chat"
)

// TestS3Err: what an S3-compatible store answers is told apart as the caller must answer it:
// full (507, MinIO's and Ceph's quota codes), unavailable (5xx, SlowDown), or a refusal of the
// request itself, which stays an error of ours.
func TestS3Err(t *testing.T) {
	resp := func(status int, code string) error {
		return fmt.Errorf("put x: %w", minio.ErrorResponse{StatusCode: status, Code: code, Message: code})
	}
	for _, c := range []struct {
		name        string
		err         error
		full, unavl bool
	}{
		{"MinIO's drives full", resp(http.StatusInsufficientStorage, "XMinioStorageFull"), true, true},
		{"a quota", resp(http.StatusForbidden, "QuotaExceeded"), true, true},
		{"507 of any code", resp(http.StatusInsufficientStorage, "InsufficientStorage"), true, true},
		{"slow down", resp(http.StatusServiceUnavailable, "SlowDown"), false, true},
		{"a gateway's 502", resp(http.StatusBadGateway, ""), false, true},
		{"an internal error of the store", resp(http.StatusInternalServerError, "InternalError"), false, true},
		{"access denied", resp(http.StatusForbidden, "AccessDenied"), false, false},
		{"no such bucket", resp(http.StatusNotFound, "NoSuchBucket"), false, false},
		{"not a store's answer", errors.New("something else"), false, false},
	} {
		err := s3Err(c.err)
		if full := errors.Is(err, chat.ErrStorageFull); full != c.full {
			t.Errorf("%s: full %v, want %v (%v)", c.name, full, c.full, err)
		}
		if u := errors.Is(err, chat.ErrUnavailable); u != c.unavl {
			t.Errorf("%s: unavailable %v, want %v (%v)", c.name, u, c.unavl, err)
		}
		if !c.full && c.unavl != errors.Is(err, chat.ErrFilesUnavailable) {
			t.Errorf("%s: %v, want the file store unavailable: %v", c.name, err, c.unavl)
		}
	}
	if s3Err(nil) != nil {
		t.Error("s3Err(nil) is not nil")
	}
}

// TestDirErr: a directory that is full (or over its quota) is chat.ErrStorageFull, whatever
// call it came from; any other failure stays as it is.
func TestDirErr(t *testing.T) {
	for _, c := range []struct {
		err  error
		full bool
	}{
		{&os.PathError{Op: "write", Path: "/data/files/.upload-1", Err: syscall.ENOSPC}, true},
		{&os.LinkError{Op: "rename", Old: "a", New: "b", Err: syscall.EDQUOT}, true},
		{&os.PathError{Op: "open", Path: "/data/files/x", Err: syscall.EACCES}, false},
		{errors.New("the client went away"), false},
	} {
		err := dirErr(c.err)
		if full := errors.Is(err, chat.ErrStorageFull); full != c.full {
			t.Errorf("%v: full %v, want %v", c.err, full, c.full)
		}
		if !errors.Is(err, c.err) && !c.full {
			t.Errorf("%v became %v", c.err, err)
		}
	}
	if dirErr(nil) != nil {
		t.Error("dirErr(nil) is not nil")
	}
}
