package integration_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/caddy-session/caddy-session/internal/redistest"
)

// devicesOf is the X-Session-Meta-Devices list the upstream echoed in body.
func devicesOf(t *testing.T, body string) []map[string]any {
	t.Helper()
	var echoed struct{ Headers map[string][]string }
	if err := json.Unmarshal([]byte(body), &echoed); err != nil {
		t.Fatalf("the upstream's echo is not JSON: %v", err)
	}
	raw := echoed.Headers["X-Session-Meta-Devices"]
	if len(raw) != 1 {
		t.Fatalf("the app got %d X-Session-Meta-Devices headers, want 1", len(raw))
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(raw[0]), &list); err != nil {
		t.Fatalf("X-Session-Meta-Devices is not JSON: %v", err)
	}
	return list
}

// The devices list and the cap of a handler without seal_values find the
// sessions of a user that a sealed handler of the same realm and store
// wrote last, on bolt and on Redis, and so does the sealed handler for
// the sessions the plain one wrote last; a logout everywhere through the
// plain handler then ends every one of them.
func TestDevicesAndCapAcrossSealedAndPlainHandlers(t *testing.T) {
	stores := []struct {
		name  string
		store func(t *testing.T, m *multiSite) string
	}{
		{"bolt", func(t *testing.T, m *multiSite) string { return "store bolt {db:shared}" }},
		{"redis", func(t *testing.T, m *multiSite) string { return "store redis " + redistest.Start(t).URL() }},
	}
	sides := []struct{ name, outer, inner, sealedAt, plainAt string }{
		{"inner sealed", "", sealWith(indexKeyA), "/admin/x", "/"},
		{"outer sealed", sealWith(indexKeyA), "", "/", "/admin/x"},
	}
	for _, st := range stores {
		for _, side := range sides {
			t.Run(st.name+", "+side.name, func(t *testing.T) {
				m := newMultiSite(t, "s")
				db := st.store(t, m)
				m.load([2]string{"s", `session {
				` + db + `
				` + side.outer + `
				max_sessions_per_identity 3
				devices /devices /admin/devices
			}
			handle /admin/* {
				session {
					` + db + `
					` + side.inner + `
					max_sessions_per_identity 3
					devices /admin/devices
				}
				reverse_proxy {up}
			}
			reverse_proxy {up}`})
				// Two sessions of the user, each written last by the
				// sealed handler, and a third by the plain one.
				var cookies []string
				for i := range 2 {
					c := m.login("s", "sid", "X-Session-Set-User: u")
					if _, body := m.get("s", side.sealedAt, c, fmt.Sprintf("X-Session-Set-Note: sealed%d", i)); !strings.Contains(body, `"u"`) {
						t.Fatalf("the session is not the user's at %s", side.sealedAt)
					}
					cookies = append(cookies, c)
				}
				plain := m.login("s", "sid", "X-Session-Set-User: u")
				m.get("s", side.plainAt, plain, "X-Session-Set-Note: plain")
				cookies = append(cookies, plain)
				for _, at := range []string{"/devices", "/admin/devices"} {
					_, body := m.get("s", at, plain)
					if got := len(devicesOf(t, body)); got != 3 {
						t.Fatalf("%s lists %d sessions of the user, want 3", at, got)
					}
				}
				// A fourth login, through the plain handler, ends the least
				// recently seen: one of the sealed ones, and only it.
				fourth := m.loginAt("s", side.plainAt, "", "sid", "X-Session-Set-User: u")
				live := 0
				for _, c := range append(cookies, fourth) {
					if _, body := m.get("s", "/", c); strings.Contains(body, `"X-Session-User":["u"]`) {
						live++
					}
				}
				if live != 3 {
					t.Fatalf("after a fourth login with max_sessions_per_identity 3, %d sessions of the user live, want 3", live)
				}
				// A logout everywhere through the plain handler ends them all.
				m.get("s", side.plainAt, fourth, "X-Session-Destroy-All: true")
				for i, c := range append(cookies, fourth) {
					if _, body := m.get("s", "/", c); strings.Contains(body, `"X-Session-User":["u"]`) {
						t.Fatalf("session %d of the user lives on after a logout everywhere through the plain handler", i)
					}
				}
			})
		}
	}
}
