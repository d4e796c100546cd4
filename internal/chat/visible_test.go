package chat

import "testing"

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
	for _, bad := range []string{"You", "you", " YOU ", "Ｙｏｕ"} {
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
