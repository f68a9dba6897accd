package integration_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// navigate is a top-level navigation of the browser: a link followed, a
// form's redirect, an address typed.
func (v *visitor) navigate(method, path string, commands ...string) *response {
	v.site.t.Helper()
	h := []string{"Sec-Fetch-Mode", "navigate", "Accept", "text/html,application/xhtml+xml,*/*;q=0.8"}
	for _, c := range commands {
		h = append(h, "Test-Header", c)
	}
	return v.do(method, path, h...)
}

// fetch is a request of the page's scripts, as fetch() sends it.
func (v *visitor) fetch(path string) *response {
	v.site.t.Helper()
	return v.do(http.MethodGet, path, "Sec-Fetch-Mode", "cors", "Accept", "application/json")
}

// prefetch loads path as Chromium's speculation rules do, ahead of the
// user: a navigation that may never be shown.
func (v *visitor) prefetch(path string) *response {
	v.site.t.Helper()
	return v.do(http.MethodGet, path, "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document",
		"Sec-Purpose", "prefetch", "Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
}

// flashes returns the flash headers the app saw.
func (r *response) flashes() map[string]string {
	out := map[string]string{}
	for name, v := range r.session() {
		if strings.HasPrefix(name, "X-Session-Flash-") {
			out[name] = v
		}
	}
	return out
}

func expectFlashes(t *testing.T, r *response, want map[string]string) {
	t.Helper()
	got := r.flashes()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the app got flash values %v, want %v", got, want)
	}
}

var saved = map[string]string{"X-Session-Flash-Notice": "Saved"}

// TestFlashAfterAPost: a flash value set on the response of a form's POST
// reaches the app on the next navigation, not on the requests of scripts
// and images before it, and only once.
func TestFlashAfterAPost(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, "")
		v := s.visitor()
		v.navigate(http.MethodGet, "/login", "X-Session-Set-User: alice")
		r := v.navigate(http.MethodPost, "/settings", "X-Session-Set-Theme: dark", "X-Session-Flash-Notice: Saved")
		expectStatus(t, r, http.StatusOK)
		expectFlashes(t, r, map[string]string{})

		expectFlashes(t, v.fetch("/api/unread"), map[string]string{})
		expectFlashes(t, v.do(http.MethodGet, "/logo.png", "Sec-Fetch-Mode", "no-cors", "Accept", "image/avif,image/webp,*/*"), map[string]string{})
		expectFlashes(t, v.get("/health"), map[string]string{}) // neither header: no browser's navigation

		r = v.navigate(http.MethodGet, "/settings")
		expectFlashes(t, r, saved)
		expectSession(t, r, map[string]string{"X-Session-User": "alice", "X-Session-Theme": "dark", "X-Session-Flash-Notice": "Saved"})
		expectFlashes(t, v.navigate(http.MethodGet, "/settings"), map[string]string{})

		// Without Sec-Fetch-Mode, as from an older browser: Accept decides.
		v.get("/save", "X-Session-Flash-Notice: Saved again")
		expectFlashes(t, v.do(http.MethodGet, "/api", "Accept", "application/json"), map[string]string{})
		expectFlashes(t, v.do(http.MethodGet, "/page", "Accept", "text/html"), map[string]string{"X-Session-Flash-Notice": "Saved again"})
		expectFlashes(t, v.do(http.MethodGet, "/page", "Accept", "text/html"), map[string]string{})
	})
}

// TestFlashOnMatcher: flash_on names the requests that get flash values.
func TestFlashOnMatcher(t *testing.T) {
	onEachStoreWith(t, "@pages path /app/*", func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, "flash_on @pages")
		v := s.visitor()
		v.get("/login", "X-Session-Set-User: alice", "X-Session-Flash-Welcome: Hello")
		expectFlashes(t, v.navigate(http.MethodGet, "/elsewhere"), map[string]string{})
		expectFlashes(t, v.prefetch("/app/home"), map[string]string{})
		expectFlashes(t, v.get("/app/home"), map[string]string{"X-Session-Flash-Welcome": "Hello"})
		expectFlashes(t, v.get("/app/home"), map[string]string{})
	})
}

