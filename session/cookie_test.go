package session

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func requestWithCookies(lines ...string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://example.com/", nil)
	if lines != nil {
		r.Header["Cookie"] = lines
	}
	return r
}

func TestCandidates(t *testing.T) {
	a, b, c, d := NewID(), NewID(), NewID(), NewID()
	var many []string // the IDs that ids(n) sends
	for range 9 {
		many = append(many, NewID())
	}
	ids := func(n int) string { // a Cookie line of the first n of many
		var parts []string
		for _, id := range many[:n] {
			parts = append(parts, "sid="+id)
		}
		return strings.Join(parts, "; ")
	}
	idsWant := func(_ int, at ...int) []string { // the IDs of many at these places
		var out []string
		for _, i := range at {
			out = append(out, many[i])
		}
		return out
	}
	tests := []struct {
		name  string
		lines []string
		want  []string
	}{
		{"no cookie header", nil, nil},
		{"empty header", []string{""}, nil},
		{"one", []string{"sid=" + a}, []string{a}},
		{"among others", []string{"theme=dark; sid=" + a + "; lang=en"}, []string{a}},
		{"no spaces", []string{"theme=dark;sid=" + a + ";lang=en"}, []string{a}},
		{"several in one line in order", []string{"sid=" + b + "; sid=" + a}, []string{b, a}},
		{"several header lines", []string{"theme=dark", "sid=" + a, "x=1; sid=" + b}, []string{a, b}},
		{"duplicates", []string{"sid=" + a + "; sid=" + a, "sid=" + a}, []string{a}},
		{"duplicate after another", []string{"sid=" + a + "; sid=" + b + "; sid=" + a}, []string{a, b}},
		{"four, all tried", []string{"sid=" + a + "; sid=" + b, "sid=" + c + "; sid=" + d}, []string{a, b, c, d}},
		{"the first three and the last three", []string{ids(9)}, idsWant(9, 0, 1, 2, 6, 7, 8)},
		{"the last three, on lines of their own", []string{ids(5), "sid=" + a, "sid=" + b + "; sid=" + c}, append(idsWant(5, 0, 1, 2), a, b, c)},
		{"a duplicate among the last three", []string{ids(5) + "; sid=" + a + "; sid=" + b + "; sid=" + a}, append(idsWant(5, 0, 1, 2, 4), a, b)},
		{"an ID of the last three sent again after them", []string{ids(6) + "; sid=" + a + "; sid=" + b + "; sid=" + c + "; sid=" + a}, append(idsWant(6, 0, 1, 2), a, b, c)},
		{"malformed do not use up the three", []string{"sid=x; sid=y; sid=z; sid=" + a}, []string{a}},
		{"quoted", []string{`sid="` + a + `"`}, []string{a}},
		{"too short", []string{"sid=" + a[:IDLength-1]}, nil},
		{"too long", []string{"sid=" + a + "A"}, nil},
		{"oversized", []string{"sid=" + strings.Repeat(a, 100)}, nil},
		{"padded", []string{"sid=" + a[:IDLength-1] + "="}, nil},
		{"bad alphabet", []string{"sid=" + a[:IDLength-1] + "+"}, nil},
		{"non-UTF-8", []string{"sid=" + a[:IDLength-1] + "\xff"}, nil},
		{"non-ASCII", []string{"sid=" + a[:IDLength-2] + "é"}, nil},
		{"empty value", []string{"sid="}, nil},
		{"no value", []string{"sid"}, nil},
		{"name case differs", []string{"SID=" + a}, nil},
		{"name merely contains sid", []string{"xsid=" + a + "; sidx=" + b + "; my_sid=" + c}, nil},
		{"value of another cookie", []string{"other=" + a}, nil},
		{"malformed then good", []string{"sid=bogus", "sid=" + b}, []string{b}},
	}
	ck := &Cookie{Name: DefaultCookieName}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ck.Candidates(requestWithCookies(tt.lines...))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Candidates(%q) = %q, want %q", tt.lines, got, tt.want)
			}
		})
	}
}

func TestCandidatesCustomName(t *testing.T) {
	a, b := NewID(), NewID()
	ck := &Cookie{Name: "__Host-app"}
	got := ck.Candidates(requestWithCookies("sid=" + a + "; __Host-app=" + b))
	if !slices.Equal(got, []string{b}) {
		t.Errorf("Candidates = %q, want [%s]", got, b)
	}
}

