package transfer

import (
	"bytes"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// TestRoundTripObsText: a response may set a value holding obs-text, bytes
// 0x80 to 0xFF that are not UTF-8 (a Latin-1 "café" from an old app): it is
// a valid header value, and the store keeps it byte for byte. A client's
// User-Agent may hold such bytes too. "An import puts back exactly what an
// export took", but a line is JSON, and encoding/json writes every byte
// that is not UTF-8 as U+FFFD: the import stores other bytes than the
// session held, and says nothing.
func TestRoundTripObsText(t *testing.T) {
	const latin1 = "caf\xe9"
	if !httpguts.ValidHeaderFieldValue(latin1) {
		t.Fatal("the test's value is no header value")
	}
	e := entry()
	e.Record.Values["user"] = "jos\xe9"
	e.Record.Values["cart"] = latin1
	e.Record.Flash["notice"] = "d\xe9j\xe0 vu"
	e.Record.UserAgent = "Mozilla/5.0 (\xff)"
	var buf bytes.Buffer
	if err := Write(&buf, e); err != nil {
		t.Fatalf("export refused the session: %v", err) // a refusal that says so would be a fix
	}
	got, err := NewReader(&buf, 1).Next()
	if err != nil {
		return // refused on import, saying so: no silent change
	}
	for k, want := range e.Record.Values {
		if got.Record.Values[k] != want {
			t.Errorf("value of %q: exported %q, imported %q", k, want, got.Record.Values[k])
		}
	}
	if got.Record.Flash["notice"] != e.Record.Flash["notice"] {
		t.Errorf("flash value: exported %q, imported %q", e.Record.Flash["notice"], got.Record.Flash["notice"])
	}
	if got.Record.UserAgent != e.Record.UserAgent {
		t.Errorf("user agent: exported %q, imported %q", e.Record.UserAgent, got.Record.UserAgent)
	}
}
