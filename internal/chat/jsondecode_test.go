package chat_test

import (
	"testing"

	"github.com/wschat/chat/internal/chat"
)

// TestDecodeJSONRefusesWhatItWouldChange: bytes that are not UTF-8, and \u escapes of half a
// surrogate pair, are refused; encoding/json would store U+FFFD in their place. Pairs, escaped
// backslashes before a 'u' and the other escapes pass.
func TestDecodeJSONRefusesWhatItWouldChange(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{`{"s":"x\ud800y"}`, false},
		{`{"s":"Ann\ud83d"}`, false},
		{`{"s":"\udc00"}`, false},
		{`{"s":"\ud800\u0041"}`, false},
		{`{"s":"\uD800\\uDC00"}`, false},
		{"{\"s\":\"b\xff\"}", false},
		{`{"s":"\ud83d\ude00 ok"}`, true},
		{`{"s":"\uD83D\uDE00"}`, true},
		{`{"s":"\\ud800 is text"}`, true},
		{`{"s":"\"\n\t\u00e9\u4e2d"}`, true},
	} {
		var v struct{ S string }
		err := chat.DecodeJSON([]byte(c.in), &v, "the body")
		if (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok %v", c.in, err, c.ok)
		}
	}
}
