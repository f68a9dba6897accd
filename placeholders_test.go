package caddysession

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// TestPlaceholdersThroughTheRequest: {http.session.<key>} and
// {http.session_hash} show the loaded session to the handlers after the
// session's, and the session as the commit left it to what reads them
// after the response (access logs, log_append): the new one after a login
// or a renewal, none after a logout. A request without a session has
// none, and a key the session lacks is no placeholder.
func TestPlaceholdersThroughTheRequest(t *testing.T) {
	const (
		user   = "{http.session.user}"
		team   = "{http.session.team}"
		hashPH = "{http.session_hash}"
	)
	cases := []struct {
		name        string
		withSession bool
		commands    map[string]string // the app's response headers
		inside      map[string]string // placeholder → value the app's handler sees
		after       map[string]string // placeholder → value after the response
		newHash     bool              // after shows the hash of a new ID
	}{
		{name: "read", withSession: true,
			inside: map[string]string{user: "alice", team: "", hashPH: "loaded"},
			after:  map[string]string{user: "alice", team: "", hashPH: "loaded"}},
		{name: "anonymous",
			inside: map[string]string{user: "", hashPH: ""},
			after:  map[string]string{user: "", hashPH: ""}},
		{name: "login", commands: map[string]string{"X-Session-Set-User": "bob", "X-Session-Set-Team": "red"},
			inside: map[string]string{user: "", hashPH: ""},
			after:  map[string]string{user: "bob", team: "red"}, newHash: true},
		{name: "set a key", withSession: true, commands: map[string]string{"X-Session-Set-Team": "blue"},
			inside: map[string]string{user: "alice", team: ""},
			after:  map[string]string{user: "alice", team: "blue", hashPH: "loaded"}},
		{name: "renew", withSession: true, commands: map[string]string{"X-Session-Renew": "true"},
			inside: map[string]string{user: "alice", hashPH: "loaded"},
			after:  map[string]string{user: "alice"}, newHash: true},
		{name: "logout", withSession: true, commands: map[string]string{"X-Session-Destroy": "true"},
			inside: map[string]string{user: "alice", hashPH: "loaded"},
			after:  map[string]string{user: "", team: "", hashPH: ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, _ := testHandler(t)
			header := http.Header{}
			loaded := ""
			if c.withSession {
				id, hash := newSessionID()
				startSession(t, h, *hash, clock.Now())
				header.Set("Cookie", "sid="+id)
				loaded = hash.Short()
			}
			want := func(m map[string]string, name string) string {
				if m[name] == "loaded" {
					return loaded
				}
				return m[name]
			}
			u, _ := url.Parse("http://app.example.com/")
			r := newBenchRequest(u, header)
			repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				for name := range c.inside {
					if got := repl.ReplaceAll(name, ""); got != want(c.inside, name) {
						t.Errorf("inside: %s = %q, want %q", name, got, want(c.inside, name))
					}
				}
				for k, v := range c.commands {
					w.Header().Set(k, v)
				}
				w.WriteHeader(http.StatusOK)
				return nil
			})
			w := &discard{h: http.Header{}}
			if err := h.ServeHTTP(w, r, next); err != nil {
				t.Fatal(err)
			}
			for name := range c.after {
				if got := repl.ReplaceAll(name, ""); got != want(c.after, name) {
					t.Errorf("after: %s = %q, want %q", name, got, want(c.after, name))
				}
			}
			got := repl.ReplaceAll(hashPH, "")
			if c.newHash && (got == "" || got == loaded) {
				t.Errorf("after: %s = %q, want the hash of the new ID (loaded %q)", hashPH, got, loaded)
			}
		})
	}
}

// TestPlaceholdersOfNestedHandlers: with two session handlers in one
// request, the placeholders show the session of the one that published
// last, the inner one, as they did when each set them.
func TestPlaceholdersOfNestedHandlers(t *testing.T) {
	outer, _ := testHandler(t)
	inner, _ := testHandler(t)
	id, hash := newSessionID()
	startSession(t, outer, *hash, clock.Now())
	id2, hash2 := newSessionID()
	startSession(t, inner, *hash2, clock.Now())
	outer.ForwardCookie = true // the inner handler reads its own cookie
	u, _ := url.Parse("http://app.example.com/")
	r := newBenchRequest(u, http.Header{"Cookie": {"sid=" + id + "; sid=" + id2}})
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	var seen string
	app := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		seen = repl.ReplaceAll("{http.session_hash}", "")
		w.WriteHeader(http.StatusOK)
		return nil
	})
	err := outer.ServeHTTP(&discard{h: http.Header{}}, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return inner.ServeHTTP(w, r, app)
	}))
	if err != nil {
		t.Fatal(err)
	}
	if seen != hash2.Short() {
		t.Fatalf("{http.session_hash} inside both handlers = %q, want the inner one's %q (outer %q)", seen, hash2.Short(), hash.Short())
	}
}
