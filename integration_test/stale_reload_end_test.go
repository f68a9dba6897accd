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

// TestEndInFlightAcrossAReloadReachesTheStaleCopy: a reload turns
// on_store_error stale on while a request of the previous config, which
// had no such policy, is in the app. The new config's handler reads the
// session meanwhile (the user's other tab), which puts it in the copy.
// The request in flight then ends the session (a logout, a logout
// everywhere, a renewal that leaves its old ID). README: "A session this
// Caddy saw end ... is never served from it, even to a request that read
// it before it ended." The end was committed through the previous
// config's handler, which kept no copy and told none, and once the store
// failed the new config served the ended session from the copy to its
// old cookie. The outage is the faulty store's: every read fails from the
// moment the test says so.
func TestEndInFlightAcrossAReloadReachesTheStaleCopy(t *testing.T) {
	for _, before := range []string{"# no on_store_error", "on_store_error anonymous", "on_store_error stale 1m"} {
		t.Run(before, func(t *testing.T) {
			for _, tc := range staleEnds {
				t.Run(tc.name, func(t *testing.T) { endInFlightAcrossStaleReload(t, before, tc.command) })
			}
		})
	}
}

// staleEnds are the commands of an app that end the session its request
// presented, or move it to another ID.
var staleEnds = []struct{ name, command string }{
	{"a logout", "X-Session-Destroy: true"},
	{"a logout everywhere", "X-Session-Destroy-All: true"},
	{"a renewal", "X-Session-Renew: true"},
	{"a login as another user", "X-Session-Set-User: mallory"},
}

func endInFlightAcrossStaleReload(t *testing.T, before, command string) {
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
		return fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	session {
		store faulty %s
		%s
	}
	reverse_proxy %s
}
`, adminPort, port, db, options, srv.Listener.Addr())
	}
	s := &site{t: t, tester: caddytest.NewTester(t), port: port}
	s.tester.Client.Jar = nil
	s.reload(config(before))
	alice := s.visitor()
	expectStatus(t, alice.get("/login", "X-Session-Set-User: alice"), http.StatusOK)
	stolen := alice.sid

	type result struct {
		res *http.Response
		err error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, s.url("/slow"), nil)
		req.Header.Set("Cookie", "sid="+stolen)
		req.Header.Set("Test-Header", command)
		res, err := s.tester.Client.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		done <- result{res, err}
	}()
	<-arrived
	s.reload(config("on_store_error stale 5m"))
	// The other tab, under the new config: its read is kept.
	expectSession(t, alice.get("/"), map[string]string{"X-Session-User": "alice"})
	close(release)
	got := <-done
	if got.err != nil {
		t.Fatalf("the request in flight across the reload: %v", got.err)
	}
	if got.res.StatusCode != http.StatusOK {
		t.Fatalf("the request in flight across the reload: status %d, want 200", got.res.StatusCode)
	}
	// No request of the new config presents the old ID before the
	// outage: a load that found it gone would tombstone it.
	failReads.Store(true)
	r := (&visitor{site: s, sid: stolen}).get("/")
	if r.StatusCode != http.StatusServiceUnavailable || len(r.session()) != 0 {
		t.Fatalf("while the store is down, the ID a request of the previous config ended (%s) is served from the copy: status %d, session %v",
			command, r.StatusCode, r.session())
	}
}

// TestEndThroughAHandlerWithoutTheCopyReachesIt is the same end, with no
// reload: two handlers of one config on one store and one realm, of
// which only the second keeps the copy. The session the first ends is
// never served from the second's copy.
func TestEndThroughAHandlerWithoutTheCopyReachesIt(t *testing.T) {
	for _, tc := range staleEnds {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { failReads.Store(false) })
			m := newMultiSite(t, "s")
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
			cookie := m.loginAt("s", "/login", "", "sid", "X-Session-Set-User: alice")
			if _, body := m.get("s", "/", cookie); !strings.Contains(body, "alice") {
				t.Fatalf("the handler with the copy does not read the session: %s", body)
			}
			if res, _ := m.get("s", "/plain/end", cookie, tc.command); res.StatusCode != http.StatusOK {
				t.Fatalf("%s through the handler without the copy: status %d, want 200", tc.command, res.StatusCode)
			}
			failReads.Store(true)
			if res, body := m.get("s", "/", cookie); res.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, "alice") {
				t.Fatalf("while the store is down, the ID the handler without the copy ended (%s) is served from the copy: status %d, %s",
					tc.command, res.StatusCode, body)
			}
		})
	}
}