func TestStrip(t *testing.T) {
	a, b := NewID(), NewID()
	tests := []struct {
		name  string
		lines []string
		want  []string // nil: no Cookie header left
	}{
		{"no header", nil, nil},
		{"only the session cookie", []string{"sid=" + a}, nil},
		{"only session cookies on several lines", []string{"sid=" + a, "sid=" + b + "; sid=x"}, nil},
		{"first of several", []string{"sid=" + a + "; theme=dark; lang=en"}, []string{"theme=dark; lang=en"}},
		{"middle keeps order", []string{"theme=dark; sid=" + a + "; lang=en"}, []string{"theme=dark; lang=en"}},
		{"last", []string{"theme=dark; lang=en; sid=" + a}, []string{"theme=dark; lang=en"}},
		{"several session cookies", []string{"sid=" + a + "; a=1; sid=" + b + "; b=2"}, []string{"a=1; b=2"}},
		{"other lines untouched", []string{"a=1;b=2", "sid=" + a, "c=3"}, []string{"a=1;b=2", "c=3"}},
		{"line without sid kept verbatim", []string{"a=1 ;  b=2"}, []string{"a=1 ;  b=2"}},
		{"name merely contains sid", []string{"xsid=1; sid=" + a + "; sidx=2; my_sid=3"}, []string{"xsid=1; sidx=2; my_sid=3"}},
		{"only lookalikes", []string{"xsid=1"}, []string{"xsid=1"}},
		{"value contains sid", []string{"note=sid; sid=" + a}, []string{"note=sid"}},
		{"value looks like a cookie", []string{"note=sid=1"}, []string{"note=sid=1"}},
		{"malformed session cookie removed too", []string{"sid=bogus; a=1"}, []string{"a=1"}},
		{"session cookie without value", []string{"sid; a=1"}, []string{"a=1"}},
		{"other case kept", []string{"SID=1; sid=" + a}, []string{"SID=1"}},
		// Found by review: a trailing ';' left an empty Cookie line behind.
		{"trailing semicolon", []string{"sid=" + a + ";"}, nil},
		{"trailing semicolon and space", []string{"sid=" + a + "; "}, nil},
		{"empty parts dropped", []string{"a=1;; sid=" + a + ";"}, []string{"a=1"}},
		// Found by review: Go's net/http and others trim the name, so
		// "sid =ID" reached the upstream as the cookie sid.
		{"space before equals", []string{"sid =" + a + "; a=1"}, []string{"a=1"}},
	}
	ck := &Cookie{Name: DefaultCookieName}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{"X-Other": {"1"}}
			lines := slices.Clone(tt.lines)
			if lines != nil {
				h["Cookie"] = lines
			}
			ck.Strip(h)
			got, ok := h["Cookie"]
			if tt.want == nil {
				if ok {
					t.Fatalf("Cookie = %q, want the header removed", got)
				}
			} else if !slices.Equal(got, tt.want) {
				t.Fatalf("Cookie = %q, want %q", got, tt.want)
			}
			if !slices.Equal(lines, tt.lines) {
				t.Errorf("Strip wrote into the header's old slice: %q, was %q", lines, tt.lines)
			}
			if h.Get("X-Other") != "1" {
				t.Error("Strip touched another header")
			}
			// What an upstream in Go would read.
			r := &http.Request{Header: h}
			if c, err := r.Cookie(ck.Name); err == nil {
				t.Errorf("the upstream still reads cookie %q = %q", c.Name, c.Value)
			}
		})
	}
}

