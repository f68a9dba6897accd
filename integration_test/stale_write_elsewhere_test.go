package integration_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// README.md, "When the store is down": on_store_error stale serves "the
// copy of the session that this Caddy read or wrote within the
// duration", a copy "shared by the handlers of one store and across
// reloads", and "a handler whose on_store_error has no stale still marks
// what it ends in the copy of its store". A write through such a handler
// is a write of this Caddy too: once it has taken a value away (a role),
// the copy must not serve the value from before it while the store is
// down. Either the session as written, or a 503; never the role back.
func TestStaleCopyNeverServesWhatAWriteOfThisCaddyTookAway(t *testing.T) {
	cases := []struct {
		name, through, command string
		want                   string // the role the copy may serve, "" for none
	}{
		{"a role taken away through the handler with the copy", "copy", "X-Session-Delete: role", ""},
		{"a role taken away through the handler without the copy", "plain", "X-Session-Delete: role", ""},
		{"a role lowered through the handler without the copy", "plain", "X-Session-Set-Role: reader", "reader"},
	}
	// Where the two handlers of the realm are: nested in one site, or
	// each the session of a site of its own.
	layouts := []struct {
		name string
		load func(m *multiSite)
		// at is the site and the path prefix of the handler with the
		// copy ("copy") or without ("plain").
		at map[string][2]string
	}{
		{"one site", func(m *multiSite) {
			m.load([2]string{"s", `handle /plain/* {
		session {
			store faulty {db:shared}
			realm shared
		}
		reverse_proxy {up}
	}
	handle {
		session {
			store faulty {db:shared}
			realm shared
			on_store_error stale 5m
		}
		reverse_proxy {up}
	}`})
		}, map[string][2]string{"copy": {"s", "/"}, "plain": {"s", "/plain/"}}},
		{"two sites", func(m *multiSite) {
			m.load([2]string{"s", `session {
		store faulty {db:shared}
		realm shared
		on_store_error stale 5m
	}
	reverse_proxy {up}`}, [2]string{"p", `session {
		store faulty {db:shared}
		realm shared
	}
	reverse_proxy {up}`})
		}, map[string][2]string{"copy": {"s", "/"}, "plain": {"p", "/"}}},
	}
	for _, layout := range layouts {
		for _, tc := range cases {
			t.Run(layout.name+"/"+tc.name, func(t *testing.T) {
				t.Cleanup(func() { failReads.Store(false) })
				m := newMultiSite(t, "s", "p")
				layout.load(m)
				withCopy, plain, through := layout.at["copy"], layout.at["plain"], layout.at[tc.through]
				cookie := m.loginAt(withCopy[0], withCopy[1]+"login", "", "sid", "X-Session-Set-User: alice", "X-Session-Set-Role: admin")
				if _, body := m.get(withCopy[0], withCopy[1], cookie); !strings.Contains(body, `"X-Session-Role":["admin"]`) {
					t.Fatalf("the handler with the copy does not read the admin's session: %s", body)
				}
				if res, _ := m.get(through[0], through[1]+"demote", cookie, tc.command); res.StatusCode != http.StatusOK {
					t.Fatalf("%s: status %d, want 200", tc.command, res.StatusCode)
				}
				if _, body := m.get(plain[0], plain[1]+"check", cookie); strings.Contains(body, `"X-Session-Role":["admin"]`) {
					t.Fatalf("the store still holds the role after %s: %s", tc.command, body)
				}
				failReads.Store(true)
				res, body := m.get(withCopy[0], withCopy[1], cookie)
				switch {
				case res.StatusCode == http.StatusServiceUnavailable:
				case res.StatusCode != http.StatusOK:
					t.Fatalf("while the store is down: status %d, want 200 or 503", res.StatusCode)
				case strings.Contains(body, `"X-Session-Role":["admin"]`):
					t.Fatalf("while the store is down, the copy served the role admin that %s through the %s handler took away", tc.command, tc.through)
				case tc.want != "" && !strings.Contains(body, `"X-Session-Role":["`+tc.want+`"]`):
					t.Fatalf("while the store is down, the copy served the session without the role %q it was written with: %s", tc.want, body)
				}
			})
		}
	}
}

// The same across a reload: a request of the config before, whose
// handler kept no copy, takes the role away while it is in flight; the
// config the reload brought in has read the session into its copy
// meanwhile (the user's other tab). Once the store fails, the copy must
// not serve the role back.
func TestStaleCopyNeverServesWhatAWriteInFlightAcrossAReloadTookAway(t *testing.T) {
	for _, before := range []string{"# no on_store_error", "on_store_error anonymous"} {
		for _, command := range []string{"X-Session-Delete: role", "X-Session-Set-Role: reader"} {
			t.Run(before+"/"+command, func(t *testing.T) {
				t.Cleanup(func() { failReads.Store(false) })
				arrived, release := make(chan struct{}), make(chan struct{})
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/slow" {
						close(arrived)
						<-release
					}
					serveUpstream(w, r)
				}))
				t.Cleanup(srv.Close)
				db := filepath.Join(t.TempDir(), "sessions.db")
				port := freePort(t)
				config := func(options string) string {
					return fmt.Sprintf("{\n\tadmin localhost:%d\n}\nhttp://127.0.0.1:%d {\n\tsession {\n\t\tstore faulty %s\n\t\t%s\n\t}\n\treverse_proxy %s\n}\n",
						adminPort, port, db, options, srv.Listener.Addr())
				}
				s := &site{t: t, tester: caddytest.NewTester(t), port: port}
				s.tester.Client.Jar = nil
				s.reload(config(before))
				alice := s.visitor()
				expectStatus(t, alice.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Role: admin"), http.StatusOK)

				done := make(chan error, 1)
				go func() {
					req, _ := http.NewRequest(http.MethodGet, s.url("/slow"), nil)
					req.Header.Set("Cookie", "sid="+alice.sid)
					req.Header.Set("Test-Header", command)
					res, err := s.tester.Client.Do(req)
					if err == nil {
						_, err = io.Copy(io.Discard, res.Body)
						res.Body.Close()
						if err == nil && res.StatusCode != http.StatusOK {
							err = fmt.Errorf("status %d, want 200", res.StatusCode)
						}
					}
					done <- err
				}()
				<-arrived
				s.reload(config("on_store_error stale 5m"))
				expectSession(t, alice.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Role": "admin"})
				close(release)
				if err := <-done; err != nil {
					t.Fatalf("the request in flight across the reload: %v", err)
				}
				failReads.Store(true)
				r := alice.get("/")
				switch {
				case r.StatusCode == http.StatusServiceUnavailable:
				case r.StatusCode != http.StatusOK:
					t.Fatalf("while the store is down: status %d, want 200 or 503", r.StatusCode)
				case r.session()["X-Session-Role"] == "admin":
					t.Fatalf("while the store is down, the copy served the role admin that %s of the config before took away", command)
				}
			})
		}
	}
}
