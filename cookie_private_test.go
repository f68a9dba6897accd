package caddysession

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestPrivateToSharedCaches follows the header of a response to a request
// that forwarded a live session: shared caches (and CDNs, which obey their
// own fields first) must not store it, while the user's browser keeps
// what the app allowed.
func TestPrivateToSharedCaches(t *testing.T) {
	rows := []struct {
		name string
		in   http.Header
		// Cache-Control and Vary afterwards, each line joined with ", ",
		// and the other header names left
		cc, vary string
		kept     []string
	}{
		{"Cache-Control absent", http.Header{}, "private", "Cookie", nil},
		{"public with s-maxage", http.Header{"Cache-Control": {"public, max-age=600, s-maxage=3600"}},
			"private, max-age=600", "Cookie", nil},
		{"public in capitals", http.Header{"Cache-Control": {"PUBLIC,Max-Age=600,S-MAXAGE=1"}},
			"private, Max-Age=600", "Cookie", nil},
		{"max-age only", http.Header{"Cache-Control": {"max-age=600"}}, "private, max-age=600", "Cookie", nil},
		{"no-cache", http.Header{"Cache-Control": {"no-cache"}}, "private, no-cache", "Cookie", nil},
		{"several Cache-Control lines", http.Header{"Cache-Control": {"public", "max-age=600", "s-maxage=60, must-revalidate"}},
			"private, max-age=600, must-revalidate", "Cookie", nil},
		{"only public", http.Header{"Cache-Control": {"public"}}, "private", "Cookie", nil},
		{"a quoted argument is kept whole", http.Header{"Cache-Control": {`no-cache="Set-Cookie, public", public`}},
			`private, no-cache="Set-Cookie, public"`, "Cookie", nil},
		{"a lookalike of private is not private", http.Header{"Cache-Control": {"x-private, max-age=60"}},
			"private, x-private, max-age=60", "Cookie", nil},
		{"private inside a quoted argument is not private", http.Header{"Cache-Control": {`no-cache="private", max-age=60`}},
			`private, no-cache="private", max-age=60`, "Cookie", nil},
		{"the app's private kept as it is", http.Header{"Cache-Control": {"Private, max-age=60"}},
			"Private, max-age=60", "", nil},
		{"the app's private with public kept as it is", http.Header{"Cache-Control": {"public, private"}},
			"public, private", "", nil},
		// private with field names lets a shared cache store the rest of
		// the response (RFC 9111, 5.2.2.7): it is no private at all.
		{`private="Set-Cookie" is made private`, http.Header{"Cache-Control": {`private="Set-Cookie", max-age=60`}},
			"private, max-age=60", "Cookie", nil},
		{`unquoted private=Set-Cookie is made private`, http.Header{"Cache-Control": {`public, Private=Set-Cookie`}},
			"private", "Cookie", nil},
		{`private="a, b" beside a bare private on another line`, http.Header{"Cache-Control": {`private="a, b"`, "private"}},
			`private="a, b", private`, "", nil},
		{"the app's no-store kept as it is", http.Header{"Cache-Control": {"no-store"}}, "no-store", "", nil},
		{"no-store on a second line", http.Header{"Cache-Control": {"public, max-age=600", "No-Store"}},
			"public, max-age=600, No-Store", "", nil},
		{"Vary merged", http.Header{"Vary": {"Accept-Encoding"}}, "private", "Accept-Encoding, Cookie", nil},
		{"Vary of several lines merged", http.Header{"Vary": {"Accept-Encoding", "Origin"}}, "private", "Accept-Encoding, Origin, Cookie", nil},
		{"Vary with cookie already", http.Header{"Vary": {"Accept-Encoding, cookie"}}, "private", "Accept-Encoding, cookie", nil},
		{"Vary with COOKIE on a second line", http.Header{"Vary": {"Origin", "COOKIE"}}, "private", "Origin, COOKIE", nil},
		{"Vary *", http.Header{"Vary": {"*"}}, "private", "*", nil},
		{"Vary * among others", http.Header{"Vary": {"Origin, *"}}, "private", "Origin, *", nil},
		{"a Vary lookalike of cookie", http.Header{"Vary": {"Cookie2"}}, "private", "Cookie2, Cookie", nil},
		{"CDN fields go", http.Header{
			"Cache-Control":                {"public, max-age=600"},
			"Cdn-Cache-Control":            {"max-age=600"},
			"Surrogate-Control":            {"max-age=600"},
			"Cloudflare-Cdn-Cache-Control": {"max-age=600"},
			"X-Accel-Expires":              {"600"},
			"Surrogate-Key":                {"page"},
		}, "private, max-age=600", "Cookie", []string{"Surrogate-Key"}},
		{"CDN fields go beside the app's private", http.Header{
			"Cache-Control":     {"private, max-age=60"},
			"Cdn-Cache-Control": {"public, max-age=600"},
			"surrogate-control": {"max-age=600"}, // set without canonicalization
			"x-accel-expires":   {"@1900000000"},
		}, "private, max-age=60", "", nil},
		{"CDN fields go beside the app's no-store", http.Header{
			"Cache-Control":            {"no-store"},
			"Fastly-Cdn-Cache-Control": {"max-age=600"},
		}, "no-store", "", nil},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.in.Clone()
			privateToSharedCaches(h)
			if got := strings.Join(h.Values("Cache-Control"), ", "); got != tc.cc {
				t.Errorf("Cache-Control %q, want %q", got, tc.cc)
			}
			if got := strings.Join(h.Values("Vary"), ", "); got != tc.vary {
				t.Errorf("Vary %q, want %q", got, tc.vary)
			}
			var names []string
			for name := range h {
				if name != "Cache-Control" && name != "Vary" {
					names = append(names, name)
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, tc.kept) {
				t.Errorf("headers left %q, want %q", names, tc.kept)
			}
			again := h.Clone()
			privateToSharedCaches(again)
			for name, vals := range h {
				if !slices.Equal(again[name], vals) {
					t.Errorf("a second pass changed %s from %q to %q", name, vals, again[name])
				}
			}
		})
	}
}

