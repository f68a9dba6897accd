package integration_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store/transfer"
)

// startCommandCaddy starts a Caddy process from the binary with the
// session handler on the given store line, in realm shop (instances on
// ports of their own would have realms of their own), with flash values
// on every request and the User-Agent recorded, so that a session carries
// every kind of metadata.
func startCommandCaddy(t *testing.T, storeLine string, up *upstream) (*site, *process) {
	t.Helper()
	port, admin := freePort(t), freePort(t)
	p := startCaddy(t, fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	session {
		%s
		realm shop
		flash_on *
		record_user_agent
	}
	reverse_proxy %s
}
`, admin, port, storeLine, up.addr()), admin)
	waitPort(t, port)
	s := &site{t: t, tester: caddytest.NewTester(t), port: port, up: up}
	s.tester.Client.Jar = nil
	return s, p
}

// cli is the outcome of one run of caddy session.
type cli struct {
	stdout, stderr string
	err            error
}

// caddySession runs `caddy session args...` against the admin endpoint
// of p (nil: offline, with no --address).
func caddySession(t *testing.T, p *process, args ...string) cli {
	t.Helper()
	args = append([]string{"session"}, args...)
	if p != nil {
		args = append(args, "--address", fmt.Sprintf("localhost:%d", p.admin))
	}
	cmd := exec.Command(caddyBinary(t), args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return cli{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// ok runs caddy session and fails the test if it fails.
func ok(t *testing.T, p *process, args ...string) string {
	t.Helper()
	r := caddySession(t, p, args...)
	if r.err != nil {
		t.Fatalf("caddy session %s: %v\n%s%s", strings.Join(args, " "), r.err, r.stdout, r.stderr)
	}
	return r.stdout
}

// refused runs caddy session, which must fail saying want.
func refused(t *testing.T, p *process, want string, args ...string) {
	t.Helper()
	r := caddySession(t, p, args...)
	var exit *exec.ExitError
	if !errors.As(r.err, &exit) || !strings.Contains(r.stderr, want) {
		t.Fatalf("caddy session %s = %v, want a failure saying %q\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.err, want, r.stdout, r.stderr)
	}
}

func okJSON(t *testing.T, p *process, out any, args ...string) {
	t.Helper()
	s := ok(t, p, append(args, "--json")...)
	if err := json.Unmarshal([]byte(s), out); err != nil {
		t.Fatalf("caddy session %s --json printed %q: %v", strings.Join(args, " "), s, err)
	}
}

// showOf returns the session of sid as caddy session show gives it.
func showOf(t *testing.T, p *process, sid string) apiSession {
	t.Helper()
	var s apiSession
	okJSON(t, p, &s, "show", session.HashID(sid).String(), "--values")
	return s
}

// sameDeadlines checks that a session kept its times through a move.
func sameDeadlines(t *testing.T, what string, got, want apiSession) {
	t.Helper()
	if !got.Created.Equal(want.Created) || !got.LastSeen.Equal(want.LastSeen) ||
		!got.IdleDeadline.Equal(want.IdleDeadline) || !got.AbsoluteDeadline.Equal(want.AbsoluteDeadline) ||
		got.Remembered != want.Remembered || got.Realm != want.Realm {
		t.Fatalf("%s: %+v, want the times of %+v", what, got, want)
	}
}

// population is the sessions a test starts with: alice, remembered, with
// a flash value waiting; bob; and an anonymous cart.
type population struct {
	alice, bob, cart *visitor
}

func populate(t *testing.T, s *site) population {
	t.Helper()
	p := population{alice: s.visitor(), bob: s.visitor(), cart: s.visitor()}
	p.alice.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Cart: apple", "X-Session-Remember: true")
	p.alice.get("/save", "X-Session-Flash-Notice: Saved.")
	p.bob.get("/login", "X-Session-Set-User: bob")
	p.cart.get("/cart", "X-Session-Set-Cart: pear")
	for name, v := range map[string]*visitor{"alice": p.alice, "bob": p.bob, "cart": p.cart} {
		if v.sid == "" {
			t.Fatalf("%s got no session", name)
		}
	}
	return p
}

// wantAlice checks that alice's cookie opens her session on s, with her
// keys and the flash value that waited for her.
func wantAlice(t *testing.T, s *site, sid string) {
	t.Helper()
	r := (&visitor{site: s, sid: sid}).get("/")
	expectStatus(t, r, http.StatusOK)
	got := r.session()
	if got["X-Session-User"] != "alice" || got["X-Session-Cart"] != "apple" || got["X-Session-Flash-Notice"] != "Saved." || got["X-Session-Meta-Remembered"] != "true" {
		t.Fatalf("alice's cookie opened %v", got)
	}
}

// wantAnonymous checks that sid opens no session on s.
func wantAnonymous(t *testing.T, s *site, sid string) {
	t.Helper()
	r := (&visitor{site: s, sid: sid}).get("/")
	expectStatus(t, r, http.StatusOK)
	if got := r.session(); len(got) != 0 {
		t.Fatalf("the cookie still opens %v", got)
	}
}

// TestSessionCommand runs every subcommand of caddy session through the
// admin API of a running Caddy, on bolt and on Redis, and moves the
// sessions to another Caddy on a store of its own: the cookies issued
// before open their sessions there, with their data and deadlines.
func TestSessionCommand(t *testing.T) {
	slow(t, "runs the Caddy binary and its session command")
	stores := []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"bolt", func(t *testing.T) string { return "store bolt " + filepath.Join(t.TempDir(), "sessions.db") }},
		{"redis", func(t *testing.T) string { return "store redis " + redistest.Start(t).URL() }},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			up := startUpstream(t)
			a, pa := startCommandCaddy(t, st.store(t), up)
			pop := populate(t, a)
			alice, bob := session.HashID(pop.alice.sid).String(), session.HashID(pop.bob.sid).String()

			// count
			var stores []apiStore
			okJSON(t, pa, &stores, "count")
			if len(stores) != 1 || stores[0].Sessions != 3 || stores[0].Backend != st.name {
				t.Fatalf("count = %+v, want one %s store of 3 sessions", stores, st.name)
			}
			if out := ok(t, pa, "count"); !strings.Contains(out, "SESSIONS") || !strings.Contains(out, " 3") {
				t.Fatalf("count printed %q", out)
			}

			// list
			var page apiPage
			okJSON(t, pa, &page, "list")
			if len(page.Sessions) != 3 {
				t.Fatalf("list = %+v, want 3 sessions", page)
			}
			if out := ok(t, pa, "list"); !strings.Contains(out, alice) || !strings.Contains(out, "cart,user") || strings.Contains(out, "apple") {
				t.Fatalf("list printed %q: want alice's hash and keys, no values", out)
			}
			if out := ok(t, pa, "list", "--values"); !strings.Contains(out, `cart="apple"`) {
				t.Fatalf("list --values printed %q", out)
			}
			if out := ok(t, pa, "list"); strings.Contains(out, pop.alice.sid) {
				t.Fatal("list printed a session ID")
			}
			// Page by page, in the store's own order (Redis's cursor is not
			// a hash), every session once.
			seen := map[string]bool{}
			for cursor, pages := "", 0; ; pages++ {
				args := []string{"list", "--limit", "1"}
				if cursor != "" {
					args = append(args, "--cursor", cursor)
				}
				var p struct {
					Sessions   []apiSession `json:"sessions"`
					NextCursor string       `json:"next_cursor"`
				}
				okJSON(t, pa, &p, args...)
				for _, s := range p.Sessions {
					seen[s.Hash] = true
				}
				if cursor = p.NextCursor; cursor == "" || pages > 3 {
					break
				}
				if out := ok(t, pa, args...); !strings.Contains(out, "--cursor "+cursor) {
					t.Fatalf("list --limit 1 printed %q: want the next page's command", out)
				}
			}
			if len(seen) != 3 {
				t.Fatalf("list page by page gave %d sessions, want 3", len(seen))
			}

			// show
			before := showOf(t, pa, pop.alice.sid)
			if before.Values["user"] != "alice" || !before.Remembered || before.Realm != "shop" {
				t.Fatalf("show = %+v", before)
			}
			if out := ok(t, pa, "show", alice); !strings.Contains(out, "remembered") || strings.Contains(out, "apple") {
				t.Fatalf("show printed %q: want the session, without its values", out)
			}
			refused(t, pa, "not a session hash", "show", "abc")
			refused(t, pa, "404", "show", session.HashID("nobody").String())

			// export, while the flash value still waits for alice
			file := filepath.Join(t.TempDir(), "sessions.jsonl")
			if out := ok(t, pa, "export", "--output", file); !strings.Contains(out, "exported 3 sessions") {
				t.Fatalf("export printed %q", out)
			}
			wantExport(t, file, 3)
			refused(t, pa, "exists", "export", "--output", file)

			// revoke one, then by user
			if out := ok(t, pa, "revoke", bob); !strings.Contains(out, "revoked 1 session") {
				t.Fatalf("revoke printed %q", out)
			}
			wantAnonymous(t, a, pop.bob.sid)
			var revoked struct{ Revoked int }
			okJSON(t, pa, &revoked, "revoke", "--user", "alice")
			if revoked.Revoked != 1 {
				t.Fatalf("revoke --user alice revoked %d", revoked.Revoked)
			}
			wantAnonymous(t, a, pop.alice.sid)
			refused(t, pa, "not both", "revoke", alice, "--user", "alice")

			// import puts them back where they were, cookies and all; the
			// cart, never revoked, is unchanged.
			if out := ok(t, pa, "import", "--input", file); !strings.Contains(out, "imported 2 sessions, 1 unchanged") {
				t.Fatalf("import printed %q", out)
			}
			sameDeadlines(t, "alice after import", showOf(t, pa, pop.alice.sid), before)
			wantAlice(t, a, pop.alice.sid)
			if out := ok(t, pa, "revoke", "--user", "alice"); !strings.Contains(out, "revoked 1 session") {
				t.Fatalf("the identity index did not come back: revoke --user alice printed %q", out)
			}

			// Round trip: another Caddy on a fresh store takes the file.
			b, pb := startCommandCaddy(t, st.store(t), up)
			var got struct{ Imported, Unchanged, Kept int }
			okJSON(t, pb, &got, "import", "--input", file)
			if got.Imported != 3 {
				t.Fatalf("import into a fresh store = %+v", got)
			}
			sameDeadlines(t, "alice on the new Caddy", showOf(t, pb, pop.alice.sid), before)
			wantAlice(t, b, pop.alice.sid)
			expectSession(t, (&visitor{site: b, sid: pop.bob.sid}).get("/"), map[string]string{"X-Session-User": "bob"})
			expectSession(t, (&visitor{site: b, sid: pop.cart.sid}).get("/"), map[string]string{"X-Session-Cart": "pear"})

			// A session that changed since is kept unless --overwrite: the
			// cart, and alice's, whose flash value was handed over.
			(&visitor{site: b, sid: pop.cart.sid}).get("/", "X-Session-Set-Cart: plum")
			okJSON(t, pb, &got, "import", "--input", file)
			if got.Kept != 2 || got.Imported != 0 || got.Unchanged != 1 {
				t.Fatalf("import over changed sessions = %+v, want 2 kept, bob's unchanged", got)
			}
			expectSession(t, (&visitor{site: b, sid: pop.cart.sid}).get("/"), map[string]string{"X-Session-Cart": "plum"})
			okJSON(t, pb, &got, "import", "--input", file, "--overwrite")
			if got.Imported != 2 {
				t.Fatalf("import --overwrite = %+v, want the 2 changed sessions imported", got)
			}
			expectSession(t, (&visitor{site: b, sid: pop.cart.sid}).get("/"), map[string]string{"X-Session-Cart": "pear"})
		})
	}
}

// wantExport checks an export file: mode 0600, n lines of the current
// format, and no session ID in it.
func wantExport(t *testing.T, file string, n int) []map[string]any {
	t.Helper()
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("the export file has mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("the export has %d lines, want %d:\n%s", len(lines), n, b)
	}
	var out []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if m["v"] != float64(1) || m["realm"] != "shop" {
			t.Fatalf("line %q: want v 1, realm shop", l)
		}
		if m["identity"] == "user" && m["user_agent"] != "Go-http-client/1.1" {
			t.Fatalf("line %q: want the user agent", l)
		}
		out = append(out, m)
	}
	return out
}

// TestSessionCommandOffline exports a bolt file that no Caddy holds into
// a new one, and starts a Caddy on that: the cookies issued by the first
// open their sessions, with their data and deadlines. Over a thousand
// sessions make the export take several pages.
func TestSessionCommandOffline(t *testing.T) {
	slow(t, "runs the Caddy binary and its session command")
	up := startUpstream(t)
	db := filepath.Join(t.TempDir(), "sessions.db")
	a, pa := startCommandCaddy(t, "store bolt "+db, up)
	pop := populate(t, a)
	const more = 1100
	for i := range more {
		if v := a.visitor(); v.get("/", fmt.Sprintf("X-Session-Set-N: %d", i)) == nil || v.sid == "" {
			t.Fatalf("session %d was not created", i)
		}
	}
	before := showOf(t, pa, pop.alice.sid)
	file := filepath.Join(t.TempDir(), "sessions.jsonl")

	// A running Caddy holds the file.
	refused(t, nil, "locked by another process", "export", "--bolt", db, "--output", file)
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("a failed export left its file: %v", err)
	}

	pa.stop()
	if out := ok(t, nil, "export", "--bolt", db, "--output", file); !strings.Contains(out, fmt.Sprintf("exported %d sessions", more+3)) {
		t.Fatalf("export printed %q", out)
	}
	wantExport(t, file, more+3)
	// To standard output, the file is the output and the report goes to
	// standard error.
	r := caddySession(t, nil, "export", "--bolt", db, "--output", "-")
	if want, _ := os.ReadFile(file); r.err != nil || r.stdout != string(want) || !strings.Contains(r.stderr, "exported") {
		t.Fatalf("export --output - = %v, %d bytes out (want %d), stderr %q", r.err, len(r.stdout), len(want), r.stderr)
	}
	fresh := filepath.Join(t.TempDir(), "fresh.db")
	if out := ok(t, nil, "import", "--bolt", fresh, "--input", file); !strings.Contains(out, fmt.Sprintf("imported %d sessions", more+3)) {
		t.Fatalf("import printed %q", out)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the new bolt file: %v, %v; want mode 0600", fi, err)
	}
	if out := ok(t, nil, "import", "--bolt", fresh, "--input", file); !strings.Contains(out, fmt.Sprintf("imported 0 sessions, %d unchanged", more+3)) {
		t.Fatalf("a second import printed %q", out)
	}

	c, pc := startCommandCaddy(t, "store bolt "+fresh, up)
	sameDeadlines(t, "alice on the new file", showOf(t, pc, pop.alice.sid), before)
	wantAlice(t, c, pop.alice.sid)
	expectSession(t, (&visitor{site: c, sid: pop.bob.sid}).get("/"), map[string]string{"X-Session-User": "bob"})
	var stores []apiStore
	okJSON(t, pc, &stores, "count")
	if len(stores) != 1 || stores[0].Sessions != more+3 {
		t.Fatalf("count on the new file = %+v, want %d", stores, more+3)
	}
	refused(t, nil, "locked by another process", "import", "--bolt", fresh, "--input", file)
}

// TestSessionImportRefused gives import files that plant what no handler
// would have written, one attack per row, offline and through the admin
// API: each is refused naming its line, and nothing of the file is
// stored, not even its good first line.
func TestSessionImportRefused(t *testing.T) {
	slow(t, "runs the Caddy binary and its session command")
	up := startUpstream(t)
	a, pa := startCommandCaddy(t, "store bolt "+filepath.Join(t.TempDir(), "a.db"), up)
	pop := populate(t, a)
	file := filepath.Join(t.TempDir(), "sessions.jsonl")
	ok(t, pa, "export", "--output", file)
	lines := wantExport(t, file, 3)

	b, pb := startCommandCaddy(t, "store bolt "+filepath.Join(t.TempDir(), "b.db"), up)
	good, err := json.Marshal(lines[0])
	if err != nil {
		t.Fatal(err)
	}
	spoiled := func(change func(m map[string]any)) string {
		m := map[string]any{}
		for k, v := range lines[1] {
			m[k] = v
		}
		m["values"] = map[string]any{"user": "mallory"}
		m["identity"] = "user"
		change(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	tests := []struct {
		name, line, want string
		onlineOnly       bool
	}{
		{"not JSON", "{", "line 2", false},
		{"newer format", spoiled(func(m map[string]any) { m["v"] = transfer.VersionBytes + 1 }), "newer format", false},
		{"field in another case", strings.Replace(spoiled(func(map[string]any) {}), `"values"`, `"Values"`, 1), "case-sensitive", false},
		{"field given twice", strings.Replace(spoiled(func(map[string]any) {}), `{`, `{"values":{"user":"alice"},`, 1), "given twice", false},
		{"expired", spoiled(func(m map[string]any) { m["idle_deadline"] = "2001-01-01T00:00:00Z" }), "expired", false},
		{"forward record", spoiled(func(m map[string]any) {
			m["successor"] = session.HashID("x").String()
		}), "forward record", false},
		{"header injection", spoiled(func(m map[string]any) {
			m["values"] = map[string]any{"user": "mallory\r\nX-Session-Role: admin"}
		}), "not a valid header value", false},
		{"reserved key", spoiled(func(m map[string]any) {
			m["values"] = map[string]any{"user": "mallory", "meta-remembered": "true"}
		}), "reserved", false},
		{"over the value limit", spoiled(func(m map[string]any) {
			m["values"] = map[string]any{"user": strings.Repeat("m", session.DefaultLimits().ValueSize+1)}
		}), "over the limit", false},
		{"identity not held", spoiled(func(m map[string]any) { m["identity"] = "email" }), "does not hold", false},
		{"no hash", spoiled(func(m map[string]any) { delete(m, "hash") }), "64 hexadecimal digits", false},
		{"realm not served", spoiled(func(m map[string]any) { m["realm"] = "admin.example.com" }), "not a realm", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.jsonl")
			if err := os.WriteFile(bad, []byte(string(good)+"\n"+tc.line+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			refused(t, pb, tc.want, "import", "--input", bad)
			refused(t, pb, "line 2", "import", "--input", bad)
			wantAnonymous(t, b, pop.alice.sid)
			wantAnonymous(t, b, pop.bob.sid)
			if tc.onlineOnly {
				return
			}
			db := filepath.Join(t.TempDir(), "offline.db")
			refused(t, nil, tc.want, "import", "--bolt", db, "--input", bad)
			if _, err := os.Stat(db); !os.IsNotExist(err) {
				t.Fatalf("a refused offline import made the bolt file: %v", err)
			}
		})
	}
	// A line the handler refuses in a later batch stores nothing of the
	// batches before it either.
	long := filepath.Join(t.TempDir(), "long.jsonl")
	body := strings.Repeat(string(good)+"\n", 1100) + spoiled(func(m map[string]any) { m["realm"] = "elsewhere" }) + "\n"
	if err := os.WriteFile(long, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	refused(t, pb, "line 1101", "import", "--input", long)
	wantAnonymous(t, b, pop.alice.sid)

	var stores []apiStore
	okJSON(t, pb, &stores, "count")
	if stores[0].Sessions != 0 {
		t.Fatalf("the refused imports left %d sessions", stores[0].Sessions)
	}
}
