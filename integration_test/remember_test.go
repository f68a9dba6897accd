package integration_test

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/redistest"
)

// The site of the remember-me tests: sessions idle out after 10 minutes
// and last an hour at most; remembered ones idle out after 2 hours and
// last 6.
const rememberOpts = `idle_timeout 10m
		absolute_timeout 1h
		touch_interval 1m
		remember {
			idle_timeout 2h
			absolute_timeout 6h
		}`

// What the app sees of alice's session, remembered or not.
var (
	aliceRemembered = map[string]string{"X-Session-User": "alice", "X-Session-Meta-Remembered": "true"}
	alicePlain      = map[string]string{"X-Session-User": "alice"}
	anonymous       = map[string]string{}
)

// clone is another browser holding the visitor's cookie: its old ID.
func (v *visitor) clone() *visitor { c := *v; return &c }

// expectPersistent checks that the response issued a new ID in a cookie
// whose Max-Age runs to the session's absolute deadline, left away.
func expectPersistent(t *testing.T, r *response, before string, left time.Duration) {
	t.Helper()
	expectPersistentSince(t, r, before, left, time.Now())
}

// expectPersistentSince is expectPersistent for a session created after
// created, a moment of the real clock taken before the request that
// created it: left is counted on the session clock from that creation,
// and the real time since it passed on that clock too. A loaded machine
// can take whole seconds over the requests in between, each one off the
// cookie's Max-Age; any other deadline (6 hours from the remember, or
// the normal timeouts) is minutes or hours away from left.
func expectPersistentSince(t *testing.T, r *response, before string, left time.Duration, created time.Time) {
	t.Helper()
	c := r.sessionCookie()
	if c == nil || c.Value == before || c.Value == "" {
		t.Fatalf("Set-Cookie %q: want a new ID", r.Header.Values("Set-Cookie"))
	}
	// The test's clock and the request's may be a second apart, or as
	// many as have passed since created.
	want := int(left.Seconds())
	least := want - max(1, int(math.Ceil(time.Since(created).Seconds())))
	if c.MaxAge < least || c.MaxAge > want {
		t.Fatalf("Set-Cookie %q: Max-Age %d, want %d (or down to %d: the real seconds since the session's creation)", r.Header.Get("Set-Cookie"), c.MaxAge, want, least)
	}
	if !strings.Contains(r.Header.Get("Cache-Control"), "no-store") {
		t.Fatalf("a response with a session cookie lacks Cache-Control: no-store: %v", r.Header)
	}
}

// expectBrowserSession checks that the response issued a new ID in a
// browser-session cookie: no Max-Age, no Expires.
func expectBrowserSession(t *testing.T, r *response, before string) {
	t.Helper()
	c := r.sessionCookie()
	raw := r.Header.Get("Set-Cookie")
	if c == nil || c.Value == before || c.Value == "" || strings.Contains(raw, "Max-Age") || strings.Contains(raw, "Expires") {
		t.Fatalf("Set-Cookie %q: want a new ID in a browser-session cookie", raw)
	}
}

// expectNoSetCookie checks that the response set no cookie.
func expectNoSetCookie(t *testing.T, r *response) {
	t.Helper()
	if c := r.Header.Values("Set-Cookie"); len(c) != 0 {
		t.Fatalf("Set-Cookie %q, want none", c)
	}
}

