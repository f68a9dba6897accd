package integration_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddy-session/caddy-session/internal/testhook"
	"github.com/caddy-session/caddy-session/session"
)

// TestMoveMigrateInFlightAcrossTheEndOfTheMove: step 3 of a move, the
// reload that removes fallback_store, while a page of caddy session
// migrate is in flight: it listed a session in the old store before the
// reload, and copies it after. A session that ends through the config
// without the fallback meanwhile ends in the new store only (the old
// store is no longer read), so the copy must not bring it back, as no
// request of the config before brings it back (README, step 3).
func TestMoveMigrateInFlightAcrossTheEndOfTheMove(t *testing.T) {
	ends := []struct {
		name string
		end  func(t *testing.T, a *visitor)
	}{
		{"logout", func(t *testing.T, a *visitor) {
			a.get("/logout", "X-Session-Destroy: true")
			if a.sid != "" {
				t.Fatal("the logout kept the cookie")
			}
		}},
		{"logout everywhere", func(t *testing.T, a *visitor) {
			a.get("/logout", "X-Session-Destroy-All: true")
			if a.sid != "" {
				t.Fatal("the logout kept the cookie")
			}
		}},
		{"admin revoke of the user", func(t *testing.T, a *visitor) {
			var v struct{ Revoked int }
			sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "alice"}`).decode(t, http.StatusOK, &v)
			if v.Revoked != 1 {
				t.Fatalf("the revocation revoked %d sessions, want 1", v.Revoked)
			}
		}},
	}
	for _, move := range storeMoves {
		for _, end := range ends {
			t.Run(move.name+"/"+end.name, func(t *testing.T) {
				from, to := move.from(t), move.to(t)
				s := newSiteOn(t, "store "+from, "")
				a := s.visitor()
				a.get("/login", "X-Session-Set-User: alice")
				sid := a.sid
				hash := session.HashID(sid).String()
				s.store = "store " + to + "\n\t\tfallback_store " + from
				s.load()
				expectUser(t, a, "alice") // copied

				listed, release := make(chan struct{}), make(chan struct{})
				var once atomic.Bool
				hook := func(hashes []string) {
					if slices.Contains(hashes, hash) && once.CompareAndSwap(false, true) {
						close(listed)
						<-release
					}
				}
				testhook.CopyListed.Store(&hook)
				t.Cleanup(func() { testhook.CopyListed.Store(nil) })

				type answer struct {
					status int
					body   string
					err    error
				}
				migrated := make(chan answer, 1)
				go func() {
					req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/session/migrate", adminPort), nil)
					req.Header.Set("Content-Type", "application/json")
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						migrated <- answer{err: err}
						return
					}
					body, _ := io.ReadAll(res.Body)
					res.Body.Close()
					migrated <- answer{status: res.StatusCode, body: string(body)}
				}()
				select {
				case <-listed:
				case ans := <-migrated:
					t.Fatalf("migrate answered %d %s %v without listing the session", ans.status, ans.body, ans.err)
				}

				// Step 3, and an end through the config without the fallback.
				// The reload may wait for the page to end before the old
				// config goes (MoveEndWaits says so): then the page is let
				// go. If it does not wait, the logout comes before the copy.
				ending := make(chan struct{})
				var endingOnce atomic.Bool
				endingHook := func() {
					if endingOnce.CompareAndSwap(false, true) {
						close(ending)
					}
				}
				testhook.MoveEndWaits.Store(&endingHook)
				t.Cleanup(func() { testhook.MoveEndWaits.Store(nil) })
				s.store = "store " + to
				reloaded := make(chan error, 1)
				go func() { reloaded <- loadConfig(s.config()) }()
				released := false
				select {
				case err := <-reloaded:
					if err != nil {
						t.Fatal(err)
					}
				case <-ending:
					close(release)
					released = true
					if err := <-reloaded; err != nil {
						t.Fatal(err)
					}
				}
				waitOneListener(t, s.port)
				end.end(t, a)
				if !released {
					close(release)
				}
				ans := <-migrated
				if ans.err != nil {
					t.Fatal(ans.err)
				}
				if ans.status != http.StatusOK && ans.status != http.StatusBadRequest {
					t.Fatalf("migrate answered %d %s, want 200, or 400 for a move that is over", ans.status, ans.body)
				}
				expectUser(t, &visitor{site: s, sid: sid}, "")
			})
		}
	}
}

// loadConfig loads a Caddyfile into the running Caddy through the admin
// API, as caddy reload does, from any goroutine.
func loadConfig(config string) error { return loadAdapted(config, "caddyfile") }

// loadAdapted loads config, of the adapter ("json", "caddyfile"), into the
// running Caddy through the admin API, and returns why it was refused.
func loadAdapted(config, adapter string) error {
	contentType := "application/json"
	if adapter != "json" {
		contentType = "text/" + adapter
	}
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/load", adminPort), strings.NewReader(config))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Cache-Control", "must-revalidate")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reloading: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("reloading: %s: %s", res.Status, body)
	}
	return nil
}
