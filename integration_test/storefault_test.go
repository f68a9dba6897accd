package integration_test

// Faults of the real bolt store, made by the operating system rather than
// injected: a full disk and a read-only file system, on a small tmpfs the
// test mounts. Mounting needs CAP_SYS_ADMIN (root on a normal machine, as
// in CI); without it these tests skip and say so. Faults of a Redis store
// (stopped, stalled, restarted) are tested with the Redis store.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store/bolt"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory and returns
// it; the mount is detached at the end of the test.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Skipf("cannot mount a tmpfs to make a real disk fault (%v): this test needs CAP_SYS_ADMIN", err)
	}
	t.Cleanup(func() {
		// Lazily: Caddy keeps the file open until the next config loads.
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

// remount changes the flags of the tmpfs at dir.
func remount(t *testing.T, dir string, size int, flags uintptr) error {
	t.Helper()
	return syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|flags, fmt.Sprintf("size=%d,mode=0700", size))
}

// faultSite runs Caddy with a bolt store at db, logging errors to a file,
// and returns the site and the log file.
func faultSite(t *testing.T, db string) (*site, string) {
	t.Helper()
	up := startUpstream(t)
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), up: up, db: db}
	s.tester.Client.Jar = nil
	s.tester.InitServer(faultConfig(s, logFile, db), "caddyfile")
	return s, logFile
}

func faultConfig(s *site, logFile, db string) string {
	return fmt.Sprintf(`{
	admin localhost:%d
	log {
		output file %s
		level ERROR
	}
}
http://127.0.0.1:%d {
	session {
		store bolt %s
	}
	reverse_proxy %s
}
`, adminPort, logFile, s.port, db, s.up.addr())
}

// fill writes a file in dir until the file system is full, then gives
// back the last leave bytes.
func fill(t *testing.T, dir string, leave int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			st, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(max(st.Size()-leave, 0)); err != nil {
				t.Fatal(err)
			}
			return path
		}
	}
}

// TestBoltFullDisk fills the disk under a running bolt store, but for a
// little room. Logins, each
// a patch of two keys in a new session, go on until one cannot be stored:
// it gets a 503 with no session cookie and nothing of the app's answer,
// the log says why, and sessions already made still open. When space is
// freed, the next login works, with no reload. Afterwards the file holds
// every login that was answered 200, whole, none that was answered 503,
// and passes bbolt's check.
func TestBoltFullDisk(t *testing.T) {
	const size = 1 << 20
	dir := mountTmpfs(t, size)
	db := filepath.Join(dir, "sessions.db")
	s, logFile := faultSite(t, db)

	alice := s.visitor()
	expectStatus(t, alice.get("/login", "X-Session-Set-User: alice"), http.StatusOK)
	filler := fill(t, dir, 64<<10) // room for a few logins

	blob := strings.Repeat("b", session.DefaultValueSize)
	stored := map[string]string{} // user -> session ID, answered 200
	var refused []string          // users whose login was answered 503
	for i := 0; len(refused) == 0; i++ {
		if i == 200 {
			t.Fatal("200 logins of 4 KiB each fitted on a full 1 MiB disk")
		}
		user := fmt.Sprintf("user-%d", i)
		v := s.visitor()
		r := v.get("/login", "X-Session-Set-User: "+user, "X-Session-Set-Blob: "+blob, "Set-Cookie: app=1")
		switch r.StatusCode {
		case http.StatusOK:
			stored[user] = v.sid
		case http.StatusServiceUnavailable:
			if v.sid != "" || len(r.Header.Values("Set-Cookie")) != 0 || strings.Contains(string(r.body), "headers") {
				t.Fatalf("the refused login leaked the app's answer: %q %s", r.Header, r.body)
			}
			refused = append(refused, user)
		default:
			t.Fatalf("login %d: status %d", i, r.StatusCode)
		}
	}
	t.Logf("the disk was full after %d logins", len(stored))
	if len(stored) == 0 {
		t.Fatal("no login fitted in the room left: the test shows nothing about sessions made before the fault")
	}
	// Reads need no space.
	expectSession(t, alice.get("/"), map[string]string{"X-Session-User": "alice"})
	logs := waitForText(t, logFile, "writing session to store", "no space left on device")
	for _, id := range stored {
		if strings.Contains(logs, id) {
			t.Fatal("the log holds a raw session ID")
		}
	}

	// The fault clears: the next login works, without a reload.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	after := s.visitor()
	expectStatus(t, after.get("/login", "X-Session-Set-User: after", "X-Session-Set-Blob: "+blob), http.StatusOK)
	stored["after"] = after.sid
	for user, id := range stored {
		r := (&visitor{site: s, sid: id}).get("/")
		if got := r.session(); got["X-Session-User"] != user || got["X-Session-Blob"] != blob {
			t.Errorf("the session of %s lost data: %v", user, r.session()["X-Session-User"])
		}
	}

	// The file itself, once Caddy has let go of it.
	s.reload(faultConfig(s, logFile, filepath.Join(t.TempDir(), "other.db")))
	users := boltUsers(t, db)
	for user := range stored {
		if users[user] != session.DefaultValueSize {
			t.Errorf("the file holds %s with a blob of %d bytes, want a whole session", user, users[user])
		}
	}
	for _, user := range refused {
		if _, ok := users[user]; ok {
			t.Errorf("the refused login of %s is in the file", user)
		}
	}
	checkBoltFile(t, db)
}

// boltUsers opens a bolt session file that no config holds and returns
// the size of the blob of each live session, by user.
func boltUsers(t *testing.T, path string) map[string]int {
	t.Helper()
	st, err := bolt.Open(path, bolt.Options{SweepInterval: -1, LockTimeout: 1})
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	defer st.Close()
	users := map[string]int{}
	cursor := ""
	for {
		entries, next, err := st.List(context.Background(), cursor, 100, clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			users[e.Record.Values["user"]] = len(e.Record.Values["blob"])
		}
		if next == "" {
			return users
		}
		cursor = next
	}
}

// TestBoltReadOnlyFile: a bolt file on a read-only file system cannot be
// a session store. Caddy refuses the config that names it, with an error
// that says why, and keeps running the config it had, sessions and all;
// once the file system is writable again, the same config loads and the
// sessions in the file are there.
func TestBoltReadOnlyFile(t *testing.T) {
	const size = 1 << 20
	dir := mountTmpfs(t, size)
	db := filepath.Join(dir, "sessions.db")
	elsewhere := filepath.Join(t.TempDir(), "sessions.db")

	// A session in the file, made by a first config, which then lets go.
	s, logFile := faultSite(t, db)
	v := s.visitor()
	expectStatus(t, v.get("/login", "X-Session-Set-User: alice"), http.StatusOK)
	s.reload(faultConfig(s, logFile, elsewhere))
	w := s.visitor()
	expectStatus(t, w.get("/login", "X-Session-Set-User: bob"), http.StatusOK)

	if err := remount(t, dir, size, syscall.MS_RDONLY); err != nil {
		t.Fatalf("remounting read-only: %v", err)
	}
	caddytest.AssertLoadError(t, faultConfig(s, logFile, db), "caddyfile", "read-only file system")
	// The running config is untouched.
	expectSession(t, w.get("/"), map[string]string{"X-Session-User": "bob"})

	if err := remount(t, dir, size, 0); err != nil {
		t.Fatalf("remounting read-write: %v", err)
	}
	s.reload(faultConfig(s, logFile, db))
	expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice"})
	expectStatus(t, v.get("/cart", "X-Session-Set-Cart: apple"), http.StatusOK)
	expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"})
}
