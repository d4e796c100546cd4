package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/wschat/chat/internal/chat"
)

// S3 keeps blobs as objects of a bucket in any S3-compatible store (AWS S3, Versity's gateway,
// Garage, Ceph, R2...), through minio-go.
type S3 struct {
	c      *minio.Client
	core   minio.Core
	bucket string
	prefix string // prepended to every key
}

var _ chat.Blobs = (*S3)(nil)

// PartSize is the size of the parts of a multipart upload, the smallest S3 allows: an upload
// holds one part in memory at a time, whatever the file's size.
const PartSize = 5 << 20

var parts = sync.Pool{New: func() any { b := make([]byte, PartSize); return &b }}

// S3Options name a bucket and how to reach it.
type S3Options struct {
	Endpoint  string // host:port
	Secure    bool   // https
	Region    string
	Bucket    string
	Prefix    string
	AccessKey string
	SecretKey string
	// PathStyle forces path-style URLs (host/bucket/key), which most self-hosted stores need;
	// otherwise minio-go picks (virtual-host style for AWS).
	PathStyle bool
}

// How long the S3 client waits to connect and then for the header of an answer (a PUT's from
// when its body has been sent), and how many times it tries a request that failed so: a store
// that answers nothing is chat.ErrFilesUnavailable in about s3MaxRetries × s3HeaderTimeout.
var (
	s3DialTimeout   = 5 * time.Second
	s3HeaderTimeout = 10 * time.Second
	s3MaxRetries    = 3
)

// NewS3 connects to a bucket, creating it when it does not exist.
func NewS3(ctx context.Context, o S3Options) (*S3, error) {
	lookup := minio.BucketLookupAuto
	if o.PathStyle {
		lookup = minio.BucketLookupPath
	}
	tr, err := minio.DefaultTransport(o.Secure)
	if err != nil {
		return nil, fmt.Errorf("s3 transport: %w", err)
	}
	// A store that takes connections but does not answer (hung, or a black-holed address) is
	// unavailable after these, not after minio-go's defaults: a 30 s dial and a minute for the
	// answer's header, each tried 10 times, held an upload's slot or a download for 10 minutes.
	tr.DialContext = (&net.Dialer{Timeout: s3DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = s3HeaderTimeout
	c, err := minio.New(o.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(o.AccessKey, o.SecretKey, ""), Secure: o.Secure, Region: o.Region, BucketLookup: lookup,
		Transport: tr, MaxRetries: s3MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", o.Endpoint, err)
	}
	ok, err := c.BucketExists(ctx, o.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3 bucket %s at %s: %w", o.Bucket, o.Endpoint, err)
	}
	if !ok {
		err := c.MakeBucket(ctx, o.Bucket, minio.MakeBucketOptions{Region: o.Region})
		if code := minio.ToErrorResponse(err).Code; err != nil && code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
			return nil, fmt.Errorf("create s3 bucket %s: %w", o.Bucket, err)
		}
	}
	prefix := strings.Trim(o.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &S3{c: c, core: minio.Core{Client: c}, bucket: o.Bucket, prefix: prefix}, nil
}

// Put implements chat.Blobs: one PUT for a blob smaller than a part, else a multipart upload
// that sends each part as soon as it is full. The store's own failures are classified
// (s3Err); a failure to read r is returned as it is.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, contentType string) (int64, error) {
	bp := parts.Get().(*[]byte)
	defer parts.Put(bp)
	buf := *bp
	name := s.prefix + key
	n, err := io.ReadFull(r, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		info, err := s.c.PutObject(ctx, s.bucket, name, bytes.NewReader(buf[:n]), int64(n), minio.PutObjectOptions{ContentType: contentType})
		if err != nil {
			return 0, fmt.Errorf("put %s: %w", name, s3Err(err))
		}
		return info.Size, nil
	}
	if err != nil {
		return 0, err
	}
	opts := minio.PutObjectOptions{ContentType: contentType}
	id, err := s.core.NewMultipartUpload(ctx, s.bucket, name, opts)
	if err != nil {
		return 0, fmt.Errorf("start multipart upload of %s: %w", name, s3Err(err))
	}
	var done []minio.CompletePart
	var total int64
	for n > 0 {
		p, err := s.core.PutObjectPart(ctx, s.bucket, name, id, len(done)+1, bytes.NewReader(buf[:n]), int64(n), minio.PutObjectPartOptions{})
		if err != nil {
			s.abort(name, id)
			return 0, fmt.Errorf("put part %d of %s: %w", len(done)+1, name, s3Err(err))
		}
		done = append(done, minio.CompletePart{PartNumber: p.PartNumber, ETag: p.ETag})
		total += int64(n)
		n, err = io.ReadFull(r, buf)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			s.abort(name, id)
			return 0, err
		}
	}
	if _, err := s.core.CompleteMultipartUpload(ctx, s.bucket, name, id, done, opts); err != nil {
		s.abort(name, id)
		return 0, fmt.Errorf("complete multipart upload of %s: %w", name, s3Err(err))
	}
	return total, nil
}

