package transfer

import (
	"bytes"
	"strings"
	"testing"

	"github.com/caddy-session/caddy-session/store"
)

// FuzzRoundTrip puts any bytes in every string of a session, plain or
// sealed: what Write writes, a reader reads back byte for byte.
func FuzzRoundTrip(f *testing.F) {
	f.Add("apple", "Saved.", "Mozilla/5.0", "198.51.100.0/24", "example.com@:443", "user", false)
	f.Add("caf\xe9", "d\xe9j\xe0 vu", "Mozilla/5.0 (\xff)", "\x80", "caf\xe9@:443", "us\xe9r", false)
	f.Add("caf\xe9", "\x00\xff", "", "", "\xed\xa0\x80", "", true)
	f.Add("\ufffd", "\\udce9", `{"base64":"6Q=="}`, "\u2028<&>", "", "", false)
	f.Fuzz(func(t *testing.T, value, flash, ua, clientNet, realm, identity string, sealed bool) {
		e := entry()
		e.Record.Values["cart"], e.Record.Flash["notice"] = value, flash
		e.Record.UserAgent, e.Record.ClientNet, e.Record.Realm, e.Identity = ua, clientNet, realm, identity
		if sealed {
			e.Record.Sealed = true
			e.Record.SetIdentityTag(identity)
		}
		var buf bytes.Buffer
		if err := Write(&buf, e); err != nil {
			t.Fatal(err)
		}
		line := buf.String()
		got, err := NewReader(&buf, 1).Next()
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if !sameEntry(got, e) {
			t.Fatalf("exported %+v %+v\nimported %+v %+v\nthrough %s", e, e.Record, got, got.Record, line)
		}
	})
}

// FuzzParse reads any line: one that reads is written again as a line
// that reads as the same session, and is written the same from then on.
func FuzzParse(f *testing.F) {
	var buf bytes.Buffer
	for _, change := range []func(e *store.Entry){
		func(*store.Entry) {},
		func(e *store.Entry) { e.Record.Values["cart"] = "caf\xe9"; e.Record.UserAgent = "\xff" },
		func(e *store.Entry) { e.Record.Sealed = true; e.Record.SetIdentityTag("t") },
		func(e *store.Entry) { e.Record.Sealed = true; e.Record.Realm = "\xe9" },
	} {
		e := entry()
		change(&e)
		buf.Reset()
		_ = Write(&buf, e)
		f.Add(buf.Bytes())
		f.Add(bytes.Replace(buf.Bytes(), []byte(`"cart":`), []byte(`"cart":"\udce9","x":`), 1))
		f.Add(bytes.Replace(buf.Bytes(), []byte(`"base64"`), []byte(`"base46"`), 1))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if bytes.ContainsAny(raw, "\r\n") {
			return // a line ends there
		}
		e, err := NewReader(bytes.NewReader(raw), 1).Next()
		if err != nil {
			return
		}
		var once, twice bytes.Buffer
		if err := Write(&once, e); err != nil {
			return // a time out of JSON's range once in UTC, long expired
		}
		got, err := NewReader(strings.NewReader(once.String()), 1).Next()
		if err != nil {
			t.Fatalf("%s read, and written as %s, which does not: %v", raw, once.String(), err)
		}
		if !sameEntry(got, e) {
			t.Fatalf("%s read as %+v, written as %s, read as %+v", raw, e.Record, once.String(), got.Record)
		}
		if err := Write(&twice, got); err != nil || twice.String() != once.String() {
			t.Fatalf("written as %s, then as %s (%v)", once.String(), twice.String(), err)
		}
	})
}
