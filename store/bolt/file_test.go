package bolt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// TestFileRemovedOrReplaced: an operator who removes the open session file
// (rm), or moves another file onto its path (a backup restored with mv),
// leaves Caddy writing to a file that no path names any more; whatever it
// acknowledges then is gone at the next start. Every write is refused
// instead, with an error that says why and what to do, and reads of the
// sessions the open file holds go on. A file put back where it was (the
// same file, renamed away and back) is the store's again.
func TestFileRemovedOrReplaced(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, path string) (undo func())
	}{
		{name: "removed", change: func(t *testing.T, path string) func() {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			return nil
		}},
		{name: "replaced by another file", change: func(t *testing.T, path string) func() {
			other := filepath.Join(t.TempDir(), "backup.db")
			if err := os.WriteFile(other, []byte("a backup"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(other, path); err != nil {
				t.Fatal(err)
			}
			return nil
		}},
		{name: "moved away and back", change: func(t *testing.T, path string) func() {
			away := path + ".away"
			if err := os.Rename(path, away); err != nil {
				t.Fatal(err)
			}
			return func() {
				if err := os.Rename(away, path); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t)
			defer s.Close()
			alice := create(t, s, "alice", base, timeouts, map[string]string{"user": "alice"})
			undo := tc.change(t, s.Path())

			writes := map[string]func() error{
				"login": func() error {
					_, err := s.Update(t.Context(), store.Update{NewHash: ptr(session.HashID("bob")),
						Patch: &session.Patch{Set: map[string]string{"user": "bob"}}, Identity: "user",
						Now: base, Timeouts: timeouts, Limits: limits})
					return err
				},
				"set": func() error {
					_, err := s.Update(t.Context(), store.Update{Hash: alice, HasHash: true,
						Patch: &session.Patch{Set: map[string]string{"x": "1"}}, Identity: "user",
						Now: base, Timeouts: timeouts, Limits: limits})
					return err
				},
				"logout everywhere": func() error {
					_, err := s.DeleteByIdentity(t.Context(), "", "user", "alice")
					return err
				},
				"logout": func() error { return s.Delete(t.Context(), alice) },
			}
			for _, name := range []string{"login", "set", "logout everywhere", "logout"} {
				err := writes[name]()
				if err == nil || !strings.Contains(err.Error(), "removed or replaced") {
					t.Fatalf("%s to a file no longer at its path = %v, want an error that says so", name, err)
				}
			}
			if rec, err := s.Load(t.Context(), alice, base, timeouts); err != nil || rec.Values["user"] != "alice" {
				t.Fatalf("reading a session of the open file = %v, %v", rec, err)
			}
			if undo == nil {
				return
			}
			undo()
			if err := writes["set"](); err != nil {
				t.Fatalf("a write once the file is back = %v", err)
			}
			if err := s.Delete(t.Context(), alice); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Load(t.Context(), alice, base, timeouts); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the session after its logout = %v", err)
			}
		})
	}
}