func TestIssue(t *testing.T) {
	id := NewID()
	tests := []struct {
		name       string
		mode       SecureMode
		tls        bool
		wantSecure bool
	}{
		{"auto without TLS", SecureAuto, false, false},
		{"auto with TLS", SecureAuto, true, true},
		{"always without TLS", SecureAlways, false, true},
		{"always with TLS", SecureAlways, true, true},
		{"never without TLS", SecureNever, false, false},
		{"never with TLS", SecureNever, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ck := &Cookie{Name: "sid", Path: "/app", Domain: "example.com", Secure: tt.mode, SameSite: http.SameSiteStrictMode}
			c := ck.Issue(id, tt.tls)
			if c.Name != "sid" || c.Value != id {
				t.Errorf("cookie %s=%s, want sid=%s", c.Name, c.Value, id)
			}
			if c.Secure != tt.wantSecure {
				t.Errorf("Secure = %v, want %v", c.Secure, tt.wantSecure)
			}
			if !c.HttpOnly {
				t.Error("HttpOnly not set")
			}
			if c.Path != "/app" || c.Domain != "example.com" || c.SameSite != http.SameSiteStrictMode {
				t.Errorf("Path, Domain, SameSite = %q, %q, %v", c.Path, c.Domain, c.SameSite)
			}
			if c.MaxAge != 0 || !c.Expires.IsZero() {
				t.Errorf("MaxAge, Expires = %d, %v; want a session cookie", c.MaxAge, c.Expires)
			}
			if err := c.Valid(); err != nil {
				t.Errorf("issued cookie is invalid: %v", err)
			}
			s := c.String()
			for _, attr := range []string{"Max-Age", "Expires"} {
				if strings.Contains(s, attr) {
					t.Errorf("Set-Cookie %q has %s", s, attr)
				}
			}
			for _, attr := range []string{"HttpOnly", "Path=/app", "SameSite=Strict", "Domain=example.com"} {
				if !strings.Contains(s, attr) {
					t.Errorf("Set-Cookie %q lacks %s", s, attr)
				}
			}
			if strings.Contains(s, "Secure") != tt.wantSecure {
				t.Errorf("Set-Cookie %q: Secure present = %v, want %v", s, !tt.wantSecure, tt.wantSecure)
			}
		})
	}
}

func TestExpire(t *testing.T) {
	for _, tls := range []bool{false, true} {
		ck := &Cookie{Name: "sid", Path: "/", SameSite: http.SameSiteLaxMode}
		c := ck.Expire(tls)
		if c.MaxAge >= 0 {
			t.Errorf("MaxAge = %d, want < 0", c.MaxAge)
		}
		if c.Value != "" || c.Name != "sid" || c.Path != "/" || !c.HttpOnly || c.Secure != tls {
			t.Errorf("Expire(%v) = %+v", tls, c)
		}
		s := c.String()
		if !strings.Contains(s, "Max-Age=0") {
			t.Errorf("Set-Cookie %q lacks Max-Age=0", s)
		}
		if !strings.Contains(s, "Expires=Thu, 01 Jan 1970") {
			t.Errorf("Set-Cookie %q lacks an Expires in the past", s)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		ck      Cookie
		wantErr bool
	}{
		{"defaults", Cookie{Name: DefaultCookieName}, false},
		{"defaults with path and lax", Cookie{Name: DefaultCookieName, Path: "/", SameSite: http.SameSiteLaxMode}, false},
		{"strict never", Cookie{Name: "sid", SameSite: http.SameSiteStrictMode, Secure: SecureNever}, false},
		{"empty name", Cookie{Name: ""}, true},
		{"name with space", Cookie{Name: "s id"}, true},
		{"name with semicolon", Cookie{Name: "s;id"}, true},
		{"name with equals", Cookie{Name: "sid="}, true},
		{"name with non-ASCII", Cookie{Name: "sïd"}, true},
		{"none with always", Cookie{Name: "sid", SameSite: http.SameSiteNoneMode, Secure: SecureAlways}, false},
		{"none with auto", Cookie{Name: "sid", SameSite: http.SameSiteNoneMode, Secure: SecureAuto}, true},
		{"none with never", Cookie{Name: "sid", SameSite: http.SameSiteNoneMode, Secure: SecureNever}, true},
		{"host ok", Cookie{Name: "__Host-sid", Path: "/", Secure: SecureAlways}, false},
		{"host with auto", Cookie{Name: "__Host-sid", Path: "/", Secure: SecureAuto}, true},
		{"host with never", Cookie{Name: "__Host-sid", Path: "/", Secure: SecureNever}, true},
		{"host without path", Cookie{Name: "__Host-sid", Secure: SecureAlways}, true},
		{"host with sub path", Cookie{Name: "__Host-sid", Path: "/app", Secure: SecureAlways}, true},
		{"host with domain", Cookie{Name: "__Host-sid", Path: "/", Domain: "example.com", Secure: SecureAlways}, true},
		{"secure ok", Cookie{Name: "__Secure-sid", Secure: SecureAlways}, false},
		{"secure with domain and path", Cookie{Name: "__Secure-sid", Path: "/app", Domain: "example.com", Secure: SecureAlways}, false},
		{"secure with auto", Cookie{Name: "__Secure-sid", Secure: SecureAuto}, true},
		{"secure with never", Cookie{Name: "__Secure-sid", Secure: SecureNever}, true},
		{"partitioned with always", Cookie{Name: "sid", Secure: SecureAlways, Partitioned: true}, false},
		{"partitioned with auto", Cookie{Name: "sid", Secure: SecureAuto, Partitioned: true}, true},
		{"partitioned with never", Cookie{Name: "sid", Secure: SecureNever, Partitioned: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.ck.Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate(%+v) = %v, want error %v", tt.ck, err, tt.wantErr)
			}
			if err != nil && err.Error() == "" {
				t.Error("empty error message")
			}
		})
	}
}

