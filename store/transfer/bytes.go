package transfer

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/caddy-session/caddy-session/internal/strictjson"
)

// The strings of a session need not be UTF-8: a header value may hold
// obs-text (bytes 0x80 to 0xFF), so a value an app set in Latin-1, or the
// User-Agent a client sent, is kept byte for byte. JSON strings are
// UTF-8, and encoding/json writes every byte that is not as U+FFFD, so a
// line that carried such a string as a JSON string would import other
// bytes than the export took, and nothing would say so. A string of a
// line is therefore a Bytes: a JSON string when it is UTF-8, as every
// line before carried it, and otherwise {"base64": "..."}, its bytes in
// standard base64, in a line of version VersionBytes, which an earlier
// reader refuses as a newer format rather than store something else.

// VersionBytes is the version of a line that carries a string that is
// not UTF-8 as {"base64": "..."}: a plain session, or a sealed one with
// "sealed": true. A line is of this version only when it needs to be.
const VersionBytes = 3

// Bytes is a string of a line, which may hold any bytes: it is written as
// a JSON string when it is UTF-8, and as {"base64": "..."} when it is
// not. Each string has that one spelling: a reader refuses the object
// form for UTF-8, and a JSON string that encoding/json would read as
// other bytes than it spells (bytes that are not UTF-8, half a surrogate
// pair) rather than guess what was meant.
type Bytes string

// bytesField is the one field of the object form of a Bytes.
const bytesField = "base64"

// MarshalJSON writes b as a JSON string, or as {"base64": "..."} when it
// is not UTF-8.
func (b Bytes) MarshalJSON() ([]byte, error) {
	if utf8.ValidString(string(b)) {
		return json.Marshal(string(b))
	}
	return json.Marshal(map[string]string{bytesField: base64.StdEncoding.EncodeToString([]byte(b))})
}

// UnmarshalJSON reads either form of a Bytes. null leaves b as it is, as
// it leaves a string.
func (b *Bytes) UnmarshalJSON(raw []byte) error {
	if err := checkText(raw); err != nil {
		return newBytesError(raw, err)
	}
	switch {
	case string(raw) == "null":
		return nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return newBytesError(raw, err)
		}
		*b = Bytes(s)
		return nil
	case raw[0] == '{':
		s, err := decodeBytesForm(raw)
		if err != nil {
			return newBytesError(raw, err)
		}
		*b = Bytes(s)
		return nil
	}
	return newBytesError(raw, errors.New(`a string is a JSON string, or {"base64": "..."} for bytes that are not UTF-8`))
}

