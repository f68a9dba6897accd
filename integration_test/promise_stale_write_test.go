package integration_test

import (
	"net/http"
	"strings"
	"testing"
)

// README.md, "When the store is down": on_store_error stale serves "the
// copy of the session that this Caddy read or wrote within the
// duration", a copy "shared by the handlers of one store and across
// reloads", and "a handler whose on_store_error has no stale still marks
// what it ends in the copy of its store". A write through such a handler
// is a write of this Caddy too: once it has taken a value away (a role),
// the copy must not serve the value from before it while the store is
// down. Either the session as written, or a 503; never the role back.
func TestPromiseStaleCopyNeverServesWhatAWriteOfThisCaddyTookAway(t *testing.T) {
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
