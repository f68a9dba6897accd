package integration_test

// Header names as the app behind Caddy reads them: CGI and PHP read '-',
// '_' and (PHP) '.' in a request header's name as one character, and
// servers in front of such apps drop names with '_' or '.'. These tests
// run a real Caddy and check that no spelling of a namespace header reaches
// the app from a client, that a key with '_' reaches it and can be written
// back in the spelling it arrived in, which flag values are taken, and
// which key names are reserved.

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// requestNamespaceIn lists the names of h that a CGI or PHP app would read
// as headers of the session namespace: case-insensitive, with '_' and '.'
// read as '-', also when announced as trailers.
func requestNamespaceIn(h http.Header) []string {
	var names []string
	for name := range h {
		folded := strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(name))
		if strings.HasPrefix(strings.TrimPrefix(folded, "trailer:"), "x-session-") {
			names = append(names, name)
		}
	}
	return names
}

// withGlobals is the site's config with these lines added to its global
// options.
func withGlobals(t *testing.T, config, globals string) string {
	t.Helper()
	const anchor = "\tskip_install_trust\n"
	if !strings.Contains(config, anchor) {
		t.Fatalf("the harness's config has no %q line to add global options after", anchor)
	}
	return strings.Replace(config, anchor, anchor+globals, 1)
}

// TestDottedNamesNeverReachTheApp: PHP registers X.Session.User as
// HTTP_X_SESSION_USER, as it does X-Session-User. Caddy drops request
// headers with '.' unless expected_dot_headers lets them through, and it
// never looks at request trailers. With the option letting every spelling
// below through (the X.Other.Note each row carries proves it does), none of
// them may reach the app, as a header or as a trailer; the app sees
// alice's session and nothing else in the namespace.
func TestDottedNamesNeverReachTheApp(t *testing.T) {
	s, app := newHostileSite(t, "")
	s.reload(withGlobals(t, s.config(), "\tservers {\n"+
		"\t\texpected_dot_headers X.Session.* X.Other.* x.session_user X_Session.User X-Session.User\n"+
		"\t}\n"))
	rows := []struct {
		name string
		raw  string // header lines; "\n" is sent as CRLF
		body string
		// trailers the app must see, and no others; nil: not checked
		trailers map[string]string
	}{
		{name: "dots for dashes", raw: "X.Session.User: admin\n"},
		{name: "in upper case", raw: "X.SESSION.ROLE: admin\n"},
		{name: "dot and underscore", raw: "x.session_user: admin\n"},
		{name: "underscore and dot", raw: "X_Session.User: admin\n"},
		{name: "dash and dot", raw: "X-Session.User: admin\n"},
		{name: "over the session's own key", raw: "X.Session.Cart: forged\n"},
		{name: "named in Connection", raw: "Connection: X.Session.User\nX.Session.User: admin\n"},
		{name: "as request trailers, announced or not", raw: "Transfer-Encoding: chunked\nTrailer: X.Session.User, X-Note\n",
			body:     "5\r\nhello\r\n0\r\nX-Note: kept\r\nX.Session.User: mallory\r\nx.session_role: admin\r\n\r\n",
			trailers: map[string]string{"X-Note": "kept"}},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			v := login(t, s, "alice")
			raw := "POST / HTTP/1.1\r\n" + strings.ReplaceAll(tc.raw+"X.Other.Note: kept\n", "\n", "\r\n") +
				"Host: 127.0.0.1\r\nCookie: sid=" + v.sid + "\r\nConnection: close\r\n\r\n" + tc.body
			before := app.hits.Load()
			res, body, err := rawExchange(t, s, raw)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != http.StatusOK || app.hits.Load() != before+1 {
				t.Fatalf("status %d, app hits %d; want 200 from the app; body %s", res.StatusCode, app.hits.Load()-before, body)
			}
			assertNoneLeaked(t, res)
			var saw appSaw
			if err := json.Unmarshal(body, &saw); err != nil {
				t.Fatalf("app answer %q: %v", body, err)
			}
			if got := saw.Headers.Get("X.Other.Note"); got != "kept" {
				t.Fatalf("the control header X.Other.Note did not reach the app (%q): the server option is not in effect; the app saw %q", got, saw.Headers)
			}
			got := requestNamespaceIn(saw.Headers)
			if len(got) != 2 || saw.Headers.Get("X-Session-User") != "alice" || saw.Headers.Get("X-Session-Cart") != "apple" {
				t.Fatalf("the app saw namespace headers %q: %q", got, saw.Headers)
			}
			if leaked := requestNamespaceIn(saw.Trailers); len(leaked) != 0 {
				t.Fatalf("the app saw namespace trailers %q", leaked)
			}
			if tc.trailers != nil {
				gotTrailers := map[string]string{}
				for name, vals := range saw.Trailers {
					gotTrailers[name] = strings.Join(vals, ",")
				}
				if !maps.Equal(gotTrailers, tc.trailers) {
					t.Fatalf("the app saw trailers %q, want %q", gotTrailers, tc.trailers)
				}
			}
			want := map[string]string{"user": "alice", "cart": "apple"}
			if got := sessionOf(t, s, "sid="+v.sid); !maps.Equal(got, want) {
				t.Fatalf("session afterwards = %v, want %v", got, want)
			}
		})
	}
}