// TestFlashOnEveryRequest: flash_on * hands flash values to the very next
// request, whatever it is, but a page the browser loads ahead of the user,
// which may never be shown.
func TestFlashOnEveryRequest(t *testing.T) {
	s := newSite(t, "flash_on *")
	v := s.visitor()
	v.get("/login", "X-Session-Set-User: alice", "X-Session-Flash-Welcome: Hello")
	expectFlashes(t, v.prefetch("/next"), map[string]string{})
	expectFlashes(t, v.fetch("/api/unread"), map[string]string{"X-Session-Flash-Welcome": "Hello"})
	expectFlashes(t, v.navigate(http.MethodGet, "/"), map[string]string{})
}

// TestFlashConcurrentNavigations: of many navigations of one session sent
// at once, exactly one gets the flash value.
func TestFlashConcurrentNavigations(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, "")
		v := s.visitor()
		v.get("/login", "X-Session-Set-User: alice")
		for round := range 5 {
			v.get("/save", fmt.Sprintf("X-Session-Flash-Notice: Saved %d", round))
			const n = 16
			start := make(chan struct{})
			var wg sync.WaitGroup
			got := make(chan string, n)
			errs := make(chan error, n)
			for range n {
				wg.Go(func() {
					<-start
					flash, err := navigateOnce(s, v.sid)
					if err != nil {
						errs <- err
						return
					}
					got <- flash
				})
			}
			close(start)
			wg.Wait()
			close(got)
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			var seen []string
			for f := range got {
				if f != "" {
					seen = append(seen, f)
				}
			}
			if want := fmt.Sprintf("Saved %d", round); len(seen) != 1 || seen[0] != want {
				t.Fatalf("round %d: %d navigations got the flash value: %q; want exactly one, %q", round, len(seen), seen, want)
			}
		}
		expectFlashes(t, v.navigate(http.MethodGet, "/"), map[string]string{})
	})
}

// navigateOnce sends a navigation of the session sid, on a goroutine of
// its own, and returns the flash value the app got ("" if none).
func navigateOnce(s *site, sid string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, s.url("/page"), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Cookie", "sid="+sid)
	res, err := s.tester.Client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", res.StatusCode, body)
	}
	var saw seen
	if err := json.Unmarshal(body, &saw); err != nil {
		return "", err
	}
	return saw.Headers.Get("X-Session-Flash-Notice"), nil
}

// TestFlashFailedResponseLeavesIt: a navigation answered with a 500 or
// more (by the app, or by Caddy for an upstream that fails) does not use
// up the flash value: the next one gets it.
func TestFlashFailedResponseLeavesIt(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, "")
		v := s.visitor()
		v.get("/login", "X-Session-Set-User: alice", "X-Session-Flash-Notice: Saved")

		r := v.do(http.MethodGet, "/page", "Sec-Fetch-Mode", "navigate", "Test-Status", "500")
		expectStatus(t, r, http.StatusInternalServerError)
		expectFlashes(t, r, saved) // the app got it, and failed
		r = v.do(http.MethodGet, "/page", "Sec-Fetch-Mode", "navigate", "Test-Status", "503",
			"Test-Header", "X-Session-Flash-Notice: Set by a failed response")
		expectStatus(t, r, http.StatusServiceUnavailable)
		expectFlashes(t, r, saved) // its own commands are ignored

		expectFlashes(t, v.navigate(http.MethodGet, "/page"), saved)
		expectFlashes(t, v.navigate(http.MethodGet, "/page"), map[string]string{})

		// A 404 is an answer: it uses the value up.
		v.get("/save", "X-Session-Flash-Notice: Saved")
		r = v.do(http.MethodGet, "/missing", "Sec-Fetch-Mode", "navigate", "Test-Status", "404")
		expectStatus(t, r, http.StatusNotFound)
		expectFlashes(t, r, saved)
		expectFlashes(t, v.navigate(http.MethodGet, "/page"), map[string]string{})
	})
}

