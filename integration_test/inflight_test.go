package integration_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// gates hold requests at the upstream until the test lets them go, so that
// a test can run other requests while one is in flight, in an order it
// chooses: a request with `Test-Gate: <name>` reaches the upstream (so its
// session is loaded), says so on arrived(name), and is answered only after
// release(name).
type gates struct {
	mu      sync.Mutex
	arrive  map[string]chan struct{}
	release map[string]chan struct{}
}

func (g *gates) chans(name string) (arrive, release chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.arrive == nil {
		g.arrive, g.release = map[string]chan struct{}{}, map[string]chan struct{}{}
	}
	if _, ok := g.arrive[name]; !ok {
		g.arrive[name], g.release[name] = make(chan struct{}), make(chan struct{})
	}
	return g.arrive[name], g.release[name]
}

func (g *gates) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if name := r.Header.Get("Test-Gate"); name != "" {
		arrive, release := g.chans(name)
		close(arrive)
		<-release
	}
	serveUpstream(w, r)
}

// openAll lets any request still held go, so that the server can close.
func (g *gates) openAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, ch := range g.release {
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
}

// gatedSite is a site whose upstream holds gated requests.
func gatedSite(t *testing.T, newSite func(t *testing.T, options string) *site) (*site, *gates) {
	t.Helper()
	s := newSite(t, "")
	g := new(gates)
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	t.Cleanup(g.openAll)
	s.up = &upstream{srv}
	s.load()
	return s, g
}

// inFlight is a request held at the upstream.
type inFlight struct {
	name string
	g    *gates
	done chan *http.Response
	err  chan error
}

// start sends a request with the visitor's current cookie and the given
// commands, and returns once the upstream holds it: its session is loaded.
func (v *visitor) start(g *gates, name string, commands ...string) *inFlight {
	v.site.t.Helper()
	return v.startWith(g, name, nil, commands...)
}

// startWith is start with more request headers (name, value pairs).
func (v *visitor) startWith(g *gates, name string, headers []string, commands ...string) *inFlight {
	v.site.t.Helper()
	req, err := http.NewRequest(http.MethodGet, v.site.url("/slow"), nil)
	if err != nil {
		v.site.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	req.Header.Set("Test-Gate", name)
	for _, c := range commands {
		req.Header.Add("Test-Header", c)
	}
	if v.sid != "" {
		req.Header.Set("Cookie", "sid="+v.sid)
	}
	f := &inFlight{name: name, g: g, done: make(chan *http.Response, 1), err: make(chan error, 1)}
	arrived, _ := g.chans(name)
	go func() {
		res, err := v.site.tester.Client.Do(req)
		if err != nil {
			f.err <- err
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		f.done <- res
	}()
	select {
	case <-arrived:
	case err := <-f.err:
		v.site.t.Fatalf("request %s failed before reaching the upstream: %v", name, err)
	case res := <-f.done:
		// Answered without reaching the upstream: waiting on would hang.
		v.site.t.Fatalf("request %s was answered %d without reaching the upstream", name, res.StatusCode)
	}
	return f
}

// finish lets the request go and returns its response.
func (f *inFlight) finish(t *testing.T) *http.Response {
	t.Helper()
	_, release := f.g.chans(f.name)
	close(release)
	select {
	case res := <-f.done:
		assertNoNamespace(t, res.Header)
		return res
	case err := <-f.err:
		t.Fatalf("request %s: %v", f.name, err)
		return nil
	}
}

func sidCookie(res *http.Response) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == "sid" {
			return c
		}
	}
	return nil
}

func expectNoCookie(t *testing.T, res *http.Response, why string) {
	t.Helper()
	if c := sidCookie(res); c != nil {
		t.Fatalf("%s: the response set the session cookie %q (max-age %d)", why, c.Value, c.MaxAge)
	}
}

// sessionWith returns the session the upstream sees for a visitor holding
// sid, with the keys lowercased.
func sessionWith(t *testing.T, s *site, sid string) map[string]string {
	t.Helper()
	return sessionOf(t, s, "sid="+sid)
}

func TestRequestInFlightAcrossTheEndOfItsSession(t *testing.T) {
	ends := []struct {
		name string
		end  func(t *testing.T, s *site, v *visitor)
	}{
		{"logout", func(t *testing.T, s *site, v *visitor) {
			expectStatus(t, v.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
		}},
		{"logout everywhere", func(t *testing.T, s *site, v *visitor) {
			expectStatus(t, v.get("/logout", "X-Session-Destroy-All: true"), http.StatusOK)
		}},
		{"admin revoke", func(t *testing.T, s *site, v *visitor) {
			a := sessionAPI(t, http.MethodPost, "/session/revoke", `{"value":"alice"}`)
			if a.status != http.StatusOK {
				t.Fatalf("revoke: %d %s", a.status, a.body)
			}
		}},
	}
	for _, end := range ends {
		t.Run(end.name, func(t *testing.T) {
			onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
				s, g := gatedSite(t, newSite)
				v := login(t, s, "alice")
				old := v.sid
				slow := v.start(g, "slow", "X-Session-Set-User: alice", "X-Session-Set-Cart: pear")
				end.end(t, s, v)
				res := slow.finish(t)
				// Its answer is withheld: the session ended while the app
				// worked on it (README, "A response that is never flushed").
				expectStatus(t, &response{Response: res}, http.StatusForbidden)
				expectNoCookie(t, res, "a request in flight across a logout")
				if got := sessionWith(t, s, old); len(got) != 0 {
					t.Fatalf("the ended session came back: %v", got)
				}
			})
		})
	}
}