// decodeBytesForm reads {"base64": "..."}, exactly as MarshalJSON writes
// it.
func decodeBytesForm(raw []byte) (string, error) {
	const form = `bytes that are not UTF-8 are written as {"base64": "..."}`
	if err := strictjson.CheckFieldNames(raw, []string{bytesField}, func(name string) error {
		return fmt.Errorf("%s, with no field %q", form, name)
	}); err != nil {
		return "", err
	}
	var f struct {
		Base64 *string `json:"base64"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return "", fmt.Errorf("%s: %v", form, err)
	}
	if f.Base64 == nil {
		return "", fmt.Errorf(`"base64" is missing: %s`, form)
	}
	b, err := base64.StdEncoding.DecodeString(*f.Base64)
	if err != nil || base64.StdEncoding.EncodeToString(b) != *f.Base64 {
		return "", errors.New(`"base64" is not standard base64 as caddy session export writes it (padded with =, on one line)`)
	}
	if utf8.Valid(b) {
		return "", fmt.Errorf(`it holds UTF-8 text, which is written as the JSON string %s`, mustQuote(string(b)))
	}
	return string(b), nil
}

// bytesError is a Bytes that cannot be read, with its JSON, so that Parse
// can name its field.
type bytesError struct {
	raw []byte
	err error
}

// newBytesError keeps a copy of raw, which the decoder may reuse.
func newBytesError(raw []byte, err error) *bytesError {
	return &bytesError{raw: bytes.Clone(raw), err: err}
}

func (e *bytesError) Error() string { return fmt.Sprintf("%s: %v", shorten(e.raw), e.err) }
func (e *bytesError) Unwrap() error { return e.err }

// checkText refuses JSON text, a whole line or one value, that
// encoding/json would read as other characters than it spells: bytes
// that are not UTF-8, and a \u escape of half a surrogate pair, which it
// reads as U+FFFD. A tool may write either for bytes that are not UTF-8
// (Python's json writes \udce9 for a byte 0xE9 read with
// surrogateescape); the form for them is
// {"base64": "..."}. An escape occurs only within a string, so the text
// need not be split into them.
func checkText(raw []byte) error {
	for i := 0; i < len(raw); {
		r, size := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Errorf(`byte %d is not UTF-8, as JSON text is: caddy session export writes bytes that are not UTF-8 as {"base64": "..."}`, i+1)
		}
		i += size
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		i++ // the escaped character
		if i >= len(raw) || raw[i] != 'u' {
			continue
		}
		r, ok := hex4(raw[i+1:])
		if !ok || !utf16.IsSurrogate(r) {
			continue // not a surrogate; malformed escapes are the decoder's to refuse
		}
		if r < 0xdc00 && i+10 < len(raw) && raw[i+5] == '\\' && raw[i+6] == 'u' {
			if low, ok := hex4(raw[i+7:]); ok && utf16.DecodeRune(r, low) != utf8.RuneError {
				i += 10
				continue
			}
		}
		return fmt.Errorf(`\%s at byte %d is half a UTF-16 surrogate pair, which JSON decoders read as U+FFFD: write bytes that are not UTF-8 as {"base64": "..."}`, raw[i:i+5], i)
	}
	return nil
}

// hex4 reads the four hexadecimal digits at the start of b.
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

// shorten is raw for an error: at most 60 bytes of it, and U+FFFD for a
// byte that is not UTF-8.
func shorten(raw []byte) string {
	const most = 60
	if len(raw) <= most {
		return strings.ToValidUTF8(string(raw), "\uFFFD")
	}
	cut := most
	for cut > 0 && !utf8.RuneStart(raw[cut]) {
		cut--
	}
	return strings.ToValidUTF8(string(raw[:cut]), "\uFFFD") + "…"
}

// mustQuote is s as a JSON string.
func mustQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// toBytes and fromBytes convert the values or flash values of a record to
// those of a line and back; nil stays nil.
func toBytes(m map[string]string) map[string]Bytes {
	if m == nil {
		return nil
	}
	out := make(map[string]Bytes, len(m))
	for k, v := range m {
		out[k] = Bytes(v)
	}
	return out
}

func fromBytes(m map[string]Bytes) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// notUTF8 names a string of l that is not UTF-8, and so is written as
// {"base64": "..."}, the same one each time; "" if none is.
func (l *Line) notUTF8() string {
	v := reflect.ValueOf(l).Elem()
	for _, f := range bytesFields {
		if !f.pairs {
			if !utf8.ValidString(v.Field(f.index).String()) {
				return mustQuote(f.name)
			}
			continue
		}
		pairs := v.Field(f.index).Interface().(map[string]Bytes)
		for _, k := range slices.Sorted(maps.Keys(pairs)) {
			if !utf8.ValidString(string(pairs[k])) {
				return mustQuote(f.name) + " " + mustQuote(k)
			}
		}
	}
	return ""
}

// stringField is a field of Line that holds a Bytes, or a map of them
// (pairs).
type stringField struct {
	name  string
	index int
	pairs bool
}

// bytesFields are the fields of Line that hold a Bytes or a map of them,
// in the order of Line.
var bytesFields = func() (fields []stringField) {
	t := reflect.TypeFor[Line]()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch f.Type {
		case reflect.TypeFor[Bytes]():
			fields = append(fields, stringField{name, i, false})
		case reflect.TypeFor[map[string]Bytes]():
			fields = append(fields, stringField{name, i, true})
		}
	}
	return fields
}()

// fieldOf names the string of the line whose JSON is bad, a Bytes that
// could not be read, for Parse's error: "user_agent", or "values" "cart".
func fieldOf(line, bad []byte) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(line, &fields) != nil {
		return "a string"
	}
	for _, f := range bytesFields {
		v := fields[f.name]
		if !f.pairs {
			if bytes.Equal(v, bad) {
				return mustQuote(f.name)
			}
			continue
		}
		var pairs map[string]json.RawMessage
		if json.Unmarshal(v, &pairs) != nil {
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(pairs)) {
			if bytes.Equal(pairs[k], bad) {
				return mustQuote(f.name) + " " + mustQuote(k)
			}
		}
	}
	return "a string"
}
