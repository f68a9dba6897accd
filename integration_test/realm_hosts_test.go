package integration_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestHandlerPerHostIsARealmPerHost: a site of two hosts that
// gives each host an app and a session of its own (a `handle`, `route`
// or `session` matcher per host) has a realm per host, as a hostless site
// with the same matchers has. The realm was made of the union of the
// hosts of the site and of its nested matchers, so both handlers had the
// realm "a,b@:port": a user of a's app, with a session a's app filled
// (X-Session-User: admin), sent its cookie to b.localhost and b's app got
// X-Session-User: admin. Such handlers, none of which serves the hosts of
// all, now take the hosts each serves (those of nested routes narrow the
// site's, as their matchers all must match); where one handler serves
// them all (the site's own, a stricter one nested in it), they share its
// realm, and every realm that needs no split keeps its name, so that an
// upgrade keeps its sessions.
func TestHandlerPerHostIsARealmPerHost(t *testing.T) {
	const twoHosts = "http://a.localhost:{port}, http://b.localhost:{port}"
	const session = "session {\n\t\t\tstore bolt {db}\n\t\t}"
	cases := []struct {
		name, config string
		a, b         string // the two hosts
		realms       []string
		shared       bool // one session for both hosts
	}{{
		name: "a handle per host",
		config: twoHosts + ` {
	@a host a.localhost
	handle @a {
		` + session + `
		reverse_proxy {up}
	}
	@b host b.localhost
	handle @b {
		` + session + `
		reverse_proxy {up}
	}
}`,
		a: "a.localhost", b: "b.localhost", realms: []string{"a.localhost", "b.localhost"},
	}, {
		name: "a route per host",
		config: twoHosts + ` {
	@a host a.localhost
	route @a {
		` + session + `
		reverse_proxy {up}
	}
	@b host b.localhost
	route @b {
		` + session + `
		reverse_proxy {up}
	}
}`,
		a: "a.localhost", b: "b.localhost", realms: []string{"a.localhost", "b.localhost"},
	}, {
		name: "a session matcher per host",
		config: twoHosts + ` {
	@a host a.localhost
	@b host b.localhost
	session @a {
		store bolt {db}
	}
	session @b {
		store bolt {db}
	}
	reverse_proxy {up}
}`,
		a: "a.localhost", b: "b.localhost", realms: []string{"a.localhost", "b.localhost"},
	}, {
		name: "a wildcard site and a handle for one host",
		config: `http://*.localhost:{port} {
	@admin host admin.localhost
	handle @admin {
		` + session + `
		reverse_proxy {up}
	}
	handle {
		` + session + `
		reverse_proxy {up}
	}
}`,
		// Two realms before as well: their names stay, so an upgrade
		// keeps their sessions.
		a: "admin.localhost", b: "shop.localhost", realms: []string{"*.localhost,admin.localhost", "*.localhost"},
	}, {
		name: "one handler for both hosts",
		config: twoHosts + ` {
	session {
		store bolt {db}
	}
	reverse_proxy {up}
}`,
		a: "a.localhost", b: "b.localhost", realms: []string{"a.localhost,b.localhost"}, shared: true,
	}, {
		name: "a wildcard handle over both hosts",
		config: twoHosts + ` {
	@any host *.localhost
	handle @any {
		` + session + `
		reverse_proxy {up}
	}
}`,
		// One handler: its realm keeps its name.
		a: "a.localhost", b: "b.localhost", realms: []string{"*.localhost,a.localhost,b.localhost"}, shared: true,
	}, {
		name: "the site's handler and a stricter one nested under one host",
		config: twoHosts + ` {
	session {
		store bolt {db}
	}
	@a host a.localhost
	handle @a {
		session {
			store bolt {db}
			idle_timeout 10m
		}
		reverse_proxy {up}
	}
	reverse_proxy {up}
}`,
		// The site's handler serves both hosts: the nested one is
		// stricter on a, and shares its sessions.
		a: "a.localhost", b: "b.localhost", realms: []string{"a.localhost,b.localhost"}, shared: true,
	}, {
		name: "a site of one-label hosts beside a site of no hosts",
		config: `http://*:{port} {
	` + session + `
	reverse_proxy {up}
}
http://:{port} {
	` + session + `
	reverse_proxy {up}
}`,
		// Both were "*@:port": a login at an intranet name opened on
		// the catch-all site.
		a: "intranet", b: "www.example", realms: []string{"(*)", "*"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHostSites(t)
			h.load(c.config)
			admin := h.login(c.a, "admin")
			want := ""
			if c.shared {
				want = "admin"
			}
			if got, _ := h.user(c.b, admin); got != want {
				t.Errorf("%s with the cookie of a session made at %s: user %q, want %q", c.b, c.a, got, want)
			}
			if !c.shared {
				bob := h.login(c.b, "bob")
				if got, _ := h.user(c.a, bob); got != "" {
					t.Errorf("%s with the cookie of a session made at %s: user %q, want none", c.a, c.b, got)
				}
				if got, _ := h.user(c.a, admin); got != "admin" {
					t.Errorf("%s with its own cookie: user %q, want admin", c.a, got)
				}
			}
			var want2 []string
			for _, r := range c.realms {
				want2 = append(want2, fmt.Sprintf("%q", fmt.Sprintf("%s@:%d", r, h.port)))
			}
			got := strings.Split(sessionRealms(t), ", ")
			slices.Sort(got)
			got = slices.Compact(got)
			if !slices.Equal(got, want2) {
				t.Errorf("the store holds sessions of realms %s, want %s", strings.Join(got, ", "), strings.Join(want2, ", "))
			}
		})
	}
}

// TestTokenOfOneHostOpensNotTheOther: with a handle per host of one
// site, each host's session_jwks publishes the keys of its own realm, and
// the app of a.localhost refuses a token signed for a session of
// b.localhost. Both handlers had one realm, and so one signing key.
func TestTokenOfOneHostOpensNotTheOther(t *testing.T) {
	h := newHostSites(t)
	handle := func(host string) string {
		return fmt.Sprintf(`
	@%[1]s host %[1]s.localhost
	handle @%[1]s {
		session_jwks /jwks
		session {
			store bolt {db}
			sign
		}
		reverse_proxy {up}
	}`, host)
	}
	h.load("http://a.localhost:{port}, http://b.localhost:{port} {" + handle("a") + handle("b") + "\n}\n")
	bob := h.login("b.localhost", "bob")
	hostA := fmt.Sprintf("a.localhost:%d", h.port)
	hostB := fmt.Sprintf("b.localhost:%d", h.port)
	got, _ := h.visit("b.localhost", bob, nil)
	token := tokenOf(t, got.Headers)
	if token == "" {
		t.Fatal("b's app got no token: the session handler of b did not sign")
	}
	if _, _, err := verify(token, h.keySet(hostB), hostB); err != nil {
		t.Fatalf("b's own key set refuses b's token: %v", err)
	}
	for _, aud := range []string{hostA, hostB} {
		if claims, _, err := verify(token, h.keySet(hostA), aud); err == nil {
			t.Errorf("a's key set accepts a token of b's session for aud %s: claims %+v", aud, claims)
		}
	}
}

// keySet fetches the key set that session_jwks serves at /jwks of host.
func (h *hostSites) keySet(host string) jose.JSONWebKeySet {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/jwks", h.port), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Host = host
	res, err := h.tester.Client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil || len(set.Keys) == 0 {
		h.t.Fatalf("GET /jwks at %s: %d %v: %s", host, res.StatusCode, err, body)
	}
	return set
}