func TestLoginWinsOverARequestInFlight(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s, g := gatedSite(t, newSite)
		v := s.visitor()
		expectStatus(t, v.get("/", "X-Session-Set-Cart: apple"), http.StatusOK)
		slow := v.start(g, "wish", "X-Session-Set-Wish: lamp")
		expectStatus(t, v.get("/login", "X-Session-Set-User: alice"), http.StatusOK)
		res := slow.finish(t)
		expectNoCookie(t, res, "a pre-login request finishing after the login")
		want := map[string]string{"user": "alice", "cart": "apple"}
		if got := sessionWith(t, s, v.sid); !mapsEqual(got, want) {
			t.Fatalf("after the login the session is %v, want %v: the pre-login request wrote into it or replaced it", got, want)
		}
	})
}

func TestRequestInFlightAcrossARenewal(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s, g := gatedSite(t, newSite)
		v := login(t, s, "alice")
		old := v.sid
		slow := v.start(g, "theme", "X-Session-Set-Theme: dark")
		expectStatus(t, v.get("/", "X-Session-Renew: true"), http.StatusOK)
		if v.sid == old {
			t.Fatal("the renewal kept the ID")
		}
		res := slow.finish(t)
		expectNoCookie(t, res, "a request in flight across a renewal of its session")
		want := map[string]string{"user": "alice", "cart": "apple", "theme": "dark"}
		if got := sessionWith(t, s, v.sid); !mapsEqual(got, want) {
			t.Fatalf("the renewed session is %v, want %v: the change of the request in flight was lost", got, want)
		}
		// The old ID, presented by a new request, opens nothing and
		// starts nothing.
		stale := &visitor{site: s, sid: old}
		r := stale.get("/", "X-Session-Set-Cart: planted")
		if len(r.session()) != 0 || r.sessionCookie() != nil {
			t.Fatalf("a new request with the rotated-away ID got session %v, cookie %v", r.session(), r.sessionCookie())
		}
		if got := sessionWith(t, s, v.sid)["cart"]; got != "apple" {
			t.Fatalf("cart = %q after a request with the old ID, want apple", got)
		}
	})
}

func TestLogoutInFlightAcrossARenewalStillLogsOut(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s, g := gatedSite(t, newSite)
		v := login(t, s, "alice")
		slow := v.start(g, "logout", "X-Session-Destroy: true")
		expectStatus(t, v.get("/", "X-Session-Renew: true"), http.StatusOK)
		renewed := v.sid
		res := slow.finish(t)
		if c := sidCookie(res); c == nil || c.MaxAge >= 0 {
			t.Fatalf("the logout's response did not expire the cookie: %v", c)
		}
		if got := sessionWith(t, s, renewed); len(got) != 0 {
			t.Fatalf("the renewed session outlived a logout that raced the renewal: %v", got)
		}
	})
}

func TestDestroyAllIsAllOrNothing(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s := newSite(t, "")
		phone, laptop := login(t, s, "alice"), login(t, s, "alice")
		commands := []string{"X-Session-Destroy-All: true"}
		for i := range 70 { // over the limit of 64 keys
			commands = append(commands, fmt.Sprintf("X-Session-Set-K%d: v", i))
		}
		r := laptop.get("/", commands...)
		expectStatus(t, r, http.StatusOK)
		if c := r.sessionCookie(); c != nil {
			t.Fatalf("a refused batch changed the cookie: %v", c)
		}
		for name, v := range map[string]*visitor{"phone": phone, "laptop": laptop} {
			if got := sessionWith(t, s, v.sid)["user"]; got != "alice" {
				t.Errorf("the %s's session ended though the batch was refused", name)
			}
		}
	})
}

func TestCommandsOnAnonymousResponsesStartNothing(t *testing.T) {
	for _, command := range []string{
		"X-Session-Delete: cart",
		"X-Session-Renew: true",
		"X-Session-Destroy: true",
		"X-Session-Destroy-All: true",
	} {
		t.Run(strings.SplitN(command, ":", 2)[0], func(t *testing.T) {
			s := newSite(t, "")
			r := s.visitor().get("/", command)
			expectStatus(t, r, http.StatusOK)
			if c := r.sessionCookie(); c != nil {
				t.Fatalf("%q on an anonymous response set a cookie: %v", command, c)
			}
			if n := countSessions(t); n != 0 {
				t.Fatalf("%q on an anonymous response stored %d sessions", command, n)
			}
		})
	}
}

func TestDeletingARenewOnKeyRotatesTheID(t *testing.T) {
	s := newSite(t, "")
	v := login(t, s, "alice")
	old := v.sid
	r := v.get("/logout", "X-Session-Delete: user")
	if c := r.sessionCookie(); c == nil || c.Value == old || c.MaxAge < 0 {
		t.Fatalf("deleting user (log out, keep the cart) did not issue a new ID: %v", c)
	}
	if got := sessionWith(t, s, v.sid); !mapsEqual(got, map[string]string{"cart": "apple"}) {
		t.Fatalf("after the logout that keeps the cart the session is %v", got)
	}
	if got := sessionWith(t, s, old); len(got) != 0 {
		t.Fatalf("the ID from before the logout still opens %v", got)
	}
}

// countSessions counts the sessions of every store of the running Caddy,
// through the admin API.
func countSessions(t *testing.T) int {
	t.Helper()
	var stores []apiStore
	sessionAPI(t, http.MethodGet, "/session/stores", "").decode(t, http.StatusOK, &stores)
	n := 0
	for _, st := range stores {
		n += st.Sessions
	}
	return n
}
