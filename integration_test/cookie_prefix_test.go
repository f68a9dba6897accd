package integration_test

import (
	"net/http"
	"testing"
)

// TestHostPrefixCookieNotTossedUnderAnotherName: SECURITY.md ("Duplicate
// cookies") makes a `__Host-` cookie name the defence against a sibling
// subdomain that tosses a session of its own into the victim's browser:
// no other host can set a cookie of that name. But a browser checks the
// prefix on the name as set, byte for byte, and a name that merely
// starts with Unicode white space (U+2000, U+00A0, U+3000, U+0085...) is
// not prefixed: a sibling stores `\u2000__Host-sid` with
// `Domain=example.com` and any path (`document.cookie` takes it), and the
// browser sends it to the site, before the real cookie for a longer path.
// The cookie header's separator is "; " and only its ASCII white space
// (RFC 6265, OWS) is not part of a name; a server that trims every
// Unicode space reads that cookie as `__Host-sid` (PortSwigger, "Cookie
// Chaos", 2025: Django and ASP.NET did). The handler must not: the
// victim must keep their own session, or stay anonymous, never be served
// the attacker's.
func TestHostPrefixCookieNotTossedUnderAnotherName(t *testing.T) {
	s, _ := newHostileSite(t, "cookie __Host-sid {\n\t\t\tsecure always\n\t\t}")
	loginAs := func(user string) string {
		t.Helper()
		res, _ := sendCookies(t, s, "/login", nil, "X-Session-Set-User: "+user)
		for _, c := range res.Cookies() {
			if c.Name == "__Host-sid" && c.MaxAge >= 0 && c.Value != "" {
				return c.Value
			}
		}
		t.Fatalf("the login of %s issued no __Host-sid cookie: %q", user, res.Header.Values("Set-Cookie"))
		return ""
	}
	victim, attacker := loginAs("alice"), loginAs("mallory")

	// Unicode white space a browser keeps at the start of a cookie's name
	// (and so checks no prefix on), and that Go's strings.TrimSpace drops.
	spaces := []struct{ name, s string }{
		{"U+2000 en quad", "\u2000"},
		{"U+00A0 no-break space", "\u00a0"},
		{"U+0085 next line", "\u0085"},
		{"U+3000 ideographic space", "\u3000"},
		{"U+205F medium mathematical space", "\u205f"},
		{"U+2000 twice", "\u2000\u2000"},
	}
	for _, sp := range spaces {
		tossed := sp.s + "__Host-sid=" + attacker
		for _, tc := range []struct {
			name   string
			cookie string
			want   string // the user the app sees; "" for none
		}{
			// A cookie of a longer path is sent first: the sibling's.
			{"before the victim's own", tossed + "; __Host-sid=" + victim, "alice"},
			{"after the victim's own", "__Host-sid=" + victim + "; " + tossed, "alice"},
			{"on a line of its own, first", tossed + "\n__Host-sid=" + victim, "alice"},
			// A visitor with no session yet is not logged in as the
			// attacker (whose cart and keys a login would then carry).
			{"alone", tossed, ""},
		} {
			t.Run(sp.name+"/"+tc.name, func(t *testing.T) {
				res, saw := sendCookies(t, s, "/", splitLines(tc.cookie))
				if res.StatusCode != http.StatusOK {
					t.Fatalf("status %d, want 200", res.StatusCode)
				}
				if got := saw.Headers.Get("X-Session-User"); got != tc.want {
					t.Fatalf("the app sees user %q, want %q: a cookie whose name only starts with white space was read as __Host-sid", got, tc.want)
				}
				if tc.want == "" && len(namespaceIn(saw.Headers)) != 0 {
					t.Fatalf("a visitor without a session got one: %q", saw.Headers)
				}
			})
		}
	}

	// The cookie the browser really sends as __Host-sid, with the ASCII
	// white space the Cookie header may put around it, still opens the
	// session.
	for _, cookie := range []string{
		"__Host-sid=" + victim,
		"theme=dark;__Host-sid=" + victim,
		"theme=dark; \t__Host-sid=" + victim + " ",
	} {
		_, saw := sendCookies(t, s, "/", []string{cookie})
		if got := saw.Headers.Get("X-Session-User"); got != "alice" {
			t.Fatalf("Cookie %q: the app sees user %q, want alice", cookie, got)
		}
	}
}

// splitLines splits a Cookie value at "\n" into one header line each.
func splitLines(s string) []string {
	var lines []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			lines = append(lines, s[start:i])
			start = i + 1
		}
	}
	return append(lines, s[start:])
}
