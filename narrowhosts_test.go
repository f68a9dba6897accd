package caddysession

import (
	"slices"
	"testing"
)

// TestNarrowHosts: the hosts of a nested route narrow those of the
// routes around it (both matchers must match), so that a handler gets
// the realm of the hosts it serves, not the union of every host named on
// its way.
func TestNarrowHosts(t *testing.T) {
	cases := []struct {
		outer, inner, want []string
	}{
		{nil, nil, nil},
		{[]string{"a.com", "b.com"}, nil, []string{"a.com", "b.com"}},
		{nil, []string{"a.com"}, []string{"a.com"}},
		{[]string{"a.com", "b.com"}, []string{"a.com"}, []string{"a.com"}},
		{[]string{"a.com", "b.com"}, []string{"b.com"}, []string{"b.com"}},
		{[]string{"*.example.com"}, []string{"admin.example.com"}, []string{"admin.example.com"}},
		{[]string{"a.example.com", "b.example.com"}, []string{"*.example.com"}, []string{"a.example.com", "b.example.com"}},
		{[]string{"*.example.com"}, []string{"*.example.com"}, []string{"*.example.com"}},
		{[]string{"a.com", "b.com", "c.com"}, []string{"b.com", "c.com", "d.com"}, []string{"b.com", "c.com"}},
		// Never reached, or not comparable (placeholders): both, as before.
		{[]string{"a.com"}, []string{"b.com"}, []string{"a.com", "b.com"}},
		{[]string{"a.com"}, []string{"{env.HOST}"}, []string{"a.com", "{env.HOST}"}},
	}
	for _, c := range cases {
		got := narrowHosts(c.outer, c.inner)
		realm := site{listen: []string{":443"}, hosts: got}.realm()
		want := site{listen: []string{":443"}, hosts: c.want}.realm()
		if realm != want {
			t.Errorf("narrowHosts(%q, %q) = %q: realm %q, want %q", c.outer, c.inner, got, realm, want)
		}
	}
	// The outer list is not changed under the caller (a route's siblings
	// narrow the same one).
	outer := []string{"a.com", "b.com"}
	_ = narrowHosts(outer[:1:2], []string{"c.com"})
	if !slices.Equal(outer, []string{"a.com", "b.com"}) {
		t.Fatalf("narrowHosts wrote into the outer list: %q", outer)
	}
}
