package chat

import "testing"

func TestCheckEmoji(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"👍", true}, {"❤️", true}, {"❤", true}, {"👍🏽", true}, {"👩‍💻", true}, {"👨‍👩‍👧‍👦", true},
		{"🇫🇷", true}, {"1️⃣", true}, {"#⃣", true}, {"🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F", true},
		{"☕", true}, {"©️", true}, {"❤\ufe0e", true},
		{"", false}, {"a", false}, {"ab", false}, {"👍👍", false}, {"👍 ", false}, {" 👍", false}, {"🏽", false},
		{"🇫", false}, {"🇫🇷🇩🇪", false}, {"1", false}, {"👩‍", false}, {"‍👩", false}, {"<script>", false},
		{"\xff", false}, {string(make([]byte, 100)), false}, {"❤\ufe0f\ufe0f", false}, {"\ufe0f", false},
	} {
		if _, err := NormalizeEmoji("path.emoji", tc.in); (err == nil) != tc.ok {
			t.Errorf("NormalizeEmoji(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

// TestNormalizeEmoji: the ways of typing one emoji are one reaction, spelled as Unicode's
// fully-qualified emoji: U+FE0F after a character drawn as text without it, none after one
// drawn as emoji anyway or before a skin tone, never U+FE0E.
func TestNormalizeEmoji(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"\u2764", "\u2764\ufe0f"},                 // ❤ -> ❤️
		{"\u2764\ufe0f", "\u2764\ufe0f"},           // ❤️ stays
		{"\u2764\ufe0e", "\u2764\ufe0f"},           // ❤︎ (text presentation) -> ❤️
		{"\u263a", "\u263a\ufe0f"},                 // ☺
		{"\u00a9", "\u00a9\ufe0f"},                 // ©
		{"👍", "👍"},                                 // drawn as emoji: nothing added
		{"👍\ufe0f", "👍"},                           // nor kept
		{"👍🏽", "👍🏽"},                               // a skin tone: no selector
		{"\u270c\ufe0f🏽", "\u270c🏽"},               // ✌️🏽 -> ✌🏽
		{"1\u20e3", "1\ufe0f\u20e3"},               // keycaps
		{"#\ufe0e\u20e3", "#\ufe0f\u20e3"},         //
		{"\u2764\u200d🔥", "\u2764\ufe0f\u200d🔥"},   // ❤‍🔥 -> ❤️‍🔥
		{"🏳\u200d🌈", "🏳\ufe0f\u200d🌈"},             // 🏳️‍🌈
		{"🧑\u200d\u2695", "🧑\u200d\u2695\ufe0f"},   // 🧑‍⚕️
		{"🏌🏽\u200d\u2640", "🏌🏽\u200d\u2640\ufe0f"}, // 🏌🏽‍♀️
		{"👨\u200d👩\u200d👧\u200d👦", "👨\u200d👩\u200d👧\u200d👦"},
		{"🇫🇷", "🇫🇷"},
		{"🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F", "🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F"},
	} {
		got, err := NormalizeEmoji("path.emoji", tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeEmoji(%+q) = %+q, %v; want %+q", tc.in, got, err, tc.want)
		}
		if again, _ := NormalizeEmoji("path.emoji", got); again != got {
			t.Errorf("NormalizeEmoji(%+q) = %+q, not a fixed point", got, again)
		}
	}
}
