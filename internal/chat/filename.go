package chat

import (
	"mime"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CleanFileName makes an uploader's file name safe to store, show and put in a
// Content-Disposition header: valid UTF-8, no directory part (either separator), no control
// characters (NUL included), no bidirectional overrides or isolates (which can make
// "exe.txt" read as "txt.exe"), no characters that show as nothing or as a blank that is not a
// space (blank: a run of braille blanks hid ".exe" after "invoice.pdf"), no more than
// MaxStackedMarks combining marks on one character (those beyond are dropped: names are
// cleaned, not refused), no leading or trailing blanks, and at most MaxFileNameChars
// characters (a long name keeps its extension). An empty result becomes "file".
func CleanFileName(name string) string {
	name = strings.ToValidUTF8(name, "\uFFFD")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	marks := 0
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || isBidiControl(r) || r == '\uFEFF' || blank(r) {
			return -1
		}
		if marks = stacked(marks, r); marks > MaxStackedMarks && unicode.In(r, unicode.Mn, unicode.Me) {
			return -1
		}
		return r
	}, name)
	// Trailing dots go too: Windows drops them, and ".." must never survive.
	name = strings.TrimRight(strings.TrimLeft(name, " \u00A0\u3000"), ". \u00A0\u3000")
	if name == "" {
		return "file"
	}
	if utf8.RuneCountInString(name) <= MaxFileNameChars {
		return name
	}
	ext := path.Ext(name)
	if utf8.RuneCountInString(ext) > 16 {
		ext = ""
	}
	base := []rune(strings.TrimSuffix(name, ext))
	return string(base[:MaxFileNameChars-utf8.RuneCountInString(ext)]) + ext
}

// isBidiControl reports the Unicode characters that reorder text (UAX #9): the embeddings and
// overrides, the isolates, and the marks.
func isBidiControl(r rune) bool {
	switch {
	case r == '\u061C', r == '\u200E', r == '\u200F':
		return true
	case r >= '\u202A' && r <= '\u202E':
		return true
	case r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

// ContentDisposition is the Content-Disposition of a download: inline for what browsers may
// show (inline true), else attachment, with the file name (RFC 6266, non-ASCII names encoded
// as RFC 5987 filename*).
func ContentDisposition(inline bool, name string) string {
	kind := "attachment"
	if inline {
		kind = "inline"
	}
	if v := mime.FormatMediaType(kind, map[string]string{"filename": name}); v != "" {
		return v
	}
	return kind
}
