package transfer

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-session/caddy-session/store"
)

// sameEntry reports whether a and b are the same session, byte for byte,
// sealing included.
func sameEntry(a, b store.Entry) bool {
	return a.Hash == b.Hash && a.Identity == b.Identity && store.SameRecord(a.Record, b.Record) &&
		a.Record.Sealed == b.Record.Sealed && a.Record.IdentityTag() == b.Record.IdentityTag()
}

// roundTrip writes e and reads it back, and returns the line too.
func roundTrip(t *testing.T, e store.Entry) (store.Entry, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, e); err != nil {
		t.Fatalf("writing: %v", err)
	}
	line := buf.String()
	got, err := NewReader(&buf, 1).Next()
	if err != nil {
		t.Fatalf("reading back %s: %v", line, err)
	}
	return got, line
}

// TestRoundTripNotUTF8 puts bytes that are not UTF-8 in each string of a
// session, one per row: the line carries them as {"base64": ...} in a
// line of version 3, and reads back byte for byte; UTF-8, however
// unusual, stays a JSON string in a line of the version it had.
func TestRoundTripNotUTF8(t *testing.T) {
	sealed := func(e *store.Entry) {
		e.Record.Sealed = true
		e.Record.SetIdentityTag("3q2-7w")
	}
	tests := []struct {
		name   string
		change func(e *store.Entry)
		v      int
		want   string // in the line
	}{
		{"value", func(e *store.Entry) { e.Record.Values["cart"] = "caf\xe9" }, 3, `"cart":{"base64":"Y2Fm6Q=="}`},
		{"identity value", func(e *store.Entry) { e.Record.Values["user"] = "jos\xe9" }, 3, `"user":{"base64":"am9z6Q=="}`},
		{"every byte", func(e *store.Entry) { e.Record.Values["cart"] = "\x80\xbf\xc0\xc1\xf5\xff" }, 3, `"cart":{"base64":"gL/AwfX/"}`},
		{"cut UTF-8", func(e *store.Entry) { e.Record.Values["cart"] = "caf\xc3" }, 3, `{"base64":"Y2Fmww=="}`},
		{"UTF-8 of a surrogate", func(e *store.Entry) { e.Record.Values["cart"] = "\xed\xa0\x80" }, 3, `{"base64":"7aCA"}`},
		{"flash value", func(e *store.Entry) { e.Record.Flash["notice"] = "d\xe9j\xe0 vu" }, 3, `"notice":{"base64":`},
		{"user agent", func(e *store.Entry) { e.Record.UserAgent = "Mozilla/5.0 (\xff)" }, 3, `"user_agent":{"base64":`},
		{"client network", func(e *store.Entry) { e.Record.ClientNet = "\xff" }, 3, `"client_net":{"base64":"/w=="}`},
		{"realm", func(e *store.Entry) { e.Record.Realm = "caf\xe9.example@:443" }, 3, `"realm":{"base64":`},
		{"identity key", func(e *store.Entry) { e.Identity = "us\xe9r" }, 3, `"identity":{"base64":`},
		{"sealed, realm", func(e *store.Entry) { sealed(e); e.Record.Realm = "\xe9" }, 3, `"realm":{"base64":"6Q=="}`},
		{"sealed, identity tag", func(e *store.Entry) { sealed(e); e.Record.SetIdentityTag("\xe9") }, 3, `"identity_tag":{"base64":"6Q=="}`},
		{"sealed, bytes sealed", func(e *store.Entry) { sealed(e); e.Record.Values["cart"] = "\x01\xff\x00" }, 2, `"cart":"Af8A"`},
		{"UTF-8", func(e *store.Entry) { e.Record.Values["cart"] = "café ☕ \U0001F600" }, 1, `"cart":"café ☕ 😀"`},
		{"U+FFFD itself", func(e *store.Entry) { e.Record.Values["cart"] = "caf\uFFFD" }, 1, `"cart":"caf�"`},
		{"HTML", func(e *store.Entry) { e.Record.Values["cart"] = "<a&b>" }, 1, `"cart":"\u003ca\u0026b\u003e"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := entry()
			tc.change(&e)
			got, line := roundTrip(t, e)
			if !sameEntry(got, e) {
				t.Errorf("exported %+v %+v\nimported %+v %+v", e, e.Record, got, got.Record)
			}
			var head struct{ V int }
			if err := json.Unmarshal([]byte(line), &head); err != nil || head.V != tc.v {
				t.Errorf(`the line has "v" %d (%v), want %d: %s`, head.V, err, tc.v, line)
			}
			if !strings.Contains(line, tc.want) {
				t.Errorf("the line %s has no %s", line, tc.want)
			}
		})
	}
}

// TestOldLines reads lines as the version before VersionBytes wrote them:
// they import as they did, and are written again as they were, so that
// an earlier Caddy imports what this one exports of a session of UTF-8.
// The first line is of a session that held "caf\xe9", which that version
// wrote as \ufffd: what the file says, U+FFFD, is what is imported, and
// written again as the character, as a U+FFFD the session held always
// was.
func TestOldLines(t *testing.T) {
	const times = `"created":"2025-03-14T08:26:53.589793238Z","last_seen":"2025-03-14T08:26:53.589793238Z","idle_deadline":"2025-03-14T08:56:53.589793238Z","absolute_deadline":"2025-03-14T20:26:53.589793238Z",`
	tests := []struct {
		name, line string
		change     func(e *store.Entry)
		again      func(line string) string // the line written again; nil: the same
	}{
		{"plain", `{"v":1,"hash":"a56145270ce6b3bebd1dd012b73948677dd618d496488bc608a3cb43ce3547dd","realm":"example.com@:443",` + times +
			`"remembered":true,"flash":{"notice":"Saved."},"user_agent":"Mozilla/5.0","client_net":"198.51.100.0/24","identity":"user","values":{"cart":"caf\ufffd","user":"alice"}}`,
			func(e *store.Entry) { e.Record.Values["cart"] = "caf\uFFFD" },
			func(line string) string { return strings.Replace(line, `\ufffd`, "\uFFFD", 1) }},
		{"sealed", `{"v":2,"hash":"a56145270ce6b3bebd1dd012b73948677dd618d496488bc608a3cb43ce3547dd","realm":"example.com@:443",` + times +
			`"remembered":true,"flash":{"notice":"U2F2ZWQu"},"user_agent":"TW96aWxsYS81LjA=","client_net":"MTk4LjUxLjEwMC4wLzI0","identity":"user","values":{"cart":"YXBwbGU=","user":"YWxpY2U="},"sealed":true,"identity_tag":"tag_-x"}`,
			func(e *store.Entry) { e.Record.Sealed = true; e.Record.SetIdentityTag("tag_-x") }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := entry()
			tc.change(&want)
			got, err := NewReader(strings.NewReader(tc.line+"\n"), 1).Next()
			if err != nil {
				t.Fatal(err)
			}
			if !sameEntry(got, want) {
				t.Fatalf("read %+v %+v\nwant %+v %+v", got, got.Record, want, want.Record)
			}
			again := tc.line
			if tc.again != nil {
				again = tc.again(tc.line)
			}
			var buf bytes.Buffer
			if err := Write(&buf, got); err != nil || buf.String() != again+"\n" {
				t.Fatalf("written again as %s (%v), want it as it was", buf.String(), err)
			}
		})
	}
}

// TestBytesFormRefused gives lines whose strings are spelled otherwise
// than Write spells them, one per row: each is refused, saying what is
// wrong and where, rather than read as some bytes.
func TestBytesFormRefused(t *testing.T) {
	e := entry()
	e.Record.Values["cart"] = "caf\xe9"
	_, line := roundTrip(t, e)
	line = strings.TrimSpace(line)
	const form = `{"base64":"Y2Fm6Q=="}`
	if !strings.Contains(line, `"v":3,`) || !strings.Contains(line, form) {
		t.Fatalf("the line %s has no %s", line, form)
	}
	cart := func(spelled string) string { return strings.Replace(line, form, spelled, 1) }
	// at is the place in the line, counted from 1, of the n-th byte of
	// the cart's value, counted from 0.
	at := func(n int) string { return strconv.Itoa(strings.Index(line, form) + n + 1) }
	tests := []struct {
		name, line, want string
	}{
		{"tag misspelled", cart(`{"base46":"Y2Fm6Q=="}`), `"values" "cart": {"base46":"Y2Fm6Q=="}: bytes that are not UTF-8 are written as {"base64": "..."}, with no field "base46"`},
		{"tag in another case", cart(`{"Base64":"Y2Fm6Q=="}`), `field names are case-sensitive`},
		{"tag twice", cart(`{"base64":"Y2Fm6Q==","base64":"YQ=="}`), `given twice`},
		{"another field", cart(`{"base64":"Y2Fm6Q==","charset":"latin1"}`), `with no field "charset"`},
		{"no tag", cart(`{}`), `"base64" is missing`},
		{"tag null", cart(`{"base64":null}`), `"base64" is missing`},
		{"tag not a string", cart(`{"base64":1}`), `"values" "cart"`},
		{"not base64", cart(`{"base64":"caf\u00e9"}`), `not standard base64`},
		{"unpadded", cart(`{"base64":"Y2Fm6Q"}`), `not standard base64`},
		{"URL alphabet", cart(`{"base64":"_w=="}`), `not standard base64`},
		{"broken over lines", cart(`{"base64":"Y2Fm\n6Q=="}`), `not standard base64`},
		{"UTF-8 in the tagged form", cart(`{"base64":"YXBwbGU="}`), `which is written as the JSON string "apple"`},
		{"an array", cart(`["Y2Fm6Q=="]`), `a string is a JSON string, or {"base64": "..."}`},
		{"user agent", strings.Replace(line, `"user_agent":"Mozilla/5.0"`, `"user_agent":{"base64":"%"}`, 1), `"user_agent": {"base64":"%"}`},
		{"tagged in version 1", strings.Replace(line, `"v":3,`, `"v":1,`, 1), `"values" "cart" is {"base64": "..."}, bytes that are not UTF-8, which only a line of version 3 carries: "v" is 1; make it 3`},
		{"tagged in version 2", strings.Replace(line, `"v":3,`, `"v":2,"sealed":true,`, 1), `only a line of version 3 carries: "v" is 2`},
		{"raw byte not UTF-8", cart("\"caf\xe9\""), `byte ` + at(4) + ` is not UTF-8`},
		{"lone low surrogate", cart(`"caf\udce9"`), `\udce9 at byte ` + at(4) + ` is half a UTF-16 surrogate pair`},
		{"lone high surrogate", cart(`"caf\ud83d"`), `\ud83d at byte ` + at(4) + ` is half`},
		{"high surrogate, then no low one", cart(`"\ud83d\u0041"`), `\ud83d at byte ` + at(1) + ` is half`},
		{"two high surrogates", cart(`"\ud83d\ud83d"`), `is half a UTF-16 surrogate pair`},
		{"negative version", strings.Replace(line, `"v":3,`, `"v":-1,`, 1), `this Caddy reads versions 1 to 3`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReader(strings.NewReader("\n"+tc.line+"\n"), 1).Next()
			var le *LineError
			if !errors.As(err, &le) || le.Line != 2 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("reading %s:\n%v\nwant an error on line 2 saying %s", tc.line, err, tc.want)
			}
		})
	}
}

// TestEscapesRead: escapes that name characters, a surrogate pair among
// them, read as those characters; only half a pair is refused.
func TestEscapesRead(t *testing.T) {
	var buf bytes.Buffer
	_ = Write(&buf, entry())
	line := strings.Replace(buf.String(), `"cart":"apple"`, `"cart":"\ud83d\ude00 \u00e9 \\udce9 \ufffd"`, 1)
	got, err := NewReader(strings.NewReader(line), 1).Next()
	if err != nil {
		t.Fatal(err)
	}
	if want := "\U0001F600 é \\udce9 \uFFFD"; got.Record.Values["cart"] != want {
		t.Fatalf("read %q, want %q", got.Record.Values["cart"], want)
	}
}

// TestEveryStringIsBytes: every field of a line that holds a string is a
// Bytes, or a map of them, so that a field added later carries bytes
// exactly too; hash and successor are hex, which Entry parses.
func TestEveryStringIsBytes(t *testing.T) {
	parsed := map[string]bool{"hash": true, "successor": true}
	for f := range reflect.TypeFor[Line]().Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case parsed[name], f.Type == reflect.TypeFor[Bytes](), f.Type == reflect.TypeFor[map[string]Bytes]():
		case f.Type.Kind() == reflect.String, f.Type.Kind() == reflect.Map:
			t.Errorf("field %q is a %v: make it a Bytes, or a map of them", name, f.Type)
		}
	}
}
