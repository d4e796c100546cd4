package chat_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wschat/chat/internal/chat"
)

func TestCleanFileName(t *testing.T) {
	long := strings.Repeat("é", 1000) + ".pdf"
	for _, c := range []struct{ in, want string }{
		{"report.pdf", "report.pdf"},
		{"../../etc/passwd", "passwd"},
		{`..\..\windows\system.ini`, "system.ini"},
		{"a\x00b.txt", "ab.txt"},
		{"invoice\u202Efdp.exe", "invoicefdp.exe"},
		{"x\u2066y\u2069\u200F.png", "xy.png"},
		{"  spaced . ", "spaced"},
		{"..", "file"},
		{"", "file"},
		{"/", "file"},
		{"bad\xffutf8.txt", "bad\uFFFDutf8.txt"},
		{"line\nbreak\r.txt", "linebreak.txt"},
		// Blanks that are not spaces pushed ".exe" out of sight behind "invoice.pdf".
		{"invoice.pdf" + strings.Repeat("\u2800", 60) + "\u3164.exe", "invoice.pdf.exe"},
		{long, strings.Repeat("é", chat.MaxFileNameChars-4) + ".pdf"},
		// Marks stacked on one character beyond MaxStackedMarks go ("zalgo" draws over the
		// lines around it); a joiner between them does not start a new character, a dropped
		// control character does not either, and writing systems' few marks stay.
		{"z" + strings.Repeat("\u0301", 240) + ".txt", "z" + strings.Repeat("\u0301", chat.MaxStackedMarks) + ".txt"},
		{"z" + strings.Repeat("\u0301\u200c", 20) + ".txt", "z" + strings.Repeat("\u0301\u200c", chat.MaxStackedMarks) + strings.Repeat("\u200c", 20-chat.MaxStackedMarks) + ".txt"},
		{"z" + strings.Repeat("\u0301\x00", 20) + ".txt", "z" + strings.Repeat("\u0301", chat.MaxStackedMarks) + ".txt"},
		{"Tiếng Việt בְּרֵאשִׁ֖ית.txt", "Tiếng Việt בְּרֵאשִׁ֖ית.txt"},
	} {
		got := chat.CleanFileName(c.in)
		if got != c.want {
			t.Errorf("CleanFileName(%q) = %q, want %q", c.in, got, c.want)
		}
		if n := utf8.RuneCountInString(got); n > chat.MaxFileNameChars || !utf8.ValidString(got) {
			t.Errorf("CleanFileName(%q): %d characters, valid UTF-8 %v", c.in, n, utf8.ValidString(got))
		}
	}
}

func TestContentDisposition(t *testing.T) {
	for _, c := range []struct {
		inline     bool
		name, want string
	}{
		{false, "a.txt", "attachment; filename=a.txt"},
		{true, "photo 1.jpg", `inline; filename="photo 1.jpg"`},
		{false, `quote".txt`, `attachment; filename="quote\".txt"`},
		{false, "résumé.pdf", "attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf"},
	} {
		if got := chat.ContentDisposition(c.inline, c.name); got != c.want {
			t.Errorf("ContentDisposition(%v, %q) = %q, want %q", c.inline, c.name, got, c.want)
		}
	}
}
