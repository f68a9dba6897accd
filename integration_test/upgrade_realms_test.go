package integration_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-session/caddy-session/internal/redistest"
)

// An upgrade keeps the sessions the earlier build stored. What changed
// with realms today is only the realm each handler takes by default (the
// store's records are written as before), so "the data of the earlier
// build" is a session stored under the realm name that build gave the
// handler: the test logs in with that name set as each handler's realm,
// which writes the very record the earlier build wrote, then loads the
// same config with no realm, as the upgraded Caddy reads it, and opens
// each session again. The names in old are those the build of commit
// 72164b7 gave, read off its admin API for these configs.
type upgradeRow struct {
	name string
	// config has {r0}, {r1}... in each session block (the handler's
	// realm) and {store} for its store.
	config string
	old    []string // the realm of each {rN} before the upgrade
	logins []upgradeLogin
	// keep is the realm of each {rN} that the README names to keep the
	// sessions it says are lost ("" for none): with it, they open again.
	keep  []string
	redis bool // on a real redis-server, with a key_prefix, seal_values and remember
}

type upgradeLogin struct {
	host, path string
	// lost: the README says sessions made there do not open after the
	// upgrade, and keep says how to keep them.
	lost bool
}

const upgradeSession = "session {\n\t\t{store}\n\t\t{rN}\n\t}"

// upgradeSessionAt is a session block with the realm placeholder n.
func upgradeSessionAt(n int) string {
	return strings.ReplaceAll(upgradeSession, "{rN}", fmt.Sprintf("{r%d}", n))
}