// TestRememberMe follows remembered sessions through a real Caddy: a login
// with the box ticked, a session remembered later and forgotten again,
// each under a new ID with the cookie and the timeouts that go with it.
func TestRememberMe(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, rememberOpts)

		// A login with the box ticked: a persistent cookie to the
		// absolute deadline, 6 hours on.
		v := s.visitor()
		r := v.get("/login", "X-Session-Set-User: alice", "X-Session-Remember: true")
		expectPersistent(t, r, "", 6*time.Hour)
		expectSession(t, v.get("/"), aliceRemembered)
		// Past the normal idle and absolute timeouts, used every 50
		// minutes; the cookie stays as it was.
		for range 3 {
			clock.Advance(50 * time.Minute)
			r = v.get("/")
			expectSession(t, r, aliceRemembered)
			expectNoSetCookie(t, r)
		}
		// Two hours unused end it.
		clock.Advance(2 * time.Hour)
		expectSession(t, v.get("/"), anonymous)

		// A session remembered after the login gets a new ID, its cookie
		// lasting to 6 hours after the login; the old ID opens nothing.
		w := s.visitor()
		created := time.Now()
		r = w.get("/login", "X-Session-Set-User: alice")
		expectBrowserSession(t, r, "")
		clock.Advance(8 * time.Minute)
		expectSession(t, w.get("/"), alicePlain)
		clock.Advance(8 * time.Minute)
		old := w.clone()
		r = w.get("/settings", "X-Session-Remember: true")
		expectPersistentSince(t, r, old.sid, 6*time.Hour-16*time.Minute, created)
		expectSession(t, old.get("/"), anonymous)
		clock.Advance(50 * time.Minute) // past both normal timeouts
		expectSession(t, w.get("/"), aliceRemembered)
		// Asking again for what it is changes nothing.
		r = w.get("/settings", "X-Session-Remember: true")
		expectNoSetCookie(t, r)

		// Forgotten within the normal timeouts: a new ID in a
		// browser-session cookie, and the normal timeouts.
		x := s.visitor()
		x.get("/login", "X-Session-Set-User: alice", "X-Session-Remember: true")
		clock.Advance(5 * time.Minute)
		old = x.clone()
		r = x.get("/settings", "X-Session-Remember: false")
		expectBrowserSession(t, r, old.sid)
		expectSession(t, old.get("/"), anonymous)
		expectSession(t, x.get("/"), alicePlain)
		// Asking again for what it is changes nothing.
		expectNoSetCookie(t, x.get("/settings", "X-Session-Remember: false"))
		clock.Advance(10 * time.Minute)
		expectSession(t, x.get("/"), anonymous)

		// Forgotten past the normal absolute timeout, or unused for longer
		// than the normal idle timeout: it ends, and its cookie with it.
		for _, wait := range []time.Duration{70 * time.Minute, 15 * time.Minute} {
			y := s.visitor()
			y.get("/login", "X-Session-Set-User: alice", "X-Session-Remember: true")
			if wait > time.Hour {
				clock.Advance(50 * time.Minute)
				expectSession(t, y.get("/"), aliceRemembered)
				clock.Advance(wait - 50*time.Minute)
			} else {
				clock.Advance(wait)
			}
			old = y.clone()
			r = y.get("/settings", "X-Session-Remember: false", "X-Session-Set-Theme: dark")
			expectSession(t, r, aliceRemembered) // the request had the session
			if c := r.sessionCookie(); c == nil || c.MaxAge >= 0 || y.sid != "" {
				t.Fatalf("forgotten %s after the login: Set-Cookie %q, want the cookie expired", wait, r.Header.Values("Set-Cookie"))
			}
			expectSession(t, old.get("/"), anonymous)
		}

		// Nothing to remember: no session, no key set.
		z := s.visitor()
		expectNoSetCookie(t, z.get("/", "X-Session-Remember: true"))
		expectNoSetCookie(t, z.get("/", "X-Session-Remember: false"))
		// A login without the box, and a session that is not remembered
		// told to forget: nothing.
		r = z.get("/login", "X-Session-Set-User: alice", "X-Session-Remember: false")
		expectBrowserSession(t, r, "")
		expectNoSetCookie(t, z.get("/", "X-Session-Remember: false"))
		expectSession(t, z.get("/"), alicePlain)
	})
}