// TestPrivateToSharedCachesAllocatesNothingOnPrivate: the app that already
// says private or no-store, as most logged-in pages do, costs no
// allocation on the read path.
func TestPrivateToSharedCachesAllocatesNothingOnPrivate(t *testing.T) {
	for _, cc := range []string{"private, max-age=60", "no-store", "no-cache, No-Store"} {
		hdr := http.Header{"Cache-Control": {cc}, "Vary": {"Accept-Encoding"}, "Content-Type": {"text/html"}}
		if n := testing.AllocsPerRun(100, func() { privateToSharedCaches(hdr) }); n != 0 {
			t.Errorf("Cache-Control %q: %v allocations, want none", cc, n)
		}
	}
}

// TestSharedCacheConfig: shared_cache in JSON is private by default,
// allow by choice, in any case, and anything else refused at load.
func TestSharedCacheConfig(t *testing.T) {
	rows := []struct {
		value   string
		allowed bool
		err     bool
	}{
		{"", false, false},
		{"private", false, false},
		{"allow", true, false},
		{"Allow", true, false},
		{"public", false, true},
		{"no-store", false, true},
	}
	for _, tc := range rows {
		h := &Handler{SharedCache: tc.value}
		err := h.provisionSettings()
		switch {
		case tc.err:
			if err == nil || !strings.Contains(err.Error(), "shared_cache must be private or allow") {
				t.Errorf("shared_cache %q: error %v, want one naming shared_cache", tc.value, err)
			}
		case err != nil:
			t.Errorf("shared_cache %q: %v", tc.value, err)
		case h.sharedCacheAllowed != tc.allowed:
			t.Errorf("shared_cache %q: allowed %v, want %v", tc.value, h.sharedCacheAllowed, tc.allowed)
		}
	}
}