var upgradeRows = []upgradeRow{{
	name: "one site",
	config: `http://a.localhost:{port} {
	` + upgradeSessionAt(0) + `
	reverse_proxy {up}
}`,
	old:    []string{"a.localhost"},
	logins: []upgradeLogin{{host: "a.localhost", path: "/"}},
}, {
	name: "two sites on one port",
	config: `http://a.localhost:{port} {
	` + upgradeSessionAt(0) + `
	reverse_proxy {up}
}
http://b.localhost:{port} {
	` + upgradeSessionAt(1) + `
	reverse_proxy {up}
}`,
	old:    []string{"a.localhost", "b.localhost"},
	logins: []upgradeLogin{{host: "a.localhost", path: "/"}, {host: "b.localhost", path: "/"}},
}, {
	name: "a site of two hosts",
	config: `http://a.localhost:{port}, http://b.localhost:{port} {
	` + upgradeSessionAt(0) + `
	reverse_proxy {up}
}`,
	old:    []string{"a.localhost,b.localhost"},
	logins: []upgradeLogin{{host: "a.localhost", path: "/"}, {host: "b.localhost", path: "/"}},
}, {
	// README: a realm per host now; log in once more, or name the realm.
	name: "a handle per host of a site of two hosts",
	config: `http://a.localhost:{port}, http://b.localhost:{port} {
	@a host a.localhost
	handle @a {
		` + upgradeSessionAt(0) + `
		reverse_proxy {up}
	}
	@b host b.localhost
	handle @b {
		` + upgradeSessionAt(1) + `
		reverse_proxy {up}
	}
}`,
	old:    []string{"a.localhost,b.localhost", "a.localhost,b.localhost"},
	logins: []upgradeLogin{{host: "a.localhost", path: "/", lost: true}, {host: "b.localhost", path: "/", lost: true}},
	keep:   []string{"a.localhost,b.localhost", "a.localhost,b.localhost"},
}, {
	// One host of the two has a session, in two handlers: it serves
	// that host only, as its one handler would, and shares with no
	// other host's app. Before the fix both took "a.localhost".
	name: "two handlers under the handle of one host of two",
	config: `http://a.localhost:{port}, http://b.localhost:{port} {
	@a host a.localhost
	handle @a {
		handle /app/* {
			` + upgradeSessionAt(0) + `
			reverse_proxy {up}
		}
		handle {
			` + upgradeSessionAt(1) + `
			reverse_proxy {up}
		}
	}
	respond "b"
}`,
	old:    []string{"a.localhost,b.localhost", "a.localhost,b.localhost"},
	logins: []upgradeLogin{{host: "a.localhost", path: "/"}, {host: "a.localhost", path: "/app/"}},
}, {
	name: "the site's session and a stricter one nested under one host",
	config: `http://a.localhost:{port}, http://b.localhost:{port} {
	` + upgradeSessionAt(0) + `
	@a host a.localhost
	handle @a {
		session {
			{store}
			idle_timeout 10m
			{r1}
		}
		reverse_proxy {up}
	}
	reverse_proxy {up}
}`,
	old:    []string{"a.localhost,b.localhost", "a.localhost,b.localhost"},
	logins: []upgradeLogin{{host: "a.localhost", path: "/"}, {host: "b.localhost", path: "/"}},
}, {
	name: "the site's session and a stricter one nested under a path",
	config: `http://a.localhost:{port} {
	` + upgradeSessionAt(0) + `
	handle /admin/* {
		session {
			{store}
			idle_timeout 10m
			{r1}
		}
		reverse_proxy {up}
	}
	reverse_proxy {up}
}`,
	old:    []string{"a.localhost", "a.localhost"},
	logins: []upgradeLogin{{host: "a.localhost", path: "/"}, {host: "a.localhost", path: "/admin/"}},
}, {
	name: "a wildcard site with a handle for one host",
	config: `http://*.localhost:{port} {
	@admin host admin.localhost
	handle @admin {
		` + upgradeSessionAt(0) + `
		reverse_proxy {up}
	}
	handle {
		` + upgradeSessionAt(1) + `
		reverse_proxy {up}
	}
}`,
	old:    []string{"*.localhost,admin.localhost", "*.localhost"},
	logins: []upgradeLogin{{host: "admin.localhost", path: "/"}, {host: "shop.localhost", path: "/"}},
}, {
	// Both handlers serve admin.localhost only: before the fix both
	// took "admin.localhost", and its users were logged out.
	name: "a wildcard site with two handlers under the handle of one host",
	config: `http://*.localhost:{port} {
	@admin host admin.localhost
	handle @admin {
		handle /app/* {
			` + upgradeSessionAt(0) + `
			reverse_proxy {up}
		}
		handle {
			` + upgradeSessionAt(1) + `
			reverse_proxy {up}
		}
	}
	respond "shop"
}`,
	old:    []string{"*.localhost,admin.localhost", "*.localhost,admin.localhost"},
	logins: []upgradeLogin{{host: "admin.localhost", path: "/"}, {host: "admin.localhost", path: "/app/"}},
}, {
	name: "a site of no hosts",
	config: `http://:{port} {
	` + upgradeSessionAt(0) + `
	reverse_proxy {up}
}`,
	old:    []string{"*"},
	logins: []upgradeLogin{{host: "www.example", path: "/"}},
}, {
	name: "a site of no hosts with a handle per path",
	config: `http://:{port} {
	handle /app/* {
		` + upgradeSessionAt(0) + `
		reverse_proxy {up}
	}
	handle {
		` + upgradeSessionAt(1) + `
		reverse_proxy {up}
	}
}`,
	old:    []string{"*", "*"},
	logins: []upgradeLogin{{host: "www.example", path: "/"}, {host: "www.example", path: "/app/"}},
}, {
	// No site of no hosts beside it: nothing to tell the host * apart
	// from. Before the fix both took "(*)", and its users were logged
	// out.
	name: "a site of the host * with a handle per path",
	config: `http://*:{port} {
	handle /app/* {
		` + upgradeSessionAt(0) + `
		reverse_proxy {up}
	}
	handle {
		` + upgradeSessionAt(1) + `
		reverse_proxy {up}
	}
}`,
	old:    []string{"*", "*"},
	logins: []upgradeLogin{{host: "intranet", path: "/"}, {host: "intranet", path: "/app/"}},
}, {
	name: "a site of the host * with a session in its error routes",
	config: `http://*:{port} {
	` + upgradeSessionAt(0) + `
	reverse_proxy {up}
	handle_errors {
		` + upgradeSessionAt(1) + `
		respond "error"
	}
}`,
	old:    []string{"*", "*"},
	logins: []upgradeLogin{{host: "intranet", path: "/"}},
}, {
	// README: the site of the host * beside a site of no hosts is
	// (*) now; log in once more, or name realm *@:port in it.
	name: "a site of the host * beside a site of no hosts",
	config: `http://*:{port} {
	` + upgradeSessionAt(0) + `
	reverse_proxy {up}
}
http://:{port} {
	` + upgradeSessionAt(1) + `
	reverse_proxy {up}
}`,
	old:    []string{"*", "*"},
	logins: []upgradeLogin{{host: "intranet", path: "/", lost: true}, {host: "www.example", path: "/"}},
	keep:   []string{"*", ""},
}, {
	name: "a session with a path matcher",
	config: `http://a.localhost:{port} {
	session /app/* {
		{store}
		{r0}
	}
	reverse_proxy {up}
}`,
	old:    []string{"a.localhost"},
	logins: []upgradeLogin{{host: "a.localhost", path: "/app/"}},
}, {
	// README: a named route's session is of the site that invokes it;
	// earlier versions gave it *@:port. Log in once more, or name it.
	name: "a named route one site invokes",
	config: `&(app) {
	` + upgradeSessionAt(0) + `
}
http://a.localhost:{port} {
	route {
		invoke app
		reverse_proxy {up}
	}
}`,
	old:    []string{"*"},
	logins: []upgradeLogin{{host: "a.localhost", path: "/", lost: true}},
	keep:   []string{"*"},
}, {
	name: "a site of the host * with a handle per path, on redis",
	config: `http://*:{port} {
	handle /app/* {
		` + upgradeSessionAt(0) + `
		reverse_proxy {up}
	}
	handle {
		` + upgradeSessionAt(1) + `
		reverse_proxy {up}
	}
}`,
	old:    []string{"*", "*"},
	logins: []upgradeLogin{{host: "intranet", path: "/"}, {host: "intranet", path: "/app/"}},
	redis:  true,
}, {
	name: "two handlers under the handle of one host, on redis",
	config: `http://a.localhost:{port}, http://b.localhost:{port} {
	@a host a.localhost
	handle @a {
		handle /app/* {
			` + upgradeSessionAt(0) + `
			reverse_proxy {up}
		}
		handle {
			` + upgradeSessionAt(1) + `
			reverse_proxy {up}
		}
	}
	respond "b"
}`,
	old:    []string{"a.localhost,b.localhost", "a.localhost,b.localhost"},
	logins: []upgradeLogin{{host: "a.localhost", path: "/"}, {host: "a.localhost", path: "/app/"}},
	redis:  true,
}}