// TestRememberedSessionRotatesAndEnds: a remembered session still gets a
// new ID when its user changes, and stays remembered; a logout, a logout
// everywhere and the admin API's revocations end it; the admin API shows
// which sessions are remembered; and the app never sees a client's
// X-Session-Meta-Remembered.
func TestRememberedSessionRotatesAndEnds(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, rememberOpts)
		forged := []string{"X-Session-Meta-Remembered", "true", "X_Session_Meta_Remembered", "true", "X-Session-Meta-Remembered-At", "now"}

		// A client cannot claim a remembered session, anonymous or not.
		a := s.visitor()
		created := time.Now()
		expectSession(t, a.do(http.MethodGet, "/", forged...), anonymous)
		a.get("/login", "X-Session-Set-User: alice")
		expectSession(t, a.do(http.MethodGet, "/", forged...), alicePlain)
		a.get("/settings", "X-Session-Remember: true")
		expectSession(t, a.do(http.MethodGet, "/", forged...), aliceRemembered)

		// A login as another user rotates the ID, and keeps the session
		// remembered, to the same absolute deadline.
		clock.Advance(30 * time.Minute)
		old := a.clone()
		r := a.get("/login", "X-Session-Set-User: bob")
		expectPersistentSince(t, r, old.sid, 6*time.Hour-30*time.Minute, created)
		expectSession(t, a.get("/"), map[string]string{"X-Session-User": "bob", "X-Session-Meta-Remembered": "true"})
		expectSession(t, old.get("/"), anonymous)
		// So does X-Session-Renew.
		old = a.clone()
		expectPersistentSince(t, a.get("/renew", "X-Session-Renew: true"), old.sid, 6*time.Hour-30*time.Minute, created)

		// The admin API shows which sessions are remembered.
		plain := s.visitor()
		plain.get("/login", "X-Session-Set-User: carol")
		var page apiPage
		sessionAPI(t, http.MethodGet, "/session/sessions", "").decode(t, http.StatusOK, &page)
		remembered := map[string]bool{}
		for _, ss := range page.Sessions {
			remembered[ss.Hash] = ss.Remembered
		}
		if len(remembered) != 2 || !remembered[a.adminHash()] || remembered[plain.adminHash()] {
			t.Fatalf("the admin API lists %+v, want bob's session remembered and carol's not", page.Sessions)
		}
		var one apiSession
		sessionAPI(t, http.MethodGet, "/session/sessions/"+a.adminHash(), "").decode(t, http.StatusOK, &one)
		if !one.Remembered || !one.AbsoluteDeadline.Equal(one.Created.Add(6*time.Hour)) {
			t.Fatalf("the admin API shows %+v, want it remembered, to 6 hours after its creation", one)
		}

		// A logout ends it.
		old = a.clone()
		r = a.get("/logout", "X-Session-Destroy: true")
		if c := r.sessionCookie(); c == nil || c.MaxAge >= 0 {
			t.Fatalf("logout: Set-Cookie %q, want the cookie expired", r.Header.Values("Set-Cookie"))
		}
		expectSession(t, old.get("/"), anonymous)

		// A logout everywhere ends every remembered session of the user.
		devices := []*visitor{s.visitor(), s.visitor(), s.visitor()}
		for i, d := range devices {
			d.get("/login", "X-Session-Set-User: dave", fmt.Sprintf("X-Session-Remember: %t", i < 2))
		}
		clock.Advance(30 * time.Minute) // past the normal idle timeout
		held := devices[0].clone()
		devices[0].get("/logout", "X-Session-Destroy-All: true")
		expectSession(t, held.get("/"), anonymous)
		for _, d := range devices[1:] {
			expectSession(t, d.get("/"), anonymous)
		}

		// The admin API's revocations end it.
		e := s.visitor()
		e.get("/login", "X-Session-Set-User: erin", "X-Session-Remember: true")
		sessionAPI(t, http.MethodDelete, "/session/sessions/"+e.adminHash(), "").decode(t, http.StatusOK, new(map[string]any))
		expectSession(t, e.get("/"), anonymous)
		f := s.visitor()
		f.get("/login", "X-Session-Set-User: frank", "X-Session-Remember: true")
		sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "frank"}`).decode(t, http.StatusOK, new(map[string]any))
		expectSession(t, f.get("/"), anonymous)
	})
}

// TestRememberedSessionSurvivesReloadAndRestart: a remembered session
// outlives reloads of the config and a stop and start of the site, and
// is still judged by the remember timeouts then: longer than the normal
// idle timeout, no longer than the remember one (of the config in force).
func TestRememberedSessionSurvivesReloadAndRestart(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, rememberOpts)
		v := s.visitor()
		v.get("/login", "X-Session-Set-User: alice", "X-Session-Remember: true")

		// A reload that lengthens the remember idle timeout.
		s.options = strings.Replace(rememberOpts, "idle_timeout 2h", "idle_timeout 3h", 1)
		s.load()
		clock.Advance(50 * time.Minute)
		expectSession(t, v.get("/"), aliceRemembered)

		// Caddy stops serving the site (its store closed), then serves it
		// again.
		s.reload(fmt.Sprintf("{\n\tadmin localhost:%d\n}\n", adminPort))
		s.load()
		clock.Advance(2*time.Hour + 50*time.Minute)
		expectSession(t, v.get("/"), aliceRemembered)

		// A reload back to 2 hours ends a session unused for that long.
		s.options = rememberOpts
		s.load()
		clock.Advance(2 * time.Hour)
		expectSession(t, v.get("/"), anonymous)
	})
}

// TestRememberedSessionSurvivesARestartOfTheBinary stops the Caddy process
// and starts a new one on the same store, bolt or Redis: the remembered
// session and its cookie are still there.
func TestRememberedSessionSurvivesARestartOfTheBinary(t *testing.T) {
	slow(t, "stops and starts the Caddy binary")
	for _, backend := range []string{"bolt", "redis"} {
		t.Run(backend, func(t *testing.T) {
			store := "store bolt " + filepath.Join(t.TempDir(), "sessions.db")
			if backend == "redis" {
				store = "store redis " + redistest.Start(t).URL()
			}
			up := startUpstream(t)
			port, admin := freePort(t), freePort(t)
			p := startCaddy(t, fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	session {
		%s
		remember {
			idle_timeout 2d
		}
	}
	reverse_proxy %s
}
`, admin, port, store, up.addr()), admin)
			waitPort(t, port)

			s := &site{t: t, tester: caddytest.NewTester(t), port: port}
			s.tester.Client.Jar = nil
			v := s.visitor()
			r := v.get("/login", "X-Session-Set-User: alice", "X-Session-Remember: true")
			expectPersistent(t, r, "", 30*24*time.Hour)

			p.stop()
			p.start()
			waitPort(t, port)

			expectSession(t, v.get("/"), aliceRemembered)
		})
	}
}

