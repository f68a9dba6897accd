package caddysession

import (
	"testing"

	"github.com/caddy-session/caddy-session/session"
)

func TestCookieReaches(t *testing.T) {
	cases := []struct {
		name          string
		domain        string
		owner, reader []string // hosts of the sites (none: any host)
		want          bool
	}{
		{"host-only, same host", "", []string{"example.com"}, []string{"example.com"}, true},
		{"host-only, another host", "", []string{"a.example.com"}, []string{"b.example.com"}, false},
		{"host-only, any host", "", nil, []string{"b.example.com"}, true},
		{"host-only, reader of any host", "", []string{"a.example.com"}, nil, true},
		{"host-only, wildcard", "", []string{"*.example.com"}, []string{"b.example.com"}, true},
		{"domain over the reader", "example.com", []string{"a.example.com"}, []string{"b.example.com"}, true},
		{"domain with a dot, in another case", ".Example.com", []string{"a.example.com"}, []string{"B.example.COM"}, true},
		{"domain is the reader", "example.com", []string{"a.example.com"}, []string{"example.com"}, true},
		{"domain over a wildcard reader", "example.com", []string{"a.example.com"}, []string{"*.example.com"}, true},
		{"domain not over the reader", "example.com", []string{"a.example.com"}, []string{"example.org"}, false},
		{"a suffix that is no domain", "ample.com", []string{"a.ample.com"}, []string{"example.com"}, false},
		{"domain, reader of any host", "example.com", []string{"a.example.com"}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWalker()
			o := &Handler{cookie: &session.Cookie{Name: "osid", Domain: tc.domain}}
			h := &Handler{cookie: &session.Cookie{Name: "hsid"}}
			w.sites[o] = site{hosts: tc.owner}
			w.sites[h] = site{hosts: tc.reader}
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
