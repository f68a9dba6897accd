package caddysession

import (
	"testing"

	"github.com/caddy-session/caddy-session/session"
)

// TestCookieReachesWildcardsAndSharedSites: a cookie's domain
// reaches a site whose wildcard matches the domain itself, and a handler
// of a named route several sites invoke is at each of them.
func TestCookieReachesWildcardsAndSharedSites(t *testing.T) {
	cases := []struct {
		name          string
		domain        string
		owner, reader [][]string // the hosts of each site the handler is at
		want          bool
	}{
		{"domain that the reader's wildcard matches", "a.example.com", [][]string{{"a.example.com"}}, [][]string{{"*.example.com"}}, true},
		{"domain in another case that the wildcard matches", ".A.Example.com", [][]string{{"a.example.com"}}, [][]string{{"*.EXAMPLE.com"}}, true},
		{"domain under the wildcard's suffix by two labels", "x.a.example.com", [][]string{{"x.a.example.com"}}, [][]string{{"*.example.com"}}, false},
		{"domain over the wildcard's hosts", "example.com", [][]string{{"a.example.com"}}, [][]string{{"*.example.com"}}, true},
		{"domain of another tree", "a.example.org", [][]string{{"a.example.org"}}, [][]string{{"*.example.com"}}, false},
		{"host-only, the reader's second site", "", [][]string{{"b.example.com"}}, [][]string{{"a.example.com"}, {"b.example.com"}}, true},
		{"host-only, the owner's second site", "", [][]string{{"a.example.com"}, {"b.example.com"}}, [][]string{{"b.example.com"}}, true},
		{"host-only, no site in common", "", [][]string{{"a.example.com"}, {"b.example.com"}}, [][]string{{"c.example.com"}}, false},
		{"domain over the reader's second site", "b.example.com", [][]string{{"b.example.com"}}, [][]string{{"a.example.com"}, {"x.b.example.com"}}, true},
	}
	place := func(w *walker, h *Handler, sites [][]string) {
		w.sites[h] = site{hosts: sites[0]}
		if len(sites) > 1 {
			for _, hosts := range sites {
				w.shared[h] = append(w.shared[h], site{hosts: hosts})
			}
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWalker()
			o := &Handler{cookie: &session.Cookie{Name: "osid", Domain: tc.domain}}
			h := &Handler{cookie: &session.Cookie{Name: "hsid"}}
			place(w, o, tc.owner)
			place(w, h, tc.reader)
			if got := w.cookieReaches(o, h); got != tc.want {
				t.Errorf("cookieReaches = %v, want %v", got, tc.want)
			}
			w.setForeignCookies([]*Handler{o, h})
			if got := len(h.foreignCookies) == 1; got != tc.want {
				t.Errorf("the reader takes off the other's cookie: %v, want %v", got, tc.want)
			}
			if o.readsStash != tc.want {
				t.Errorf("the owner reads the IDs the reader stashed: %v, want %v", o.readsStash, tc.want)
			}
		})
	}
}