// TestFlashStartsASession: a flash value set on a response with no session
// starts one, as a key does, and one set beside X-Session-Destroy starts
// the new session that holds only it: "you have been logged out".
func TestFlashStartsASession(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, "")
		anon := s.visitor()
		anon.get("/newsletter", "X-Session-Flash-Notice: Subscribed")
		if anon.sid == "" {
			t.Fatal("a flash value on an anonymous response started no session")
		}
		r := anon.navigate(http.MethodGet, "/")
		expectSession(t, r, map[string]string{"X-Session-Flash-Notice": "Subscribed"})

		v := s.visitor()
		v.get("/login", "X-Session-Set-User: alice", "X-Session-Flash-Stale: from before")
		before := v.sid
		v.get("/logout", "X-Session-Destroy: true", "X-Session-Flash-Notice: You have been logged out")
		if v.sid == "" || v.sid == before {
			t.Fatalf("logout with a flash value: cookie %q, was %q; want a new session", v.sid, before)
		}
		r = v.navigate(http.MethodGet, "/")
		expectSession(t, r, map[string]string{"X-Session-Flash-Notice": "You have been logged out"})
		expectSession(t, v.navigate(http.MethodGet, "/"), map[string]string{})
	})
}

// TestFlashLimits: flash values count with the keys; a response that sets
// one past a limit changes nothing, and is logged and counted as a key
// past the limit is.
func TestFlashLimits(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, "limits {\n\t\t\tkeys 3\n\t\t\tvalue_size 16\n\t\t\tsession_size 64\n\t\t}")
		v := s.visitor()
		v.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Cart: apple")
		before := scrapeMetrics(t)
		metric := func(reason string) string {
			return fmt.Sprintf(`caddy_session_commands_rejected_total{reason=%q}`, reason)
		}
		v.get("/save", "X-Session-Flash-A: 1", "X-Session-Flash-B: 2")
		v.get("/save", "X-Session-Flash-Notice: "+strings.Repeat("x", 17), "X-Session-Set-Theme: dark")
		v.get("/save", "X-Session-Flash-Meta-X: 1")
		// 18 bytes of keys, and 47 of a flash value: over 64 together.
		v.get("/save", "X-Session-Flash-"+strings.Repeat("n", 31)+": "+strings.Repeat("x", 16))
		after := scrapeMetrics(t)
		for _, reason := range []string{"too_many_keys", "value_too_large", "reserved_key", "session_too_large"} {
			if after[metric(reason)] != before[metric(reason)]+1 {
				t.Errorf("%s went from %v to %v, want one more", metric(reason), before[metric(reason)], after[metric(reason)])
			}
		}
		r := v.navigate(http.MethodGet, "/")
		expectSession(t, r, map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"})

		// Within them, it is stored.
		v.get("/save", "X-Session-Flash-Notice: Saved")
		expectFlashes(t, v.navigate(http.MethodGet, "/"), saved)
	})
}

// TestFlashHostileInbound: a client that sends X-Session-Flash-* headers,
// in every spelling the hostile suite tries, never gets them to the app:
// the app sees the session's own flash value, or none.
func TestFlashHostileInbound(t *testing.T) {
	s, _ := newHostileSite(t, "")
	spellings := []string{
		"X-Session-Flash-Notice", "x-session-flash-notice", "X-SESSION-FLASH-NOTICE", "X_Session_Flash_Notice",
		"x_session_flash_notice", "X-Session_Flash-Notice", "X_SESSION-FLASH_NOTICE", "x-Session_fLaSh-nOtIcE",
		"X.Session.Flash.Notice", "X-Session-Flash-", "X-Session-Flash-Other",
	}
	for _, pending := range []bool{true, false} {
		for _, name := range spellings {
			t.Run(fmt.Sprintf("%s, flash value pending: %v", name, pending), func(t *testing.T) {
				v := login(t, s, "alice")
				if pending {
					v.get("/save", "X-Session-Flash-Notice: Saved")
				}
				raw := "GET / HTTP/1.1\r\n" + name + ": forged\r\nSec-Fetch-Mode: navigate\r\n" +
					"Connection: X-Session-Flash-Notice\r\n" +
					"Host: 127.0.0.1\r\nCookie: sid=" + v.sid + "\r\nConnection: close\r\n\r\n"
				res, body, err := rawExchange(t, s, raw)
				if err != nil {
					t.Fatal(err)
				}
				if res.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", res.StatusCode, body)
				}
				assertNoneLeaked(t, res)
				var saw appSaw
				if err := json.Unmarshal(body, &saw); err != nil {
					t.Fatalf("app answer %q: %v", body, err)
				}
				var flashes []string
				for _, n := range namespaceIn(saw.Headers) {
					if strings.Contains(strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(n)), "flash") {
						flashes = append(flashes, n+": "+strings.Join(saw.Headers[n], ","))
					}
				}
				want := []string{}
				if pending {
					want = []string{"X-Session-Flash-Notice: Saved"}
				}
				if fmt.Sprint(flashes) != fmt.Sprint(want) {
					t.Fatalf("the app saw %q, want %q", flashes, want)
				}
			})
		}
	}
}