// TestRememberMeRecipe runs the README's protected-area recipe with the
// login form's "remember me" box: a login app answers a ticked box with
// X-Session-Remember: true, as the README shows, and the visitor keeps a
// persistent cookie; without the box, a browser-session one.
func TestRememberMeRecipe(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" && r.Method == http.MethodPost {
			_ = r.ParseForm()
			w.Header().Set("X-Session-Set-User", r.PostForm.Get("user"))
			if r.PostForm.Get("remember") != "" {
				w.Header().Set("X-Session-Remember", "true")
			}
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		serveUpstream(w, r)
	}))
	t.Cleanup(app.Close)
	s := recipeSite(t, "<!-- recipe: protected area -->", &upstream{app})
	s.tester.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	ticked, unticked := s.visitor(), s.visitor()
	r := postForm(t, ticked, "user=alice&remember=1")
	expectStatus(t, r, http.StatusSeeOther)
	expectPersistent(t, r, "", 30*24*time.Hour)
	expectSession(t, ticked.get("/cart"), aliceRemembered)

	r = postForm(t, unticked, "user=bob")
	expectBrowserSession(t, r, "")
	expectSession(t, unticked.get("/cart"), map[string]string{"X-Session-User": "bob"})
}

// postForm posts a login form through the visitor.
func postForm(t *testing.T, v *visitor, form string) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, v.site.url("/login"), strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if v.sid != "" {
		req.Header.Set("Cookie", "sid="+v.sid)
	}
	res, err := v.site.tester.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for _, c := range res.Cookies() {
		if c.Name == "sid" && c.MaxAge >= 0 {
			v.sid = c.Value
		}
	}
	assertNoNamespace(t, res.Header)
	return &response{Response: res}
}

// TestRememberEvents: session.remembered follows the created or renewed
// event of the new ID, with remembered true or false, and a session that
// X-Session-Remember: false ends is destroyed with cause expired; no event
// holds an ID.
func TestRememberEvents(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s := newSite(t, rememberOpts)
		s.globals = sessionEvents
		s.load()
		takeEvents()
		var ids []string
		expect := func(step string, want ...string) {
			t.Helper()
			got := takeEvents()
			var names []string
			for _, e := range got {
				data := e.data(t)
				name := e.name
				switch e.name {
				case "session.remembered":
					name = fmt.Sprintf("%s %v", e.name, data["remembered"])
				case "session.destroyed":
					name = fmt.Sprintf("%s %v", e.name, data["cause"])
				}
				names = append(names, name)
				if data["identity"] != "alice" || data["session"] == nil {
					t.Errorf("%s: %s %s, want alice's session named", step, e.name, e.raw)
				}
				for _, id := range ids {
					if strings.Contains(e.raw, id) {
						t.Errorf("%s: event %s holds a session ID: %s", step, e.name, e.raw)
					}
				}
			}
			if strings.Join(names, ", ") != strings.Join(want, ", ") {
				t.Fatalf("%s: events %q, want %q", step, names, want)
			}
		}
		v := s.visitor()
		v.get("/login", "X-Session-Set-User: alice", "X-Session-Remember: true")
		ids = append(ids, v.sid)
		expect("a remembered login", "session.created", "session.remembered true")
		v.get("/settings", "X-Session-Remember: true")
		expect("remember again")
		v.get("/settings", "X-Session-Remember: false")
		ids = append(ids, v.sid)
		expect("forget", "session.renewed", "session.remembered false")
		v.get("/settings", "X-Session-Remember: true")
		ids = append(ids, v.sid)
		expect("remember", "session.renewed", "session.remembered true")
		clock.Advance(50 * time.Minute)
		v.get("/")
		clock.Advance(20 * time.Minute)
		before := scrapeMetrics(t)
		v.get("/settings", "X-Session-Remember: false")
		expect("forget past the normal timeouts", "session.destroyed expired")
		metric := fmt.Sprintf(`caddy_session_expired_total{store=%q}`, strings.Fields(s.store)[1])
		if after := scrapeMetrics(t); after[metric] != before[metric]+1 {
			t.Errorf("%s went from %v to %v, want one more", metric, before[metric], after[metric])
		}
	})
}

