package integration_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestRenewOnKeyInFlightAcrossAnotherChange: a request in flight answers
// with a renew_on key at the value the session had when it loaded, while
// another request changed that key meanwhile (a rotation that kept the
// user). Its commands are carried into the successor (README, "Requests in
// flight"), so the last word wins; but a change of a renew_on key rotates
// the ID, whoever makes it: the successor must not gain (or lose) the
// privilege under the ID the other response issued for the other value.
func TestRenewOnKeyInFlightAcrossAnotherChange(t *testing.T) {
	cases := []struct {
		name        string
		login       []string
		first, last []string
		want        map[string]string
	}{
		{
			name:  "elevation in flight across a demotion",
			login: []string{"X-Session-Set-User: alice", "X-Session-Set-Role: admin"},
			first: []string{"X-Session-Set-Role: user"},
			last:  []string{"X-Session-Set-Role: admin"},
			want:  map[string]string{"X-Session-User": "alice", "X-Session-Role": "admin"},
		},
		{
			name:  "elevation with a key in flight across a demotion",
			login: []string{"X-Session-Set-User: alice", "X-Session-Set-Role: admin"},
			first: []string{"X-Session-Set-Role: user"},
			last:  []string{"X-Session-Set-Role: admin", "X-Session-Set-Cart: pear"},
			want:  map[string]string{"X-Session-User": "alice", "X-Session-Role": "admin", "X-Session-Cart": "pear"},
		},
		{
			name:  "elevation in flight across a removal",
			login: []string{"X-Session-Set-User: alice", "X-Session-Set-Role: admin"},
			first: []string{"X-Session-Delete: role"},
			last:  []string{"X-Session-Set-Role: admin"},
			want:  map[string]string{"X-Session-User": "alice", "X-Session-Role": "admin"},
		},
		{
			name:  "removal in flight across an elevation",
			login: []string{"X-Session-Set-User: alice"},
			first: []string{"X-Session-Set-Role: admin"},
			last:  []string{"X-Session-Delete: role"},
			want:  map[string]string{"X-Session-User": "alice"},
		},
	}
	configs := []struct{ name, options string }{
		{"plain", "renew_on user role"},
		{"sealed", "renew_on user role\n\t\tseal_values {\n\t\t\tindex_key aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n\t\t}"},
	}
	for _, tc := range cases {
		for _, cfg := range configs {
			t.Run(tc.name+"/"+cfg.name, func(t *testing.T) {
				inFlightAcrossAnotherChange(t, cfg.options, tc.login, tc.first, tc.last, tc.want)
			})
		}
	}
}

func inFlightAcrossAnotherChange(t *testing.T, options string, login, firstCommands, lastCommands []string, want map[string]string) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s, g := gatedSite(t, newSite)
		s.options = options
		s.globals = sessionEvents
		s.load()
		v := s.visitor()
		expectStatus(t, v.get("/login", login...), http.StatusOK)
		loaded := v.clone()

		slow := v.start(g, "last", lastCommands...)
		r := v.get("/settings", firstCommands...)
		if r.sessionCookie() == nil {
			t.Fatalf("the first response changed a renew_on key: Set-Cookie %q, want a new ID", r.Header.Values("Set-Cookie"))
		}
		first := v.clone()
		takeEvents()
		storeErrors := storeErrorsTotal(t)

		res := slow.finish(t)
		if n := storeErrorsTotal(t) - storeErrors; n != 0 {
			t.Errorf("the response that answered last counted %v store errors: a rotation it had to make is no failure of the store", n)
		}
		var names []string
		for _, e := range takeEvents() {
			names = append(names, e.name)
			if e.name == "session.renewed" && e.data(t)["identity_changed"] == true {
				t.Errorf("the rotation of a change of role told of a change of user: %s", e.raw)
			}
		}
		if got, want := strings.Join(names, ", "), "session.renewed"; got != want {
			t.Errorf("the response that answered last: events %q, want %q", got, want)
		}
		expectStatus(t, &response{Response: res}, http.StatusOK)
		c := sidCookie(res)
		if c == nil || c.MaxAge < 0 || c.Value == first.sid || c.Value == loaded.sid {
			t.Fatalf("the response that answered last changed role back (%v) and got Set-Cookie %q: want a new ID, since a change of a renew_on key rotates it",
				lastCommands, res.Header.Values("Set-Cookie"))
		}
		v.sid = c.Value
		expectSession(t, v.get("/"), want)
		expectSession(t, first.get("/"), anonymous)
		expectSession(t, loaded.get("/"), anonymous)
	})
}

// storeErrorsTotal sums caddy_session_store_errors_total over its series.
func storeErrorsTotal(t *testing.T) float64 {
	t.Helper()
	sum := 0.0
	for series, v := range scrapeMetrics(t) {
		if strings.HasPrefix(series, "caddy_session_store_errors_total") {
			sum += v
		}
	}
	return sum
}