// twoHops is the site's config with a plain Caddy site, in its default
// settings, between the session handler and the app, as when the app sits
// behind its own Caddy or nginx: it drops request headers whose names hold
// '_'.
func twoHops(t *testing.T, s *site) string {
	t.Helper()
	middle := freePort(t)
	config := s.config()
	hop := "\treverse_proxy " + s.up.addr() + "\n"
	if strings.Count(config, hop) != 1 {
		t.Fatalf("the harness's config has no single %q line to redirect", hop)
	}
	config = strings.Replace(config, hop, fmt.Sprintf("\treverse_proxy 127.0.0.1:%d\n", middle), 1)
	return config + fmt.Sprintf("http://127.0.0.1:%d {\n\treverse_proxy %s\n}\n", middle, s.up.addr())
}

// storedValues reads the visitor's session through the admin API: the keys
// exactly as the store holds them.
func storedValues(t *testing.T, v *visitor) map[string]string {
	t.Helper()
	var got apiSession
	sessionAPI(t, http.MethodGet, "/session/sessions/"+v.adminHash()+"?values=true", "").decode(t, http.StatusOK, &got)
	if got.Values == nil {
		got.Values = map[string]string{}
	}
	return got.Values
}

// TestUnderscoreKeysReachTheApp: a key with '_' is forwarded with '-', so
// it passes a server that drops '_' names (here a second Caddy in front of
// the app), and a CGI app still reads it as HTTP_X_SESSION_CART_ITEMS. The
// app answers in the spelling it received, and its set and delete act on
// the key the store holds: no second key, no refusal. With writable, the
// configured spelling is writable in either.
func TestUnderscoreKeysReachTheApp(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		for _, options := range []string{"", "writable user cart_items"} {
			t.Run(fmt.Sprintf("options %q", options), func(t *testing.T) {
				s := newSite(t, options)
				s.reload(twoHops(t, s)) // waits until the first config no longer accepts
				v := s.visitor()
				expectStatus(t, v.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Cart_Items: 1"), http.StatusOK)
				if got, want := storedValues(t, v), map[string]string{"user": "alice", "cart_items": "1"}; !maps.Equal(got, want) {
					t.Fatalf("stored %v, want %v", got, want)
				}
				// A CGI app reads X-Session-Cart-Items as HTTP_X_SESSION_CART_ITEMS.
				expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Cart-Items": "1"})

				// The app writes back in the spelling it was sent.
				expectStatus(t, v.get("/cart/add", "X-Session-Set-Cart-Items: 3"), http.StatusOK)
				if got, want := storedValues(t, v), map[string]string{"user": "alice", "cart_items": "3"}; !maps.Equal(got, want) {
					t.Fatalf("after X-Session-Set-Cart-Items, stored %v, want %v", got, want)
				}
				expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Cart-Items": "3"})

				expectStatus(t, v.get("/cart/clear", "X-Session-Delete: cart-items"), http.StatusOK)
				if got, want := storedValues(t, v), map[string]string{"user": "alice"}; !maps.Equal(got, want) {
					t.Fatalf("after X-Session-Delete: cart-items, stored %v, want %v", got, want)
				}
				expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice"})
			})
		}
	})
}

