package config

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestFileSettings(t *testing.T) {
	c, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Files; f.URL != "" || f.Redirect != 0 || f.MaxFileBytes != 25<<20 || f.UserDailyBytes != 1<<30 ||
		f.ChatBytes != 10<<30 || f.MaxPixels != 40_000_000 || f.MinUploadRate != 1<<10 {
		t.Errorf("file defaults: %+v", f)
	}
	c, err = Load(nil, env(map[string]string{"CHAT_FILES_URL": "s3://h/b", "CHAT_FILES_REDIRECT": "5m",
		"CHAT_LIMIT_FILE_SIZE": "3 MB", "CHAT_LIMIT_FILES_USER_DAY": "512KiB", "CHAT_LIMIT_FILES_CHAT": "1000", "CHAT_LIMIT_IMAGE_PIXELS": "99",
		"CHAT_LIMIT_UPLOAD_RATE": "0"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f := c.Files; f.URL != "s3://h/b" || f.Redirect != 5*time.Minute || f.MaxFileBytes != 3_000_000 || f.UserDailyBytes != 512<<10 ||
		f.ChatBytes != 1000 || f.MaxPixels != 99 || f.MinUploadRate != 0 {
		t.Errorf("file settings: %+v", f)
	}
	for k, v := range map[string]string{
		"CHAT_FILES_REDIRECT": "soon", "CHAT_LIMIT_FILE_SIZE": "big", "CHAT_LIMIT_FILES_USER_DAY": "-1",
		"CHAT_LIMIT_FILES_CHAT": "0", "CHAT_LIMIT_IMAGE_PIXELS": "1e6", "CHAT_LIMIT_UPLOAD_RATE": "-1",
	} {
		if _, err := Load(nil, env(map[string]string{k: v}), io.Discard); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%q: got %v, want an error naming it", k, v, err)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "25MiB": 25 << 20, "1 GiB": 1 << 30, "10GB": 10e9, "7B": 7, "2KiB": 2048} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "1.5MiB", "9999999999TiB", "12 parsecs"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) accepted it", bad)
		}
	}
}