// TestSetCookieHeaders pins the exact Set-Cookie field values, those that
// set the cookie and those that remove it: a browser removes a cookie only
// with one of the same name, domain, path and partition, so the removing
// one carries every attribute of the setting one.
func TestSetCookieHeaders(t *testing.T) {
	const id = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
	const expired = "; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0"
	tests := []struct {
		name string
		ck   Cookie
		tls  bool
		// the attributes after the value, the same when setting and
		// removing except for expired, which removing puts after Domain
		head, tail string
	}{
		{"defaults", Cookie{Name: "sid", Path: "/", SameSite: http.SameSiteLaxMode}, false,
			"; Path=/", "; HttpOnly; SameSite=Lax"},
		{"secure auto over TLS", Cookie{Name: "sid", Path: "/", SameSite: http.SameSiteLaxMode}, true,
			"; Path=/", "; HttpOnly; Secure; SameSite=Lax"},
		{"domain", Cookie{Name: "sid", Path: "/app", Domain: "example.com", SameSite: http.SameSiteStrictMode}, false,
			"; Path=/app; Domain=example.com", "; HttpOnly; SameSite=Strict"},
		{"partitioned", Cookie{Name: "__Host-sid", Path: "/", Secure: SecureAlways, SameSite: http.SameSiteNoneMode, Partitioned: true}, false,
			"; Path=/", "; HttpOnly; Secure; SameSite=None; Partitioned"},
		{"priority low", Cookie{Name: "sid", Path: "/", SameSite: http.SameSiteLaxMode, Priority: PriorityLow}, false,
			"; Path=/", "; HttpOnly; SameSite=Lax; Priority=Low"},
		{"priority medium", Cookie{Name: "sid", Path: "/", SameSite: http.SameSiteLaxMode, Priority: PriorityMedium}, false,
			"; Path=/", "; HttpOnly; SameSite=Lax; Priority=Medium"},
		{"priority high", Cookie{Name: "sid", Path: "/", SameSite: http.SameSiteLaxMode, Priority: PriorityHigh}, false,
			"; Path=/", "; HttpOnly; SameSite=Lax; Priority=High"},
		{"everything", Cookie{Name: "sid", Path: "/", Domain: "example.com", Secure: SecureAlways, SameSite: http.SameSiteNoneMode, Partitioned: true, Priority: PriorityHigh}, false,
			"; Path=/; Domain=example.com", "; HttpOnly; Secure; SameSite=None; Partitioned; Priority=High"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := tt.ck.IssueHeader(id, tt.tls), tt.ck.Name+"="+id+tt.head+tt.tail; got != want {
				t.Errorf("IssueHeader =\n\t%s\nwant\n\t%s", got, want)
			}
			if got, want := tt.ck.ExpireHeader(tt.tls), tt.ck.Name+"="+tt.head+expired+tt.tail; got != want {
				t.Errorf("ExpireHeader =\n\t%s\nwant\n\t%s", got, want)
			}
			// What a client in Go reads back: the attributes it knows.
			res := &http.Response{Header: http.Header{"Set-Cookie": {tt.ck.IssueHeader(id, tt.tls)}}}
			cs := res.Cookies()
			if len(cs) != 1 || cs[0].Value != id || cs[0].Partitioned != tt.ck.Partitioned {
				t.Errorf("a client reads %+v", cs)
			}
		})
	}
}