func (s *S3) abort(name, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.core.AbortMultipartUpload(ctx, s.bucket, name, id)
}

// Open implements chat.Blobs. The object reads lazily: seeking to an offset and reading makes a
// ranged GET, so a Range request never fetches the whole object.
func (s *S3) Open(ctx context.Context, key string) (chat.BlobReader, error) {
	obj, err := s.c.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s3Err(err)
	}
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, fmt.Errorf("blob %s: %w", key, chat.ErrNotFound)
		}
		return nil, s3Err(err)
	}
	return obj, nil
}

// Delete implements chat.Blobs.
func (s *S3) Delete(ctx context.Context, key string) error {
	err := s.c.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code == "NoSuchKey" {
		return nil
	}
	return s3Err(err)
}

// s3Err classifies a failure of the object store so that the caller answers it rightly: a
// store that is full or over its quota is chat.ErrStorageFull, one that cannot be reached or
// says it cannot serve now (5xx, SlowDown: S3's "retry") chat.ErrFilesUnavailable; a request
// refused for what it asked (4xx) stays as it is, an error of ours.
func s3Err(err error) error {
	if err == nil {
		return nil
	}
	var r minio.ErrorResponse
	errors.As(err, &r)
	switch {
	case r.Code == "XMinioStorageFull" || r.Code == "QuotaExceeded" || r.Code == "XMinioAdminBucketQuotaExceeded" ||
		r.StatusCode == http.StatusInsufficientStorage:
		return fmt.Errorf("%w: %v", chat.ErrStorageFull, err)
	case r.Code == "SlowDown" || r.StatusCode >= 500:
		return fmt.Errorf("%w: %v", chat.ErrFilesUnavailable, err)
	case r.StatusCode == 0 && unreachable(err):
		return fmt.Errorf("%w: %v", chat.ErrFilesUnavailable, err)
	}
	return err
}

// unreachable tells a failure to talk to the store at all (refused, reset, timed out, no such
// host) from one of the request: a canceled context is the caller's, not the store's.
func unreachable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var ne net.Error
	var ue *url.Error
	return errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET)
}

// PresignGet implements chat.Blobs: the URL makes the store answer with our Content-Type and
// Content-Disposition.
func (s *S3) PresignGet(ctx context.Context, key string, ttl time.Duration, contentType, disposition string) (string, error) {
	params := url.Values{}
	params.Set("response-content-type", contentType)
	params.Set("response-content-disposition", disposition)
	params.Set("response-cache-control", "private, no-cache")
	u, err := s.c.PresignedGetObject(ctx, s.bucket, s.prefix+key, ttl, params)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// Open picks the Blobs store named by a CHAT_FILES_URL value:
//   - empty: a directory "files" under dataDir;
//   - a path, or file:///path: that directory;
//   - s3://host[:port]/bucket[/prefix] (https) or s3+http://... (plain http), with the keys in
//     the URL's user info or in accessKey and secretKey, and optional query parameters region
//     and path_style (true by default; false lets AWS use virtual-host style).
func Open(ctx context.Context, rawURL, dataDir, accessKey, secretKey string) (chat.Blobs, error) {
	switch {
	case rawURL == "":
		return NewDir(dataDir + "/files")
	case strings.HasPrefix(rawURL, "file://"):
		return NewDir(strings.TrimPrefix(rawURL, "file://"))
	case !strings.Contains(rawURL, "://"):
		return NewDir(rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("CHAT_FILES_URL: %w", err)
	}
	if u.Scheme != "s3" && u.Scheme != "s3+http" {
		return nil, fmt.Errorf("CHAT_FILES_URL: scheme %q: want a directory, file://, s3:// or s3+http://", u.Scheme)
	}
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if u.Host == "" || bucket == "" {
		return nil, errors.New("CHAT_FILES_URL: want s3://host[:port]/bucket[/prefix]")
	}
	o := S3Options{Endpoint: u.Host, Secure: u.Scheme == "s3", Region: u.Query().Get("region"), Bucket: bucket, Prefix: prefix,
		AccessKey: accessKey, SecretKey: secretKey, PathStyle: u.Query().Get("path_style") != "false"}
	if u.User != nil {
		o.AccessKey = u.User.Username()
		o.SecretKey, _ = u.User.Password()
	}
	if o.AccessKey == "" || o.SecretKey == "" {
		return nil, errors.New("CHAT_FILES_URL: an s3 store needs an access key and a secret key (CHAT_FILES_S3_ACCESS_KEY, CHAT_FILES_S3_SECRET_KEY)")
	}
	return NewS3(ctx, o)
}
