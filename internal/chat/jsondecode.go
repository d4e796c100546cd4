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
// store U+FFFD in place of each bad byte, and what is stored must be what was sent.
func DecodeJSON(data []byte, v any, whole string) error {
	if !utf8.Valid(data) {
		return fmt.Errorf("%s is not valid UTF-8", whole)
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