// TestUpgradeKeepsRealmsOfTheEarlierBuild: sessions stored by the build
// before today's realm changes keep opening after the upgrade, with their
// values, cookie and remember state, except those the README says are
// lost, which the way it gives keeps. A split of a realm that tells no
// two handlers apart (handlers that all serve the same hosts, in sibling
// `handle` blocks or an error route) renamed it all the same, and logged
// its users out.
func TestUpgradeKeepsRealmsOfTheEarlierBuild(t *testing.T) {
	for _, row := range upgradeRows {
		t.Run(row.name, func(t *testing.T) {
			h := newHostSites(t)
			store := "store bolt {db}"
			if row.redis {
				srv := redistest.Start(t)
				store = "store redis " + srv.URL() + " {\n\t\t\tkey_prefix upgrade2:\n\t\t}\n\t\tseal_values {\n\t\t\tindex_key upgrade2-index-key-of-at-least-32-bytes\n\t\t}\n\t\tremember {\n\t\t\tidle_timeout 720h\n\t\t\tabsolute_timeout 2160h\n\t\t}"
			}
			config := func(realms []string) string {
				c := strings.ReplaceAll(row.config, "{store}", store)
				for i := range row.old {
					line := ""
					if i < len(realms) && realms[i] != "" {
						line = fmt.Sprintf("realm %s@:%d", realms[i], h.port)
					}
					c = strings.ReplaceAll(c, fmt.Sprintf("{r%d}", i), line)
				}
				return c
			}

			// The earlier build: each handler stores under its old name.
			h.load(config(row.old))
			cookies := make([]string, len(row.logins))
			for i, l := range row.logins {
				cookies[i] = upgradeLogIn(h, l, fmt.Sprintf("user%d", i), row.redis)
			}
			var want []string
			for _, r := range row.old {
				want = append(want, fmt.Sprintf("%q", fmt.Sprintf("%s@:%d", r, h.port)))
			}
			slices.Sort(want)
			want = slices.Compact(want)
			if got := upgradeRealms(t); !slices.Equal(got, want) {
				t.Fatalf("before the upgrade the store holds realms %s, want %s", strings.Join(got, ", "), strings.Join(want, ", "))
			}

			// The upgraded build, with the same config.
			if status, body := h.reload(config(nil)); status != http.StatusOK {
				t.Fatalf("the upgraded Caddy refused the config: %d %s", status, body)
			}
			for i, l := range row.logins {
				got, set := upgradeOpen(h, l, cookies[i])
				if l.lost {
					if got.Get("X-Session-User") != "" {
						t.Errorf("%s%s: the README says this session is lost at the upgrade, but it opens as %q; say what keeps it now",
							l.host, l.path, got.Get("X-Session-User"))
					}
					continue
				}
				upgradeExpect(t, l, i, got, set, row.redis)
			}
			if row.keep == nil {
				return
			}

			// The way the README gives to keep the lost ones.
			if status, body := h.reload(config(row.keep)); status != http.StatusOK {
				t.Fatalf("the config with the realms that keep the sessions was refused: %d %s", status, body)
			}
			for i, l := range row.logins {
				got, set := upgradeOpen(h, l, cookies[i])
				upgradeExpect(t, l, i, got, set, row.redis)
			}
		})
	}
}

