package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"unicode/utf8"
)

// DecodeJSON decodes data into v as encoding/json does, with a plain message for a value of the
// wrong type ("seq must be an integer written in digits only ...") instead of encoding/json's,
// which speaks of Go ("json: cannot unmarshal number 1e3 into Go struct field .seq of type
// int64"). whole names the value itself in the message, for a wrong type at the top ("the
// body", "data"). JSON Schema calls 1e3, 1.0 and 99999999999999999999 integers, so such a value
// passes a schema and is refused here. Text that is not UTF-8 is refused too: encoding/json would
// store U+FFFD in place of each bad byte, and what is stored must be what was sent; so it
// would for a \u escape of a lone surrogate ("\ud800"), which is refused as well.
func DecodeJSON(data []byte, v any, whole string) error {
	if err := CheckJSONText(data, whole); err != nil {
		return err
	}
	err := json.Unmarshal(data, v)
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return err
	}
	what := "of another type"
	switch te.Type.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		what = fmt.Sprintf("an integer written in digits only (no fraction or exponent), from %d to %d",
			int64(-1)<<(te.Type.Bits()-1), uint64(1)<<(te.Type.Bits()-1)-1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		what = fmt.Sprintf("an integer written in digits only (no fraction or exponent), from 0 to %d", uint64(1)<<te.Type.Bits()-1)
	case reflect.Float32, reflect.Float64:
		what = "a number"
	case reflect.String:
		what = "a string"
	case reflect.Bool:
		what = "true or false"
	case reflect.Slice, reflect.Array:
		what = "an array"
	case reflect.Struct, reflect.Map:
		what = "an object"
	}
	field := te.Field
	if field == "" {
		field = whole
	}
	return fmt.Errorf("%s must be %s", field, what)
}

// CheckJSONText refuses a JSON text whose strings encoding/json would change: bytes that are
// not UTF-8, or a \u escape of a lone surrogate, each decoded as U+FFFD (DecodeJSON's first
// check, for a body decoded otherwise).
func CheckJSONText(data []byte, whole string) error {
	if !utf8.Valid(data) {
		return fmt.Errorf("%s is not valid UTF-8", whole)
	}
	if loneSurrogate(data) {
		return fmt.Errorf("%s holds a \\u escape of half a UTF-16 surrogate pair without the other half", whole)
	}
	return nil
}

// loneSurrogate reports whether a JSON text holds a \u escape of a UTF-16 surrogate that is not
// half of a pair (a high one followed by a low one), which encoding/json decodes as U+FFFD. A
// backslash stands only in strings, where it starts an escape.
func loneSurrogate(data []byte) bool {
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		i++ // the escaped character: a 'u', or one that is skipped (\\ included)
		if i >= len(data) || data[i] != 'u' {
			continue
		}
		r, ok := hex4(data[i+1:])
		if !ok {
			continue // malformed: json.Unmarshal refuses it
		}
		i += 4
		switch {
		case r >= 0xdc00 && r <= 0xdfff:
			return true
		case r >= 0xd800 && r <= 0xdbff:
			if len(data) < i+7 || data[i+1] != '\\' || data[i+2] != 'u' {
				return true
			}
			lo, ok := hex4(data[i+3:])
			if !ok || lo < 0xdc00 || lo > 0xdfff {
				return true
			}
			i += 6
		}
	}
	return false
}

// hex4 reads four hex digits.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
