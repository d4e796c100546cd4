package chat

import "testing"

func TestCheckEmoji(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"👍", true}, {"❤️", true}, {"❤", true}, {"👍🏽", true}, {"👩‍💻", true}, {"👨‍👩‍👧‍👦", true},
		{"🇫🇷", true}, {"1️⃣", true}, {"#⃣", true}, {"🏴\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F", true},
		{"☕", true}, {"©️", true},
		{"", false}, {"a", false}, {"ab", false}, {"👍👍", false}, {"👍 ", false}, {" 👍", false}, {"🏽", false},
		{"🇫", false}, {"🇫🇷🇩🇪", false}, {"1", false}, {"👩‍", false}, {"‍👩", false}, {"<script>", false},
		{"\xff", false}, {string(make([]byte, 100)), false},
	} {
		if err := CheckEmoji("path.emoji", tc.in); (err == nil) != tc.ok {
			t.Errorf("CheckEmoji(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}