// upgradeLogIn logs user in at l, with a cart (and remembered, on the
// redis rows), and returns its cookie.
func upgradeLogIn(h *hostSites, l upgradeLogin, user string, remember bool) string {
	h.t.Helper()
	commands := []string{"X-Session-Set-User: " + user, "X-Session-Set-Cart: apple-" + user}
	if remember {
		commands = append(commands, "X-Session-Remember: true")
	}
	_, set := upgradeGet(h, l, "", commands...)
	if set == "" {
		h.t.Fatalf("a login at %s%s set no cookie", l.host, l.path)
	}
	if got, _ := upgradeOpen(h, l, set); got.Get("X-Session-User") != user {
		h.t.Fatalf("a login at %s%s does not open there before the upgrade: user %q, want %q", l.host, l.path, got.Get("X-Session-User"), user)
	}
	return set
}

func upgradeOpen(h *hostSites, l upgradeLogin, cookie string) (http.Header, string) {
	h.t.Helper()
	return upgradeGet(h, l, cookie)
}

// upgradeExpect checks that the session of login i opened with its user,
// its cart and (on the redis rows) remembered, and that its read set no
// cookie: the browser's cookie is still the session's.
func upgradeExpect(t *testing.T, l upgradeLogin, i int, got http.Header, set string, remember bool) {
	t.Helper()
	user := fmt.Sprintf("user%d", i)
	if got.Get("X-Session-User") != user || got.Get("X-Session-Cart") != "apple-"+user {
		t.Errorf("%s%s after the upgrade: user %q cart %q, want %q and %q: the session stored before is lost",
			l.host, l.path, got.Get("X-Session-User"), got.Get("X-Session-Cart"), user, "apple-"+user)
		return
	}
	if set != "" {
		t.Errorf("%s%s after the upgrade: a read set a session cookie", l.host, l.path)
	}
	if remember && got.Get("X-Session-Meta-Remembered") != "true" {
		t.Errorf("%s%s after the upgrade: the remembered session is no longer remembered", l.host, l.path)
	}
}

// upgradeGet sends a GET for l with the cookie and commands for the
// upstream, and returns the headers the upstream was given and the sid
// cookie the response set ("" for none).
func upgradeGet(h *hostSites, l upgradeLogin, cookie string, commands ...string) (http.Header, string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", h.port, l.path), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Host = fmt.Sprintf("%s:%d", l.host, h.port)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	for _, c := range commands {
		req.Header.Add("Test-Header", c)
	}
	res, err := h.tester.Client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	assertNoNamespace(h.t, res.Header)
	if res.StatusCode != http.StatusOK {
		h.t.Fatalf("%s%s answered %d: %s", l.host, l.path, res.StatusCode, body)
	}
	var got seen
	if err := json.Unmarshal(body, &got); err != nil {
		h.t.Fatalf("%s%s: the upstream's answer is no JSON (no app reached): %v: %s", l.host, l.path, err, body)
	}
	set := ""
	for _, c := range res.Cookies() {
		if c.Name == "sid" {
			set = c.Name + "=" + c.Value
		}
	}
	return got.Headers, set
}

// upgradeRealms lists the realms of the stored sessions, each once.
func upgradeRealms(t *testing.T) []string {
	t.Helper()
	got := strings.Split(sessionRealms(t), ", ")
	slices.Sort(got)
	return slices.Compact(got)
}
