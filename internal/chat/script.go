package chat

import (
	"slices"
	"strings"
	"unicode"
)

// checkScripts refuses a name with a word that mixes scripts the way look-alike names do:
// "Yоu" with a Cyrillic о, "Аna" with a Cyrillic А, "Pαul" with a Greek α. It is UTS #39's
// "highly restrictive" level applied word by word (words split at spaces, so "Anna Мария" is a
// name): each word's letters are of one script, or of Latin with Han, Hiragana and Katakana
// (Japanese), with Han and Bopomofo (Chinese) or with Han and Hangul (Korean). Characters of
// the Common and Inherited scripts (digits, punctuation, symbols, emoji, combining marks) go
// with any script.
func checkScripts(field, v string) error {
	for _, word := range strings.FieldsFunc(v, unicode.IsSpace) {
		var first string // the script of the word's first letter
		var firstRune rune
		var seen []string
		for _, r := range word {
			s := scriptOf(r)
			if s == "" || slices.Contains(seen, s) {
				continue
			}
			if first == "" {
				first, firstRune = s, r
			}
			seen = append(seen, s)
			if !scriptsGoTogether(seen) {
				return Invalid(field, "%s must not mix %s and %s letters in one word (%q has %s U+%04X and %s U+%04X): it could pass for another name",
					field, first, s, word, first, firstRune, s, r)
			}
		}
	}
	return nil
}

// scriptsCombined are the sets of scripts one word may mix (UTS #39, "highly restrictive").
var scriptsCombined = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

func scriptsGoTogether(scripts []string) bool {
	if len(scripts) < 2 {
		return true
	}
	for _, set := range scriptsCombined {
		all := true
		for _, s := range scripts {
			all = all && slices.Contains(set, s)
		}
		if all {
			return true
		}
	}
	return false
}

// scriptOf names r's script, or "" for the Common and Inherited scripts and for unassigned code
// points, which have none.
func scriptOf(r rune) string {
	switch {
	case r < 0x80 && !unicode.IsLetter(r), unicode.In(r, unicode.Common, unicode.Inherited):
		return ""
	case unicode.Is(unicode.Latin, r):
		return "Latin"
	}
	for name, table := range unicode.Scripts {
		if unicode.Is(table, r) {
			return name
		}
	}
	return ""
}