// TestFlagValues: a flag takes "true" in any case (Python writes True) and
// nothing else; a refused flag refuses the whole response's commands. The
// app writes each value on its own connection, so that nothing trims it.
func TestFlagValues(t *testing.T) {
	s, _ := newHostileSite(t, "")
	rows := []struct {
		name, head string
		want       string // "renewed", "destroyed" or "refused"
	}{
		{"renew true", "X-Session-Renew: true\r\nX-Session-Set-Flash: hi\r\n", "renewed"},
		{"renew True", "X-Session-Renew: True\r\nX-Session-Set-Flash: hi\r\n", "renewed"},
		{"renew TRUE", "X-Session-Renew: TRUE\r\nX-Session-Set-Flash: hi\r\n", "renewed"},
		{"renew with tabs", "X-Session-Renew:\ttRuE\t\r\nX-Session-Set-Flash: hi\r\n", "renewed"},
		{"destroy True", "X-Session-Destroy: True\r\n", "destroyed"},
		{"destroy-all TRUE", "X-Session-Destroy-All: TRUE\r\n", "destroyed"},
		{"renew 1", "X-Session-Renew: 1\r\nX-Session-Set-Flash: hi\r\n", "refused"},
		{"renew yes", "X-Session-Renew: yes\r\nX-Session-Set-Flash: hi\r\n", "refused"},
		{"renew false", "X-Session-Renew: false\r\nX-Session-Set-Flash: hi\r\n", "refused"},
		{"destroy False", "X-Session-Destroy: False\r\n", "refused"},
		{"renew after a no-break space", "X-Session-Renew: \u00a0true\r\nX-Session-Set-Flash: hi\r\n", "refused"},
		{"renew before an ideographic space", "X-Session-Renew: true\u3000\r\nX-Session-Set-Flash: hi\r\n", "refused"},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			alice := login(t, s, "alice")
			ex := fetch(t, alice, http.MethodGet, "/", "Test-Raw", rawResponse(tc.head))
			if ex.res.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", ex.res.StatusCode)
			}
			assertNoneLeaked(t, ex.res)
			old := sessionOf(t, s, "sid="+alice.sid)
			id := issued(ex.res)
			switch tc.want {
			case "renewed":
				want := map[string]string{"user": "alice", "cart": "apple", "flash": "hi"}
				if got := sessionOf(t, s, "sid="+id); id == "" || id == alice.sid || !maps.Equal(got, want) {
					t.Fatalf("new ID %q opens %v, want %v", id, got, want)
				}
				if len(old) != 0 {
					t.Fatalf("the old ID still opens %v", old)
				}
			case "destroyed":
				if len(old) != 0 || id != "" {
					t.Fatalf("the old ID opens %v, new ID %q; want the session ended", old, id)
				}
			case "refused":
				if want := map[string]string{"user": "alice", "cart": "apple"}; id != "" || !maps.Equal(old, want) {
					t.Fatalf("new ID %q, the old ID opens %v; want nothing changed: %v", id, old, want)
				}
			}
		})
	}
}

