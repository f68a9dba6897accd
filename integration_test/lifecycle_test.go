package integration_test

import (
	"fmt"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
)

func TestAnonymousTrafficGetsNoSession(t *testing.T) {
	s := newSite(t, "")
	v := s.visitor()
	v.cookies = "theme=dark"
	r := v.get("/")
	expectStatus(t, r, http.StatusOK)
	expectSession(t, r, map[string]string{})
	if c := r.Header.Values("Set-Cookie"); len(c) != 0 {
		t.Fatalf("anonymous request got cookies %v", c)
	}
	if got := r.seen.Headers.Get("Cookie"); got != "theme=dark" {
		t.Fatalf("upstream saw Cookie %q, want the client's other cookies", got)
	}
}

func TestLoginCartLogout(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, "")
		v := s.visitor()
		v.cookies = "theme=dark"

		// Login: the upstream sets the user; a session and a cookie are born.
		r := v.get("/login", "X-Session-Set-User: alice")
		expectStatus(t, r, http.StatusOK)
		c := r.sessionCookie()
		if c == nil {
			t.Fatal("login set no session cookie")
		}
		if !c.HttpOnly || c.Path != "/" || c.SameSite != http.SameSiteLaxMode || c.Secure || c.MaxAge != 0 || !c.Expires.IsZero() {
			t.Fatalf("session cookie attributes wrong: %s", r.Header.Get("Set-Cookie"))
		}
		if got := r.Header.Get("Cache-Control"); got != "no-store" {
			t.Fatalf("Cache-Control = %q on a response that sets the session cookie, want no-store", got)
		}
		loginID := v.sid

		// The session reaches the upstream; the session cookie does not.
		r = v.get("/whoami")
		expectSession(t, r, map[string]string{"X-Session-User": "alice"})
		if got := r.seen.Headers.Get("Cookie"); got != "theme=dark" {
			t.Fatalf("upstream saw Cookie %q, want only theme=dark", got)
		}
		if len(r.Header.Values("Set-Cookie")) != 0 {
			t.Fatal("a read of the session set a cookie")
		}

		// Cart: two writes that keep the ID.
		v.get("/cart/add", "X-Session-Set-Cart: apple")
		v.get("/cart/add", "X-Session-Set-Cart: apple,pear", "X-Session-Set-Theme: dark")
		if v.sid != loginID {
			t.Fatal("a cart write changed the session ID")
		}
		r = v.get("/cart")
		expectSession(t, r, map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple,pear", "X-Session-Theme": "dark"})

		// Delete a key.
		v.get("/prefs", "X-Session-Delete: theme")
		r = v.get("/cart")
		expectSession(t, r, map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple,pear"})

		// Logout: the session ends server-side and the cookie is expired.
		r = v.get("/logout", "X-Session-Destroy: true")
		c = r.sessionCookie()
		if c == nil || c.MaxAge >= 0 {
			t.Fatalf("logout did not expire the cookie: %v", r.Header.Values("Set-Cookie"))
		}
		old := &visitor{site: s, sid: loginID}
		expectSession(t, old.get("/whoami"), map[string]string{})
	})
}

func TestLoginRotatesTheID(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, "")
		v := s.visitor()
		v.get("/", "X-Session-Set-Cart: apple")
		anonID := v.sid
		if anonID == "" {
			t.Fatal("setting a key created no session")
		}

		// A login (a change of user) issues a new ID and keeps the data.
		v.get("/login", "X-Session-Set-User: alice")
		if v.sid == anonID || v.sid == "" {
			t.Fatal("login did not rotate the session ID")
		}
		expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"})
		expectSession(t, (&visitor{site: s, sid: anonID}).get("/"), map[string]string{})

		// Setting the same user again does not rotate.
		loginID := v.sid
		v.get("/login", "X-Session-Set-User: alice")
		if v.sid != loginID {
			t.Fatal("setting an unchanged user rotated the ID")
		}

		// An explicit renewal rotates and keeps the data.
		v.get("/sudo", "X-Session-Renew: true")
		if v.sid == loginID {
			t.Fatal("X-Session-Renew did not rotate the ID")
		}
		expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"})
		expectSession(t, (&visitor{site: s, sid: loginID}).get("/"), map[string]string{})
	})
}

