package chat

import (
	"unicode"
	"unicode/utf8"
)

// maxEmojiBytes bounds a reaction's emoji: the longest emoji in use (a family of four with
// skin tones, a flag of a region) stays well below it.
const maxEmojiBytes = 64

// NormalizeEmoji accepts exactly one emoji (one grapheme) and returns its one spelling, so
// that the same emoji typed two ways is one reaction: "❤" and "❤️" (U+2764 with the emoji
// presentation selector U+FE0F) are both the red heart. What it accepts: a pictographic
// character with an optional presentation selector (U+FE0F or U+FE0E) and skin tone, several of
// them joined by zero-width joiners (👩‍💻), a flag (two regional indicators), a keycap (1️⃣) or
// a subdivision flag (🏴 with tags). Anything else (text, two emoji, a lone modifier) is
// invalid: a reaction is one emoji. The spelling is Unicode's fully-qualified one: U+FE0F after
// each character that is drawn as text without it (❤, ☺, ✌, the keycaps), none after one drawn
// as emoji anyway (👍) or before a skin tone, and never U+FE0E (a reaction is an emoji).
func NormalizeEmoji(field, v string) (string, error) {
	bad := func() (string, error) { return "", Invalid(field, "%s must be exactly one emoji", field) }
	if v == "" || len(v) > maxEmojiBytes || !utf8.ValidString(v) {
		return bad()
	}
	rs := []rune(v)
	selector := func(r rune) bool { return r == 0xFE0F || r == 0xFE0E }
	switch {
	case len(rs) == 2 && isRegional(rs[0]) && isRegional(rs[1]):
		return v, nil
	case isKeycapBase(rs[0]):
		if (len(rs) == 2 && rs[1] == 0x20E3) || (len(rs) == 3 && selector(rs[1]) && rs[2] == 0x20E3) {
			return string([]rune{rs[0], 0xFE0F, 0x20E3}), nil
		}
		return bad()
	case rs[0] == 0x1F3F4 && len(rs) > 2 && rs[len(rs)-1] == 0xE007F:
		for _, r := range rs[1 : len(rs)-1] {
			if r < 0xE0020 || r > 0xE007E {
				return bad()
			}
		}
		return v, nil
	}
	// Pictographs, each optionally followed by a selector and a skin tone, joined by ZWJ.
	out := make([]rune, 0, len(rs)+2)
	for i := 0; ; {
		if i >= len(rs) || !isPictographic(rs[i]) {
			return bad()
		}
		p := rs[i]
		i++
		if i < len(rs) && selector(rs[i]) {
			i++
		}
		switch {
		case i < len(rs) && rs[i] >= 0x1F3FB && rs[i] <= 0x1F3FF:
			out = append(out, p, rs[i])
			i++
		case unicode.Is(textDefaultEmoji, p):
			out = append(out, p, 0xFE0F)
		default:
			out = append(out, p)
		}
		if i == len(rs) {
			if len(string(out)) > maxEmojiBytes {
				return bad()
			}
			return string(out), nil
		}
		if rs[i] != 0x200D {
			return bad()
		}
		out = append(out, 0x200D)
		i++
	}
}

func isRegional(r rune) bool   { return r >= 0x1F1E6 && r <= 0x1F1FF }
func isKeycapBase(r rune) bool { return r == '#' || r == '*' || (r >= '0' && r <= '9') }

// isPictographic is a close approximation of Unicode's Extended_Pictographic property: the
// blocks where emoji live, and the older symbols that are emoji.
func isPictographic(r rune) bool {
	switch {
	case r >= 0x1F000 && r <= 0x1FAFF && !(r >= 0x1F1E6 && r <= 0x1F1FF) && !(r >= 0x1F3FB && r <= 0x1F3FF):
		return true
	case r >= 0x2600 && r <= 0x27BF, r >= 0x2300 && r <= 0x23FF, r >= 0x2B00 && r <= 0x2BFF,
		r >= 0x2190 && r <= 0x21FF, r >= 0x25A0 && r <= 0x25FF, r >= 0x2934 && r <= 0x2935:
		return true
	}
	switch r {
	case 0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122, 0x2139, 0x24C2, 0x3030, 0x303D, 0x3297, 0x3299:
		return true
	}
	return false
}
