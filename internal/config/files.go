package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Files are the settings of uploaded files: where their bytes go and how much may be stored.
type Files struct {
	URL         string // CHAT_FILES_URL: a directory, or s3://... (see blob.Open)
	S3AccessKey string
	S3SecretKey string
	// Redirect, when positive, sends downloads to presigned URLs of the object store valid
	// this long (S3 only); zero streams them through the server.
	Redirect       time.Duration
	MaxFileBytes   int64
	UserDailyBytes int64
	ChatBytes      int64
	MaxPixels      int64
	// MinUploadRate is the bytes a second an upload must average over any 30 s of waiting
	// for it (chat.FileOptions.MinUploadRate); 0: no minimum.
	MinUploadRate int64
	// MaxUploads, MaxUserUploads and MaxAddressUploads bound the uploads streaming at once on
	// one instance, all of them, one user's and one client address's; UploadQueueWait is how long an upload waits for both slots, and
	// SlowUploadPenalty how long the user's slot of an upload cut for being too slow stays
	// taken (0: none). See chat.FileOptions.
	MaxUploads        int
	MaxUserUploads    int
	MaxAddressUploads int
	UploadQueueWait   time.Duration
	SlowUploadPenalty time.Duration
}

// loadFiles reads the CHAT_FILES_* and file CHAT_LIMIT_* settings.
func loadFiles(get func(string) string) (Files, []error) {
	f := Files{URL: get("CHAT_FILES_URL"), S3AccessKey: get("CHAT_FILES_S3_ACCESS_KEY"), S3SecretKey: get("CHAT_FILES_S3_SECRET_KEY")}
	var errs []error
	if v := get("CHAT_FILES_REDIRECT"); v != "off" && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 7*24*time.Hour {
			errs = append(errs, fmt.Errorf("CHAT_FILES_REDIRECT=%q: want off or the lifetime of a presigned URL, like 5m (at most 7 days)", v))
		}
		f.Redirect = d
	}
	size := func(env string, dst *int64) {
		n, err := ParseBytes(get(env))
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive size like 25MiB", env, get(env)))
		}
		*dst = n
	}
	size("CHAT_LIMIT_FILE_SIZE", &f.MaxFileBytes)
	size("CHAT_LIMIT_FILES_USER_DAY", &f.UserDailyBytes)
	size("CHAT_LIMIT_FILES_CHAT", &f.ChatBytes)
	if n, err := ParseBytes(get("CHAT_LIMIT_UPLOAD_RATE")); err != nil || n < 0 {
		errs = append(errs, fmt.Errorf("CHAT_LIMIT_UPLOAD_RATE=%q: want bytes a second like 1KiB, or 0 for no minimum", get("CHAT_LIMIT_UPLOAD_RATE")))
	} else {
		f.MinUploadRate = n
	}
	slots := func(env string, dst *int) {
		n, err := strconv.Atoi(get(env))
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive number of uploads", env, get(env)))
		}
		*dst = n
	}
	slots("CHAT_LIMIT_UPLOADS", &f.MaxUploads)
	slots("CHAT_LIMIT_UPLOADS_USER", &f.MaxUserUploads)
	slots("CHAT_LIMIT_UPLOADS_ADDRESS", &f.MaxAddressUploads)
	if d, err := time.ParseDuration(get("CHAT_LIMIT_UPLOAD_WAIT")); err != nil || d <= 0 {
		errs = append(errs, fmt.Errorf("CHAT_LIMIT_UPLOAD_WAIT=%q: want a positive duration like 30s", get("CHAT_LIMIT_UPLOAD_WAIT")))
	} else {
		f.UploadQueueWait = d
	}
	if d, err := time.ParseDuration(get("CHAT_LIMIT_SLOW_UPLOAD_PENALTY")); err != nil || d < 0 {
		errs = append(errs, fmt.Errorf("CHAT_LIMIT_SLOW_UPLOAD_PENALTY=%q: want a duration like 1m, or 0 for none", get("CHAT_LIMIT_SLOW_UPLOAD_PENALTY")))
	} else {
		f.SlowUploadPenalty = d
	}
	if n, err := strconv.ParseInt(get("CHAT_LIMIT_IMAGE_PIXELS"), 10, 64); err != nil || n < 1 {
		errs = append(errs, fmt.Errorf("CHAT_LIMIT_IMAGE_PIXELS=%q: want a positive number", get("CHAT_LIMIT_IMAGE_PIXELS")))
	} else {
		f.MaxPixels = n
	}
	return f, errs
}

// ParseBytes reads a size: a number of bytes, optionally followed by KiB, MiB, GiB (or KB, MB,
// GB: powers of ten) or B.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}