func TestForgedIDIsNeverAdopted(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, "")
		forged := strings.Repeat("A", 43)
		v := &visitor{site: s, sid: forged}
		expectSession(t, v.get("/"), map[string]string{})
		v.get("/login", "X-Session-Set-User: alice")
		if v.sid == forged || v.sid == "" {
			t.Fatalf("a login with a forged ID kept it instead of issuing a new one")
		}
	})
}

func TestConcurrentWritesOfDifferentKeysAllLand(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, "")
		v := s.visitor()
		v.get("/login", "X-Session-Set-User: alice")
		const writers = 24
		var wg sync.WaitGroup
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := &visitor{site: s, sid: v.sid}
				r := w.get("/", fmt.Sprintf("X-Session-Set-K%d: v%d", i, i))
				if r.StatusCode != http.StatusOK || w.sid != v.sid {
					t.Errorf("writer %d: status %d, sid changed %v", i, r.StatusCode, w.sid != v.sid)
				}
			}()
		}
		wg.Wait()
		got := v.get("/").session()
		for i := range writers {
			if got[fmt.Sprintf("X-Session-K%d", i)] != fmt.Sprintf("v%d", i) {
				t.Errorf("write of k%d was lost: %v", i, got)
			}
		}
	})
}

func TestSpoofedNamespaceHeadersNeverReachTheUpstream(t *testing.T) {
	s := newSite(t, "")
	spellings := []string{
		"X-Session-User", "x-session-user", "X-SESSION-USER", "X_Session_User",
		"x_session_user", "X-Session_User", "X_SESSION-USER", "X-Session-Set-User",
	}
	for _, logged := range []bool{false, true} {
		v := s.visitor()
		if logged {
			v.get("/login", "X-Session-Set-User: alice")
		}
		for _, name := range spellings {
			r := v.do(http.MethodGet, "/", name, "mallory")
			want := map[string]string{}
			if logged {
				want["X-Session-User"] = "alice"
			}
			expectSession(t, r, want)
		}
	}
}

func TestUpstreamCookiesPassThrough(t *testing.T) {
	s := newSite(t, "")
	v := s.visitor()
	r := v.get("/login", "X-Session-Set-User: alice", "Set-Cookie: lang=en; Path=/")
	var names []string
	for _, c := range r.Cookies() {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "lang,sid" && strings.Join(names, ",") != "sid,lang" {
		t.Fatalf("cookies = %v, want the upstream's lang and the session's sid", names)
	}
}

func TestForwardCookie(t *testing.T) {
	s := newSite(t, "forward_cookie")
	v := s.visitor()
	v.get("/login", "X-Session-Set-User: alice")
	r := v.get("/")
	if got := r.seen.Headers.Get("Cookie"); got != "sid="+v.sid {
		t.Fatalf("with forward_cookie the upstream saw Cookie %q", got)
	}
}

func TestIdleAndAbsoluteExpiry(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, "idle_timeout 10m\n\t\tabsolute_timeout 1h\n\t\ttouch_interval 1m")
		v := s.visitor()
		v.get("/login", "X-Session-Set-User: alice")

		// Used every 8 minutes, the session outlives its idle timeout...
		for range 6 {
			clock.Advance(8 * time.Minute)
			expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice"})
		}
		// ...but not its absolute timeout (48m so far; 16m more passes 1h).
		clock.Advance(8 * time.Minute)
		expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice"})
		clock.Advance(8 * time.Minute)
		expectSession(t, v.get("/"), map[string]string{})

		// Idle: a fresh session left alone for the idle timeout ends.
		w := s.visitor()
		w.get("/login", "X-Session-Set-User: bob")
		clock.Advance(9 * time.Minute)
		expectSession(t, w.get("/"), map[string]string{"X-Session-User": "bob"})
		clock.Advance(10 * time.Minute)
		expectSession(t, w.get("/"), map[string]string{})
	})
}