// TestRememberConfigIsRefused: remember timeouts that would end a
// remembered session sooner than another are refused when Caddy loads the
// config, with a message that names them.
func TestRememberConfigIsRefused(t *testing.T) {
	cases := []struct{ name, options, want string }{
		{"remember idle shorter than idle", "idle_timeout 2h\n\t\tremember {\n\t\t\tidle_timeout 1h\n\t\t}", "remember: idle_timeout (1h0m0s) is shorter than idle_timeout (2h0m0s)"},
		{"remember absolute shorter than absolute", "remember {\n\t\t\tabsolute_timeout 6h\n\t\t}", "remember: absolute_timeout (6h0m0s) is shorter than absolute_timeout (12h0m0s)"},
		{"remember absolute shorter than remember idle", "remember {\n\t\t\tidle_timeout 40d\n\t\t}", "remember: absolute_timeout (720h0m0s) is shorter than its idle_timeout (960h0m0s)"},
		{"unknown remember setting", "remember {\n\t\t\tmax_age 1h\n\t\t}", `unknown remember subdirective "max_age"`},
		{"remember with an argument", "remember 30d", "wrong argument count"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			caddytest.AssertLoadError(t, fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	session {
		%s
	}
	respond ok
}`, adminPort, freePort(t), withStore(t, c.options)),
				"caddyfile", strings.ReplaceAll(c.want, `"`, `\"`))
		})
	}
}

// TestRequestInFlightAcrossARemember: a request that loaded the session
// before it was remembered under a new ID carries its changes into the
// remembered session and gets no cookie; one that asked to remember it
// too moves it on again, and the browser gets the last ID, persistent.
func TestRequestInFlightAcrossARemember(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s, g := gatedSite(t, newSite)
		s.options = rememberOpts
		s.load()
		v := s.visitor()
		v.get("/login", "X-Session-Set-User: alice")

		slow := v.start(g, "cart", "X-Session-Set-Cart: apple")
		twice := v.start(g, "twice", "X-Session-Remember: true")
		r := v.get("/settings", "X-Session-Remember: true")
		expectPersistent(t, r, "", 6*time.Hour)
		expectNoCookie(t, slow.finish(t), "a request in flight across the remember")

		// Within the forward record's two minutes: a request that answers
		// later finds it over (TestSecurityForwardRecordCarriesForTwoMinutesOnly).
		res := twice.finish(t)
		c := sidCookie(res)
		if c == nil || c.Value == v.sid || c.MaxAge <= 0 {
			t.Fatalf("the second remember: Set-Cookie %q, want a new persistent cookie", res.Header.Values("Set-Cookie"))
		}
		old := v.clone()
		v.sid = c.Value
		clock.Advance(50 * time.Minute) // past the normal idle timeout
		expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple", "X-Session-Meta-Remembered": "true"})
		expectSession(t, old.get("/"), anonymous)
	})
}

// TestRememberEventsOfARace: two requests of a session both answer
// X-Session-Remember: true; the first makes it remembered, the second,
// loaded before, reaches the remembered session through its forward
// record and only renews it. session.remembered is told once, for the
// change of persistence that happened, not for the request that found it
// done.
func TestRememberEventsOfARace(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(*testing.T, string) *site) {
		s, g := gatedSite(t, newSite)
		s.options = rememberOpts
		s.globals = sessionEvents
		s.load()
		v := s.visitor()
		v.get("/login", "X-Session-Set-User: alice")
		takeEvents()
		names := func() string {
			var out []string
			for _, e := range takeEvents() {
				out = append(out, e.name)
			}
			return strings.Join(out, ", ")
		}
		twice := v.start(g, "twice", "X-Session-Remember: true")
		v.get("/settings", "X-Session-Remember: true")
		if got, want := names(), "session.renewed, session.remembered"; got != want {
			t.Fatalf("the first remember: events %q, want %q", got, want)
		}
		twice.finish(t)
		if got, want := names(), "session.renewed"; got != want {
			t.Fatalf("the second remember, of a session already remembered: events %q, want %q", got, want)
		}
	})
}
