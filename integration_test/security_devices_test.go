package integration_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestSecurityDevicesListHoldsNoID: SECURITY.md, "Simultaneous sessions":
// the list `devices` gives the app holds "short hashes ... ASCII-only
// JSON; never an ID". TestDevices checks the fields it decodes; here the
// header as sent to the app, whole: no session's raw ID (of the user's
// own devices, of another user's) in any field, and only printable ASCII,
// whatever the User-Agents recorded held.
func TestSecurityDevicesListHoldsNoID(t *testing.T) {
	agents := []struct{ name, ua string }{
		{"a plain browser", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
		{"non-ASCII", "Browser \xc3\xbcber \xe2\x80\x8b\xf0\x9f\x98\x80"},
		{"invalid UTF-8", "Browser \xff\xfe\x80"},
		{"a tab, quotes and markup", "Browser\t\"quoted\" \\ </script>"},
	}
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s := newSite(t, "record_user_agent\n\t\tdevices /account/devices")
		var ids []string
		var alice []*visitor
		for _, a := range agents {
			v := s.visitor()
			v.login("alice", a.ua)
			alice = append(alice, v)
			ids = append(ids, v.sid)
		}
		bob := s.visitor()
		bob.login("bob", "Bob's browser")
		ids = append(ids, bob.sid)

		for i, a := range agents {
			t.Run(a.name, func(t *testing.T) {
				r := alice[i].do(http.MethodGet, "/account/devices", "User-Agent", a.ua)
				expectStatus(t, r, http.StatusOK)
				raw := r.seen.Headers.Get("X-Session-Meta-Devices")
				if list := r.devices(t); len(list) != len(agents) {
					t.Fatalf("the list holds %d sessions, want alice's %d: %s", len(list), len(agents), raw)
				}
				for _, id := range ids {
					if strings.Contains(raw, id) {
						t.Fatalf("the devices list holds a raw session ID: %s", raw)
					}
				}
				for j := 0; j < len(raw); j++ {
					if c := raw[j]; c < 0x20 || c > 0x7e {
						t.Fatalf("the devices list holds byte %#x at %d: %q", c, j, raw)
					}
				}
			})
		}
	})
}