func TestRejectedCommandsChangeNothing(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, "limits {\n\t\t\tkeys 3\n\t\t\tvalue_size 16\n\t\t}\n\t\twritable user cart a b c")
		v := s.visitor()
		v.get("/login", "X-Session-Set-User: alice")
		id := v.sid
		cases := map[string][]string{
			"invalid key":     {"X-Session-Set-Cart: apple", "X-Session-Set-B%d: x"},
			"not writable":    {"X-Session-Set-Cart: apple", "X-Session-Set-Role: admin"},
			"value too large": {"X-Session-Set-Cart: apple", "X-Session-Set-A: " + strings.Repeat("x", 17)},
			"too many keys":   {"X-Session-Set-Cart: apple", "X-Session-Set-A: 1", "X-Session-Set-B: 2"},
			"unknown command": {"X-Session-Set-Cart: apple", "X-Session-Frobnicate: yes"},
			"bad flag":        {"X-Session-Set-Cart: apple", "X-Session-Destroy: yes"},
			"set and delete":  {"X-Session-Set-Cart: apple", "X-Session-Delete: cart"},
		}
		for name, commands := range cases {
			t.Run(name, func(t *testing.T) {
				r := v.get("/", commands...)
				expectStatus(t, r, http.StatusOK) // still delivered
				if v.sid != id || len(r.Header.Values("Set-Cookie")) != 0 {
					t.Fatal("a rejected response changed the session cookie")
				}
				expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice"})
			})
		}
	})
}

func TestCommandsOnErrorResponsesAreIgnored(t *testing.T) {
	s := newSite(t, "")
	v := s.visitor()
	v.get("/login", "X-Session-Set-User: alice")
	r := v.do(http.MethodGet, "/", "Test-Status", "500", "Test-Header", "X-Session-Set-User: mallory", "Test-Header", "X-Session-Destroy: true")
	expectStatus(t, r, http.StatusInternalServerError)
	expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice"})

	// A 4xx still carries commands: an app may log out on a 403.
	r = v.do(http.MethodGet, "/", "Test-Status", "403", "Test-Header", "X-Session-Set-Flash: denied")
	expectStatus(t, r, http.StatusForbidden)
	expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Flash": "denied"})
}

func TestStreamedResponse(t *testing.T) {
	s := newSite(t, "")
	v := s.visitor()
	r := v.do(http.MethodGet, "/stream", "Test-Flush", "1", "Test-Header", "X-Session-Set-User: alice")
	expectStatus(t, r, http.StatusOK)
	if v.sid == "" {
		t.Fatal("a streamed response that set a key issued no cookie")
	}
	expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice"})
}

func TestEarlyHintsCarryNoNamespaceHeaders(t *testing.T) {
	s := newSite(t, "")
	req, _ := http.NewRequest(http.MethodGet, s.url("/"), nil)
	req.Header.Add("Test-Early-Hints", "X-Session-Set-User: mallory")
	req.Header.Add("Test-Early-Hints", "Link: </style.css>; rel=preload")
	var hints []http.Header
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		hints = append(hints, http.Header(h))
		return nil
	}}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	res, err := s.tester.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if len(hints) != 2 || hints[1].Get("Link") == "" {
		t.Fatalf("want two 103 responses, the second with its Link header; got %v", hints)
	}
	for _, h := range hints {
		assertNoNamespace(t, h)
	}
	assertNoNamespace(t, res.Header)
	if len(res.Cookies()) != 0 {
		t.Fatal("commands on a 1xx response created a session")
	}
}

func TestSessionSurvivesReload(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, "")
		v := s.visitor()
		v.get("/login", "X-Session-Set-User: alice")
		for i := range 3 {
			s.options = fmt.Sprintf("idle_timeout %dm", 30+i) // a real change of config
			s.load()
			expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice"})
		}
	})
}