// TestFlashPutBackAcrossALogin: a navigation takes the flash value of an
// anonymous session, and its response fails after a login (on another
// tab) gave the session a new ID. The value goes back, once, into the
// logged-in session, where the login would have carried it had it not
// been taken: the next navigation gets it, and the one after does not.
func TestFlashPutBackAcrossALogin(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s, g := gatedSite(t, newSite)
		v := s.visitor()
		v.get("/newsletter", "X-Session-Flash-Notice: Saved")
		if v.sid == "" {
			t.Fatal("no session")
		}
		failing := v.startWith(g, "failing", []string{"Sec-Fetch-Mode", "navigate", "Test-Status", "500"})
		v.get("/login", "X-Session-Set-User: alice")
		expectStatus(t, &response{Response: failing.finish(t)}, http.StatusInternalServerError)
		r := v.navigate(http.MethodGet, "/")
		expectSession(t, r, map[string]string{"X-Session-User": "alice", "X-Session-Flash-Notice": "Saved"})
		expectFlashes(t, v.navigate(http.MethodGet, "/"), map[string]string{})
	})
}

// TestFlashNotTakenByAFrame: a flash value is for the next page, a
// top-level navigation; a frame of the page (an iframe, which browsers
// load with Sec-Fetch-Mode: navigate too, and Sec-Fetch-Dest: iframe)
// does not take it.
func TestFlashNotTakenByAFrame(t *testing.T) {
	s := newSite(t, "")
	v := s.visitor()
	v.get("/login", "X-Session-Set-User: alice")
	v.get("/save", "X-Session-Flash-Notice: Saved")
	expectFlashes(t, v.do(http.MethodGet, "/widget", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe", "Accept", "text/html"), map[string]string{})
	expectFlashes(t, v.do(http.MethodGet, "/settings", "Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document"), saved)
	expectFlashes(t, v.navigate(http.MethodGet, "/settings"), map[string]string{})
}

// TestFlashNotTakenByALoadAhead: a page the browser loads in case the user
// goes there (a prefetch or prerender of speculation rules, sent as a
// navigation) may never be shown, so it leaves the flash values for the
// page the user opens.
func TestFlashNotTakenByALoadAhead(t *testing.T) {
	ahead := [][]string{
		{"Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document", "Sec-Purpose", "prefetch"},
		{"Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document", "Sec-Purpose", "prefetch;prerender"},
		{"Accept", "text/html", "Purpose", "prefetch"},
		{"Accept", "text/html", "X-Moz", "prefetch"},
	}
	s := newSite(t, "")
	v := s.visitor()
	v.get("/login", "X-Session-Set-User: alice")
	v.get("/save", "X-Session-Flash-Notice: Saved")
	for _, h := range ahead {
		expectFlashes(t, v.do(http.MethodGet, "/next", h...), map[string]string{})
	}
	expectFlashes(t, v.navigate(http.MethodGet, "/next"), saved)
	expectFlashes(t, v.navigate(http.MethodGet, "/next"), map[string]string{})
}
