package chat

import "testing"

// TestCheckVisible: format characters are refused in names, except those that are part of an
// emoji: a zero-width joiner between two pictographs and a subdivision flag's tags.
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
	} {
		if err := checkVisible("name", bad); err == nil {
			t.Errorf("checkVisible(%q) = nil, want an error", bad)
		}
	}
}
