package integration_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-session/caddy-session/internal/redistest"
)

// TestOtherSitesAppChangesNothingOfASession: two sites of one Caddy keep
// their sessions in one store, each in its own realm. A client sends site
// b the cookie of alice's session on site a, live or renewed away (its
// forward record), and b's app answers with every command of the
// protocol. None may reach alice's session on a: not a key, a logout, a
// renewal, a remember, a flash value, a touch; b sets no cookie that
// holds a's ID, and a session b starts for such a request is a new one of
// b's, holding nothing of alice's. (The cap, the devices list, a
// revocation and a logout everywhere in one realm are
// TestRealmsOfOneStoreKeepTheirUsersApart's.)
func TestOtherSitesAppChangesNothingOfASession(t *testing.T) {
	stores := []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"bolt", func(t *testing.T) string { return "store bolt {db:shared}" }},
		{"redis", func(t *testing.T) string { return "store redis " + redistest.Start(t).URL() }},
	}
	commands := []struct {
		name     string
		commands []string
		starts   bool // b starts a session of its own
	}{
		{"a key", []string{"X-Session-Set-Role: admin"}, true},
		{"a key of a's", []string{"X-Session-Set-User: mallory"}, true},
		{"a flash value", []string{"X-Session-Flash-Note: hi"}, true},
		{"a delete", []string{"X-Session-Delete: role, user"}, false},
		{"a logout", []string{"X-Session-Destroy: true"}, false},
		{"a logout everywhere", []string{"X-Session-Destroy-All: true"}, false},
		{"a renewal", []string{"X-Session-Renew: true"}, false},
		{"remember me", []string{"X-Session-Remember: true"}, false},
		{"forget me", []string{"X-Session-Remember: false"}, false},
		{"no touch", []string{"X-Session-Touch: false"}, false},
		{"a logout beside a key", []string{"X-Session-Destroy: true", "X-Session-Set-Cart: pear"}, true},
	}
	for _, st := range stores {
		for _, renewed := range []bool{false, true} {
			for _, c := range commands {
				name := st.name + "/live/" + c.name
				if renewed {
					name = st.name + "/renewed away/" + c.name
				}
				t.Run(name, func(t *testing.T) {
					m := newMultiSite(t, "a", "b")
					body := "session {\n\t\t" + st.store(t) + "\n\t\tremember\n\t}\n\treverse_proxy {up}"
					m.load([2]string{"a", body}, [2]string{"b", body})
					_ = body
					alice := m.login("a", "sid", "X-Session-Set-User: alice", "X-Session-Set-Role: user")
					sent := alice
					if renewed {
						alice = m.loginAt("a", "/", alice, "sid", "X-Session-Renew: true")
					}
					res, seenByB := m.get("b", "/", sent, c.commands...)
					if res.StatusCode != http.StatusOK {
						t.Fatalf("b answered %d, want its app's 200: %s", res.StatusCode, seenByB)
					}
					if got := namespaceOf(t, seenByB); len(got) != 0 {
						t.Fatalf("b's app was given a's session: %s", seenByB)
					}
					var started string
					for _, ck := range res.Cookies() {
						if ck.Name != "sid" {
							continue
						}
						if got := "sid=" + ck.Value; got == sent || got == alice {
							t.Fatalf("b set a cookie of a's session: %s", res.Header["Set-Cookie"])
						}
						if ck.MaxAge >= 0 && ck.Value != "" {
							started = "sid=" + ck.Value
						}
					}
					if (started != "") != c.starts {
						t.Fatalf("b's cookies %q; want a new session of b's: %v", res.Header["Set-Cookie"], c.starts)
					}
					if started != "" {
						if _, body := m.get("b", "/", started); strings.Contains(body, "alice") || strings.Contains(body, `"X-Session-Role":["user"]`) {
							t.Fatalf("the session b started holds alice's: %s", body)
						}
						if _, body := m.get("a", "/", started); len(namespaceOf(t, body)) != 0 {
							t.Fatalf("the session b started opens on a: %s", body)
						}
					}
					_, body = m.get("a", "/", alice)
					if !strings.Contains(body, `"X-Session-User":["alice"]`) || !strings.Contains(body, `"X-Session-Role":["user"]`) ||
						strings.Contains(body, "Flash") || strings.Contains(body, "Remembered") || strings.Contains(body, "Cart") {
						t.Fatalf("alice's session on a after b's %s: %s", c.name, body)
					}
				})
			}
		}
	}
}

// namespaceOf is the session headers the app reports in body, its answer
// through multiSite.
func namespaceOf(t *testing.T, body string) []string {
	t.Helper()
	var got seen
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("the app's answer is no JSON: %v: %s", err, body)
	}
	return requestNamespaceIn(got.Headers)
}
