package push

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wschat/chat/internal/chat"
)

// TestPreview: a push's body is cut at previewChars characters, text or the file name of a
// file sent alone (a 254-character name made a body of 256).
func TestPreview(t *testing.T) {
	long := strings.Repeat("é", 300)
	cut := strings.Repeat("é", previewChars) + "…"
	for _, c := range []struct {
		name string
		pc   chat.PushContext
		want string
	}{
		{"text", chat.PushContext{ChatKind: chat.KindPrivate, Body: "hi"}, "hi"},
		{"long text", chat.PushContext{ChatKind: chat.KindPrivate, Body: long}, cut},
		{"long text in a group", chat.PushContext{ChatKind: chat.KindGroup, SenderName: "Ann", Body: long}, "Ann: " + cut},
		{"a file", chat.PushContext{ChatKind: chat.KindGroup, SenderName: "Ann", Files: 1, File: "beach.jpg"}, "Ann: 📎 beach.jpg"},
		{"a long file name", chat.PushContext{ChatKind: chat.KindPrivate, Files: 1, File: strings.Repeat("f", 250) + ".pdf"},
			"📎 " + strings.Repeat("f", previewChars-2) + "…"},
		{"files", chat.PushContext{ChatKind: chat.KindPrivate, Files: 3, File: "a.txt"}, "📎 3 files"},
		{"text and a file", chat.PushContext{ChatKind: chat.KindPrivate, Body: "look", Files: 1, File: "a.txt"}, "look"},
	} {
		got := preview(c.pc)
		if got != c.want {
			t.Errorf("%s: preview %q (%d characters), want %q", c.name, got, utf8.RuneCountInString(got), c.want)
		}
	}
}
