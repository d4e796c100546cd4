package chat

import (
	"strings"
	"testing"
)

// TestCheckVisible: format characters are refused in names, except those that are part of an
// emoji: a zero-width joiner between two pictographs and a subdivision flag's tags; so are the
// characters outside Cf that show as nothing or as a blank ("Second" and "Second" with a Hangul
// filler were two members who looked the same).
func TestCheckVisible(t *testing.T) {
	for _, good := range []string{
		"Ann", "Zoë 😀", "Ann 👩\u200d💻", "👨🏽\u200d🚀 Bob", "❤️\u200d🔥", "👨\u200d👩\u200d👧\u200d👦",
		"🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F Scot",
	} {
		if err := checkVisible("name", good); err != nil {
			t.Errorf("checkVisible(%q) = %v, want nil", good, err)
		}
	}
	for _, bad := range []string{
		"A\u200dB", "Dev \u200d💻", "💻\u200d", "\u200d💻", "💻\u200d A", "Al\u200bice", "evil\u202egpj.exe",
		"Ann\U000E0067", "🏴\U000E0067\U000E0062", "🏴\U000E007F", "x🏴\U000E0067\U000E007Fy\u200b",
		"Second\u034f", "Second\u3164", "First\u2800", "First\u17b4", "First\u115f", "Ann\uffa0", "A\u180bB",
	} {
		if err := checkVisible("name", bad); err == nil {
			t.Errorf("checkVisible(%q) = nil, want an error", bad)
		}
	}
}

// TestNoOneElseIsYou: a user may not be named "You", which is how the app shows each person
// themselves.
func TestNoOneElseIsYou(t *testing.T) {
	for _, bad := range []string{"You", "you", " YOU ", "Ｙｏｕ", "𝐘𝐨𝐮", "𝒀𝒐𝒖", "𝕐𝕠𝕦", "Ⓨⓞⓤ", "ʸᵒᵘ"} {
		if _, err := checkName("body.name", bad); err == nil {
			t.Errorf("checkName(%q) = nil, want an error", bad)
		}
	}
	for _, good := range []string{"Yourself", "You Li", "Yu"} {
		if _, err := checkName("body.name", good); err != nil {
			t.Errorf("checkName(%q) = %v", good, err)
		}
	}
}

// TestMixedScriptNames: a word of a name may not mix scripts the way look-alike names do ("Yоu"
// with a Cyrillic о passed for You), but names in one script, names whose words are each in
// one script, and the mixes Japanese, Chinese and Korean are written in are accepted.
func TestMixedScriptNames(t *testing.T) {
	for _, c := range []struct{ name, detail string }{
		{"Y\u043eu", "body.name must not mix Latin and Cyrillic letters in one word (\"Y\u043eu\" has Latin U+0059 and Cyrillic U+043E): it could pass for another name"},
		{"\u0410na", "body.name must not mix Cyrillic and Latin letters in one word (\"\u0410na\" has Cyrillic U+0410 and Latin U+006E): it could pass for another name"},
		{"Ann P\u03b1ul", "body.name must not mix Latin and Greek letters in one word (\"P\u03b1ul\" has Latin U+0050 and Greek U+03B1): it could pass for another name"},
		{"\u0391\u0441\u03b7", ""},                 // Greek and Cyrillic
		{"Ad\u0307\u0430m", ""},                    // a combining mark does not hide the Cyrillic а after it
		{"\u05e9\u05dcom", ""},                     // Hebrew and Latin
		{"\u30bf\u30ed\u0443", ""},                 // Katakana and Cyrillic
		{"\uac00\u3042", ""},                       // Hangul and Hiragana
		{"Ann-\u041c\u0430\u0440\u0438\u044f", ""}, // one word: a hyphen does not split it
	} {
		_, err := checkName("body.name", c.name)
		if err == nil {
			t.Errorf("checkName(%q) = nil, want an error", c.name)
			continue
		}
		if c.detail != "" && err.Error() != c.detail {
			t.Errorf("checkName(%q) = %q, want %q", c.name, err.Error(), c.detail)
		}
	}
	for _, good := range []string{
		"Ann", "Анна", "Αλέξανδρος", "Anna Мария", "Zoë 😀", "R2-D2", "O'Brien", "José", "Ad\u0307am",
		"山田太郎", "やまだ", "ヤマダ タロウ", "山田たろう", "東京タワー", "Tシャツ屋", "김민준", "韓國사람", "ㄅㄆ中文",
		"Ann (\u0410\u043d\u043d\u0430)", "\u05e9\u05dc\u05d5\u05dd", "محمد", "राम", "Σ-3", "Μαρία 2",
	} {
		if _, err := checkName("body.name", good); err != nil {
			t.Errorf("checkName(%q) = %v", good, err)
		}
	}
}

// TestStackedMarks: a character may carry up to MaxStackedMarks combining marks (writing
// systems stack a few), not the hundreds of "zalgo" text that draw over the lines around it;
// a joiner between marks does not start a new character.
func TestStackedMarks(t *testing.T) {
	zalgo := func(n int, sep string) string { return "a" + strings.Repeat("\u0301"+sep, n) + " b" }
	for _, good := range []string{
		"Tiếng Việt", "בְּרֵאשִׁ֖ית", "བསྒྲུབས", "1\ufe0f\u20e3 ❤️", zalgo(MaxStackedMarks, ""),
		strings.Repeat("a\u0301\u0302\u0303", 100),
	} {
		if err := checkBody("body.body", good); err != nil {
			t.Errorf("checkBody(%q) = %v", good, err)
		}
	}
	for _, bad := range []string{zalgo(MaxStackedMarks+1, ""), zalgo(1500, ""), zalgo(MaxStackedMarks+1, "\u200c"), "x\u20dd\u20de\u20dd\u20de\u20dd\u20de\u20dd\u20de\u20dd"} {
		err := checkBody("body.body", bad)
		if want := "body.body must not stack more than 8 combining marks on one character"; err == nil || err.Error() != want {
			t.Errorf("checkBody(%.20q) = %v, want %q", bad, err, want)
		}
	}
	if _, err := checkName("body.name", zalgo(MaxStackedMarks+1, "")); err == nil {
		t.Error("checkName accepts a zalgo name")
	}
	if _, err := checkTitle("body.title", zalgo(MaxStackedMarks+1, "")); err == nil {
		t.Error("checkTitle accepts a zalgo title")
	}
	if _, err := checkDescription("body.description", zalgo(MaxStackedMarks+1, "")); err == nil {
		t.Error("checkDescription accepts a zalgo description")
	}
}
