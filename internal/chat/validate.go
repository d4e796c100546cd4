package chat

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// checkText validates a user-supplied string: valid UTF-8, no NUL (PostgreSQL cannot store it),
// and between min and max characters. singleLine also refuses other control characters.
func checkText(field, v string, min, max int, singleLine bool) error {
	if !utf8.ValidString(v) {
		return Invalid(field, "%s is not valid UTF-8", field)
	}
	n := utf8.RuneCountInString(v)
	if n < min {
		if min == 1 {
			return Invalid(field, "%s must not be empty", field)
		}
		return Invalid(field, "%s must be at least %d characters", field, min)
	}
	if n > max {
		return Invalid(field, "%s must be at most %d characters", field, max)
	}
	for _, r := range v {
		if r == 0 || (singleLine && unicode.IsControl(r)) {
			return Invalid(field, "%s must not contain control characters", field)
		}
	}
	return nil
}

// normalizeEmail lowercases and checks an email address: a bare addr-spec with a domain.
func normalizeEmail(field, email string) (string, error) {
	email = strings.TrimSpace(email)
	if err := checkText(field, email, 3, MaxEmailChars, true); err != nil {
		return "", err
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return "", Invalid(field, "%s is not a valid email address", field)
	}
	at := strings.LastIndexByte(email, '@')
	if at < 1 || !strings.Contains(email[at+1:], ".") || strings.HasSuffix(email, ".") {
		return "", Invalid(field, "%s is not a valid email address", field)
	}
	return strings.ToLower(email), nil
}

func checkName(field, name string) (string, error) {
	name = strings.TrimSpace(name)
	if err := checkText(field, name, 1, MaxNameChars, true); err != nil {
		return name, err
	}
	// The app calls each person "You" themselves: someone else named so would read as them
	// ("You removed Ann", "You: send the money" in the chat list).
	// Compatibility forms read the same: full-width "Ｙｏｕ", bold "𝐘𝐨𝐮", circled, superscript.
	if strings.EqualFold(strings.TrimSpace(norm.NFKC.String(name)), "you") {
		return name, Invalid(field, "%s must not be %q: that is how the app shows each person themselves", field, name)
	}
	if err := checkVisible(field, name); err != nil {
		return name, err
	}
	if err := checkMarks(field, name); err != nil {
		return name, err
	}
	return name, checkScripts(field, name)
}

func checkTitle(field, title string) (string, error) {
	title = strings.TrimSpace(title)
	if err := checkText(field, title, 1, MaxTitleChars, true); err != nil {
		return title, err
	}
	if err := checkVisible(field, title); err != nil {
		return title, err
	}
	return title, checkMarks(field, title)
}

// checkVisible refuses the characters that make a name display as something else: Unicode
// format characters (category Cf: bidi overrides, embeddings, isolates and marks, zero-width
// space, joiner and non-joiner, word joiner, BOM, soft hyphen, tag characters) and line and
// paragraph separators. "Alice" with a zero-width space is not Alice, and a right-to-left
// override turns "evil‮gpj.exe" into "evilexe.jpg". They are refused, not stripped, so
// that what is stored is what was asked for (docs/API-NOTES.md). Two format characters are
// part of emoji and stay allowed there: a zero-width joiner between two pictographs (👩‍💻) and
// the tag characters of a subdivision flag (🏴 followed by tags up to the cancel tag).
func checkVisible(field, v string) error {
	rs := []rune(v)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == 0x200D && emojiBefore(rs, i) && i+1 < len(rs) && isPictographic(rs[i+1]):
			continue
		case r == 0x1F3F4:
			i = skipFlagTags(rs, i)
			continue
		}
		if unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || blank(r) {
			return Invalid(field, "%s must not contain invisible or text-direction characters (U+%04X)", field, r)
		}
	}
	return nil
}

// blank reports the characters outside category Cf that show as nothing (default ignorable
// marks, fillers) or as a blank that is not a space: "Second" with one of them is not Second.
func blank(r rune) bool {
	switch r {
	case 0x034F, // combining grapheme joiner
		0x115F, 0x1160, 0x3164, 0xFFA0, // Hangul fillers
		0x17B4, 0x17B5, // Khmer inherent vowels
		0x180B, 0x180C, 0x180D, 0x180F, // Mongolian free variation selectors
		0x2800: // braille pattern blank
		return true
	}
	return false
}

// emojiBefore reports whether the runes before rs[i] end with a pictograph, optionally followed
// by a presentation selector and a skin tone.
func emojiBefore(rs []rune, i int) bool {
	j := i - 1
	if j >= 0 && rs[j] >= 0x1F3FB && rs[j] <= 0x1F3FF {
		j--
	}
	if j >= 0 && rs[j] == 0xFE0F {
		j--
	}
	return j >= 0 && isPictographic(rs[j])
}

// skipFlagTags returns the index of the last rune of a subdivision flag starting at rs[i] (🏴,
// tag characters, the cancel tag U+E007F), or i when no complete tag sequence follows.
func skipFlagTags(rs []rune, i int) int {
	j := i + 1
	for j < len(rs) && rs[j] >= 0xE0020 && rs[j] <= 0xE007E {
		j++
	}
	if j > i+1 && j < len(rs) && rs[j] == 0xE007F {
		return j
	}
	return i
}

func checkBody(field, body string) error {
	if err := checkText(field, body, 1, MaxBodyChars, false); err != nil {
		return err
	}
	if strings.TrimSpace(body) == "" {
		return Invalid(field, "%s must not be blank", field)
	}
	return checkMarks(field, body)
}

// MaxStackedMarks is how many combining marks one character may carry. Writing systems stack
// a few (Vietnamese two, pointed Hebrew with cantillation or Tibetan up to five or six); "zalgo"
// text stacks hundreds, which every client draws far over the lines around it (and that the
// web client clips to the bubble cannot help a push notification or another client).
const MaxStackedMarks = 8

// checkMarks refuses more than MaxStackedMarks nonspacing or enclosing marks on one character.
// Format characters (a zero-width joiner or non-joiner) between marks do not start a new
// character: the marks after them still stack on the same one.
func checkMarks(field, v string) error {
	n := 0
	for _, r := range v {
		if n = stacked(n, r); n > MaxStackedMarks {
			return Invalid(field, "%s must not stack more than %d combining marks on one character", field, MaxStackedMarks)
		}
	}
	return nil
}

// stacked counts the combining marks on the current character: n, the count before r, is
// one more after a nonspacing or enclosing mark, the same after a format character (a mark
// after a joiner still stacks on the character before it), and 0 after anything else.
func stacked(n int, r rune) int {
	switch {
	case unicode.In(r, unicode.Mn, unicode.Me):
		return n + 1
	case unicode.Is(unicode.Cf, r):
		return n
	}
	return 0
}
