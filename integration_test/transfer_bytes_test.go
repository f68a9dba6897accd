package integration_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSessionExportImportNotUTF8 moves a session whose value and
// User-Agent hold obs-text, bytes that are not UTF-8 (a Latin-1 "café"),
// with caddy session export and import, through the admin API and
// offline: every export of it is the same line, byte for byte, and the app
// behind the new Caddy gets the value the app behind the old one set. The
// admin API's views show such bytes as U+FFFD, as JSON does.
func TestSessionExportImportNotUTF8(t *testing.T) {
	slow(t, "runs the Caddy binary and its session command")
	const cart, ua = "caf\xe9", "Mozilla/5.0 (\xff)"
	// The app answers with the bytes of X-Session-Cart, which the harness
	// upstream's JSON would turn into U+FFFD.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(obeyOrders(w, r))
		_, _ = w.Write([]byte(r.Header.Get("X-Session-Cart")))
	}))
	t.Cleanup(srv.Close)
	up := &upstream{srv}
	wantCart := func(s *site, sid string) {
		t.Helper()
		r := (&visitor{site: s, sid: sid}).get("/")
		expectStatus(t, r, http.StatusOK)
		if string(r.body) != cart {
			t.Fatalf("the app got X-Session-Cart %q, want %q", r.body, cart)
		}
	}
	read := func(file string) string {
		t.Helper()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	a, pa := startCommandCaddy(t, "store bolt "+filepath.Join(t.TempDir(), "a.db"), up)
	v := a.visitor()
	v.do(http.MethodGet, "/", "Test-Header", "X-Session-Set-Cart: "+cart, "User-Agent", ua)
	if v.sid == "" {
		t.Fatal("no session was created")
	}
	wantCart(a, v.sid)
	if got := showOf(t, pa, v.sid).Values["cart"]; got != "caf\uFFFD" {
		t.Fatalf("caddy session show --values shows %q, want U+FFFD for the byte", got)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "a.jsonl")
	ok(t, pa, "export", "--output", file)
	line := read(file)
	for _, want := range []string{`"v":3,`, `"cart":{"base64":"Y2Fm6Q=="}`, `"user_agent":{"base64":"TW96aWxsYS81LjAgKP8p"}`} {
		if !strings.Contains(line, want) {
			t.Fatalf("the export %s has no %s", line, want)
		}
	}

	// Through the admin API of another Caddy, and back out of it.
	b, pb := startCommandCaddy(t, "store bolt "+filepath.Join(t.TempDir(), "b.db"), up)
	if out := ok(t, pb, "import", "--input", file); !strings.Contains(out, "imported 1 session") {
		t.Fatalf("import printed %q", out)
	}
	again := filepath.Join(dir, "b.jsonl")
	ok(t, pb, "export", "--output", again)
	if got := read(again); got != line {
		t.Fatalf("exported from the new Caddy:\n%s\nfrom the old one:\n%s", got, line)
	}
	wantCart(b, v.sid)

	// Offline, on a bolt file.
	db := filepath.Join(t.TempDir(), "c.db")
	ok(t, nil, "import", "--bolt", db, "--input", file)
	offline := filepath.Join(dir, "c.jsonl")
	ok(t, nil, "export", "--bolt", db, "--output", offline)
	if got := read(offline); got != line {
		t.Fatalf("exported from the bolt file:\n%s\nwant:\n%s", got, line)
	}
}
