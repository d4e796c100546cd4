package chat

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzValidation checks the input rules on any string: what is accepted can be stored by
// PostgreSQL (valid UTF-8, no NUL), fits the limits of API.md, has no control characters where
// a single line is expected, no invisible or text-direction characters in names and titles,
// and is a fixed point (normalizing it again changes nothing).
//
//	go test ./internal/chat -run '^$' -fuzz FuzzValidation -fuzztime 30s
func FuzzValidation(f *testing.F) {
	for _, s := range []string{"first@example.com", " First@Example.COM ", "a@b", "a@b.c", "\"a b\"@c.d", "a@[1.2.3.4]",
		"x\x00y@z.w", "é@é.é", "a@b.c.", "Ann <a@b.c>", "hello\nworld", "\t", " ", strings.Repeat("é", 4001), "\xff", "\u202e", "Al\u200bice", "evil\u202egpj.exe", "\u2066x\u2069", "a\u00adb", "\ufeffBOM"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if email, err := normalizeEmail("body.email", s); err == nil {
			n := utf8.RuneCountInString(email)
			if !utf8.ValidString(email) || n < 3 || n > MaxEmailChars || email != strings.ToLower(email) || !strings.Contains(email, "@") {
				t.Fatalf("accepted email %q as %q", s, email)
			}
			for _, r := range email {
				if unicode.IsControl(r) {
					t.Fatalf("accepted email %q with a control character", email)
				}
			}
			if again, err := normalizeEmail("body.email", email); err != nil || again != email {
				t.Fatalf("email %q normalizes again to %q, %v", email, again, err)
			}
		}
		for _, c := range []struct {
			check func(string, string) (string, error)
			max   int
		}{{checkTitle, MaxTitleChars}, {checkName, MaxNameChars}} {
			v, err := c.check("f", s)
			if err != nil {
				continue
			}
			n := utf8.RuneCountInString(v)
			if !utf8.ValidString(v) || n < 1 || n > c.max || v != strings.TrimSpace(v) {
				t.Fatalf("accepted %q as %q", s, v)
			}
			for _, r := range v {
				if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || blank(r) {
					t.Fatalf("accepted %q with a control, invisible or text-direction character", v)
				}
			}
			if again, err := c.check("f", v); err != nil || again != v {
				t.Fatalf("%q checks again to %q, %v", v, again, err)
			}
		}
		if err := checkBody("body.body", s); err == nil {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) || utf8.RuneCountInString(s) > MaxBodyChars || strings.TrimSpace(s) == "" {
				t.Fatalf("accepted body %q", s)
			}
		}
	})
}