// TestReservedKeys: keys beginning with meta- or flash- (or meta_,
// flash_) are refused wherever a key is named, with a message that says
// why, because <prefix>Meta-* and <prefix>Flash-* carry what the plugin
// forwards about a session.
func TestReservedKeys(t *testing.T) {
	const why = `is not a session key: keys beginning with meta- or flash- (or meta_, flash_) are reserved`
	t.Run("config", func(t *testing.T) {
		db := filepath.Join(t.TempDir(), "s.db")
		caddyfile := func(session, rest string) string {
			return fmt.Sprintf("{\n\tadmin localhost:%d\n}\nhttp://127.0.0.1:%d {\n\tsession {\n\t\tstore bolt %s\n\t\t%s\n\t}\n%s\trespond ok\n}\n",
				adminPort, freePort(t), db, session, rest)
		}
		rows := []struct{ name, config, adapter, want string }{
			{"renew_on", caddyfile("renew_on meta-user", ""), "caddyfile", `renew_on: "meta-user" ` + why},
			{"writable", caddyfile("writable user Flash_Notice", ""), "caddyfile", `writable: "Flash_Notice" ` + why},
			{"session matcher", caddyfile("", "\t@seen session meta_seen yes\n\trespond @seen seen\n"), "caddyfile", `session matcher: "meta_seen" ` + why},
			{"JSON renew_on", fmt.Sprintf(`{"admin": {"listen": "localhost:%d"}, "apps": {"http": {"servers": {"s": {"listen": ["127.0.0.1:%d"],
				"routes": [{"handle": [{"handler": "session", "store": {"backend": "bolt", "path": %q}, "renew_on": ["flash-user"]}]}]}}}}}`,
				adminPort, freePort(t), db), "json", `"flash-user" ` + why},
		}
		for _, tc := range rows {
			t.Run(tc.name, func(t *testing.T) {
				// The admin API answers in JSON, which escapes the quotes.
				caddytest.AssertLoadError(t, tc.config, tc.adapter, strings.ReplaceAll(tc.want, `"`, `\"`))
			})
		}
	})

	t.Run("commands and requests", func(t *testing.T) {
		s, _ := newHostileSite(t, "")
		rows := []struct {
			name     string
			commands []string
			added    map[string]string // nil: refused, nothing stored
		}{
			{name: "set a meta- key", commands: []string{"X-Session-Set-Meta-Created: 1", "X-Session-Set-Cart: pear"}},
			{name: "set a flash_ key", commands: []string{"X-Session-Set-Flash_Notice: saved"}},
			{name: "delete a meta_ key", commands: []string{"X-Session-Delete: cart, meta_created"}},
			{name: "keys that only look reserved", commands: []string{"X-Session-Set-Meta: 1", "X-Session-Set-Flash: 2", "X-Session-Set-Metadata: 3"},
				added: map[string]string{"meta": "1", "flash": "2", "metadata": "3"}},
		}
		for _, tc := range rows {
			t.Run(tc.name, func(t *testing.T) {
				alice := login(t, s, "alice")
				before := scrapeMetrics(t)[`caddy_session_commands_rejected_total{reason="reserved_key"}`]
				expectStatus(t, alice.get("/", tc.commands...), http.StatusOK)
				after := scrapeMetrics(t)[`caddy_session_commands_rejected_total{reason="reserved_key"}`]
				want := map[string]string{"user": "alice", "cart": "apple"}
				maps.Copy(want, tc.added)
				if got := sessionOf(t, s, "sid="+alice.sid); !maps.Equal(got, want) {
					t.Fatalf("session afterwards = %v, want %v", got, want)
				}
				if refused := tc.added == nil; (after-before == 1) != refused {
					t.Fatalf("reserved_key rejections went from %v to %v; refused: %v", before, after, refused)
				}
			})
		}

		// A client's headers under the reserved names never reach the app.
		alice := login(t, s, "alice")
		r := alice.do(http.MethodGet, "/", "X-Session-Meta-Remembered", "true", "X-Session-Flash-Notice", "forged")
		expectSession(t, r, map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"})

		// The admin API says why such a key identifies no one.
		a := sessionAPI(t, http.MethodPost, "/session/revoke", `{"key": "Meta-User", "value": "alice"}`)
		if want := strings.ReplaceAll(`"Meta-User" `+why, `"`, `\"`); a.status != http.StatusBadRequest || !strings.Contains(string(a.body), want) {
			t.Fatalf("revoke by a reserved key: %d %s; want 400 with %s", a.status, a.body, want)
		}
	})
}
