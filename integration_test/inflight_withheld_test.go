package integration_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/internal/testhook"
	"github.com/caddy-session/caddy-session/session"
)

// withheld fails unless the response is the plugin's refusal, with none
// of the app's answer: not its status, headers or body, no cookie.
func withheld(t *testing.T, res *http.Response, body string) {
	t.Helper()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("the answer of a request whose session ended while the app worked on it is %d, want 403", res.StatusCode)
	}
	if strings.Contains(body, "alice") || strings.Contains(body, `"uri"`) {
		t.Fatalf("the app's answer reached a client whose session ended while the app worked on it: %q", body)
	}
	if res.Header.Get("Content-Type") == "application/json" {
		t.Fatal("the app's headers reached a client whose session ended while the app worked on it")
	}
	expectNoCookie(t, res, "a withheld answer")
}

// delivered fails unless the response is the app's answer to alice.
func delivered(t *testing.T, res *http.Response, body string) {
	t.Helper()
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"X-Session-User":["alice"]`) {
		t.Fatalf("got %d %q, want the app's answer to alice delivered", res.StatusCode, body)
	}
}

// holdBody is hold, through a client that keeps the body.
func holdBody(t *testing.T, v *visitor, g *gates, name string, commands ...string) func() (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, v.site.url("/poll"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Test-Gate", name)
	for _, c := range commands {
		req.Header.Add("Test-Header", c)
	}
	req.Header.Set("Cookie", "sid="+v.sid)
	arrived, release := g.chans(name)
	done := sendAside(t, req, &http.Transport{})
	select {
	case <-arrived:
	case r := <-done:
		t.Fatalf("request %s was answered without reaching the upstream: %+v", name, r)
	}
	return func() (*http.Response, string) {
		t.Helper()
		close(release)
		var r sentAnswer
		within(t, "the held request got no answer", func() { r = <-done })
		if r.err != nil {
			t.Fatalf("request %s: %v", name, r.err)
		}
		assertNoNamespace(t, r.res.Header)
		return r.res, r.body
	}
}

// sentAnswer is a response read to its end, or the error that stopped it.
type sentAnswer struct {
	res  *http.Response
	body string
	err  error
}

// sendAside sends req in a goroutine, on a client of its own over
// transport (closed with the test), and delivers its answer once read to
// its end: a request that the test holds at the app while it does more.
func sendAside(t *testing.T, req *http.Request, transport *http.Transport) <-chan sentAnswer {
	client := &http.Client{Transport: transport}
	t.Cleanup(client.CloseIdleConnections)
	done := make(chan sentAnswer, 1)
	go func() {
		res, err := client.Do(req)
		if err != nil {
			done <- sentAnswer{err: err}
			return
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		done <- sentAnswer{res: res, body: string(b), err: err}
	}()
	return done
}

// TestAnswerWithheldWhenItsSessionEnds: a response written once, at the
// end (a long poll, a slow report), of a request that carried a live
// session, is the user's data as much as a stream is. When the session
// ends while the app works on it, by any of the ends this Caddy commits,
// the client gets a 403 and none of the app's answer; a renewal of the
// same user delivers it, and `tunnels keep` keeps the old behaviour. The
// tunnels interval is an hour: only the end this process counted can
// withhold these.
func TestAnswerWithheldWhenItsSessionEnds(t *testing.T) {
	eachSessionEnd(t, func(t *testing.T, store, options string, tt sessionEnd) {
		s, g := gatedSite(t, func(t *testing.T, _ string) *site {
			return newSiteOn(t, store, options)
		})
		alice := login(t, s, "alice")
		answer := holdBody(t, alice, g, "poll")
		tt.end(t, s, alice)
		res, body := answer()
		if tt.keeps {
			delivered(t, res, body)
			return
		}
		withheld(t, res, body)
	})
}

// TestAnswerOfItsOwnEndIsDelivered: a response whose own commands end its
// session or make it another user's (a logout page, a login) is the app's
// answer knowing that, and is delivered, also when the session ended
// elsewhere while the app worked on it (its commands are then dropped, as
// those of any ended session are).
func TestAnswerOfItsOwnEndIsDelivered(t *testing.T) {
	rows := []struct {
		name     string
		commands []string
		revoked  bool // an admin revokes alice while the app works on it
	}{
		{"logout", []string{"X-Session-Destroy: true"}, false},
		{"logout everywhere", []string{"X-Session-Destroy-All: true"}, false},
		{"logout with a flash", []string{"X-Session-Destroy: true", "X-Session-Flash-Notice: bye"}, false},
		{"login as another user", []string{"X-Session-Set-User: bob"}, false},
		{"logout of a session revoked meanwhile", []string{"X-Session-Destroy: true"}, true},
		{"logout everywhere of a session revoked meanwhile", []string{"X-Session-Destroy-All: true"}, true},
		{"login as another user on a session revoked meanwhile", []string{"X-Session-Set-User: bob"}, true},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
				s, g := gatedSite(t, func(t *testing.T, _ string) *site { return newSite(t, "idle_timeout 2h\n\t\ttunnels 1h") })
				alice := login(t, s, "alice")
				other := login(t, s, "carol")
				answer := holdBody(t, alice, g, "poll", row.commands...)
				if row.revoked {
					sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "alice"}`).decode(t, http.StatusOK, &struct{ Revoked int }{})
				} else {
					// An end of another user's session in this process:
					// the answer reads its own session again.
					expectStatus(t, other.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
				}
				res, body := answer()
				delivered(t, res, body)
			})
		})
	}
}

// TestSlowAnswerWhoseSessionStandsIsDelivered: an answer that may have
// lost its session (it took long, or this process ended another session
// meanwhile) but whose session stands is delivered, commands applied.
func TestSlowAnswerWhoseSessionStandsIsDelivered(t *testing.T) {
	tookAnHour := func(t *testing.T, s *site) { clock.Advance(time.Hour) }
	anotherLoggedOut := func(t *testing.T, s *site) {
		expectStatus(t, login(t, s, "carol").get("/logout", "X-Session-Destroy: true"), http.StatusOK)
	}
	anotherRevoked := func(t *testing.T, s *site) {
		login(t, s, "carol")
		sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "carol"}`).decode(t, http.StatusOK, &struct{ Revoked int }{})
	}
	rows := []struct {
		name      string
		meanwhile func(t *testing.T, s *site)
		commands  []string // none: the answer reads its session again; some: their write finds it
		cart      string   // what the session holds after
	}{
		{"took an hour", tookAnHour, nil, "apple"},
		{"took an hour, with a change", tookAnHour, []string{"X-Session-Set-Cart: pear"}, "pear"},
		{"took an hour, with a renewal", tookAnHour, []string{"X-Session-Renew: true"}, "apple"},
		{"another user logged out", anotherLoggedOut, nil, "apple"},
		{"another user logged out, with a change", anotherLoggedOut, []string{"X-Session-Set-Cart: pear"}, "pear"},
		{"another user revoked", anotherRevoked, nil, "apple"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
				s, g := gatedSite(t, func(t *testing.T, _ string) *site { return newSite(t, "idle_timeout 2h\n\t\tabsolute_timeout 3h") })
				alice := login(t, s, "alice")
				answer := holdBody(t, alice, g, "poll", row.commands...)
				row.meanwhile(t, s)
				res, body := answer()
				delivered(t, res, body)
				if c := sidCookie(res); c != nil {
					alice.sid = c.Value
				}
				if got := sessionWith(t, s, alice.sid); got["user"] != "alice" || got["cart"] != row.cart {
					t.Fatalf("the session after a delivered slow answer is %v, want alice's with the cart %q", got, row.cart)
				}
			})
		})
	}
}

// TestAnswerWithheldWhenItsSessionEndsUnseen: ends this process is not
// told of, the session's expiry or an end on another instance sharing the
// store, are found by an answer that took longer than a second.
func TestAnswerWithheldWhenItsSessionEndsUnseen(t *testing.T) {
	t.Run("absolute deadline", func(t *testing.T) {
		onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
			s, g := gatedSite(t, func(t *testing.T, _ string) *site { return newSite(t, "idle_timeout 1h\n\t\tabsolute_timeout 1h") })
			alice := login(t, s, "alice")
			clock.Advance(59 * time.Minute)
			answer := holdBody(t, alice, g, "poll")
			clock.Advance(2 * time.Minute)
			res, body := answer()
			withheld(t, res, body)
		})
	})
	t.Run("deleted in redis behind caddy's back", func(t *testing.T) {
		srv := redistest.Start(t)
		s, g := gatedSite(t, func(t *testing.T, _ string) *site { return newSiteOn(t, "store redis "+srv.URL(), "") })
		alice := login(t, s, "alice")
		answer := holdBody(t, alice, g, "poll")
		if _, err := srv.Do("FLUSHALL"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Second)
		res, body := answer()
		withheld(t, res, body)
	})
}

// TestAnswerWithheldWhenAnotherInstanceEndsItsSession runs this Caddy and
// a second Caddy process on one Redis, as behind a load balancer: a long
// poll held on this one, whose session the user logs out of, or an admin
// revokes, through the other, is withheld. An answer that took over a
// second reads its session past the cache whatever this instance was
// told; a faster one, once Redis told this instance that its session's
// key changed (client tracking), the clock stepped back so that it is
// judged on that news alone. A change told of that ends nothing (a write
// of another key, on another tab: the instances' clocks differ in this
// test, so the other instance's write is not the control) delivers the
// fast answer.
func TestAnswerWithheldWhenAnotherInstanceEndsItsSession(t *testing.T) {
	slow(t, "a Caddy binary beside the one in this process")
	srv := redistest.Start(t)
	a, g := gatedSite(t, func(t *testing.T, _ string) *site {
		return newSiteOn(t, "store redis "+srv.URL(), "realm shop")
	})
	b, pb := startRedisCaddy(t, srv.URL(), "", startUpstream(t))
	rows := []struct {
		name      string
		meanwhile func(t *testing.T, alice *visitor)
		withheld  bool
	}{
		{"logout", func(t *testing.T, alice *visitor) {
			expectStatus(t, (&visitor{site: b, sid: alice.sid}).get("/logout", "X-Session-Destroy: true"), http.StatusOK)
		}, true},
		{"admin revocation", func(t *testing.T, alice *visitor) {
			res, err := http.Post(fmt.Sprintf("http://localhost:%d/session/revoke", pb.admin), "application/json", strings.NewReader(`{"value": "alice"}`))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("revoke on the other instance: %s", res.Status)
			}
		}, true},
		{"a write of another key", func(t *testing.T, alice *visitor) {
			expectStatus(t, alice.clone().get("/cart", "X-Session-Set-Cart: pear"), http.StatusOK)
		}, false},
	}
	for _, row := range rows {
		speeds := []bool{false, true}
		if !row.withheld {
			speeds = speeds[1:] // the control of the fast answers
		}
		for _, fast := range speeds {
			name := row.name + "/after a second"
			if fast {
				name = row.name + "/told by Redis"
			}
			t.Run(name, func(t *testing.T) {
				alice := login(t, a, "alice")
				told := redisToldOf(t, session.HashID(alice.sid).String())
				answer := holdBody(t, alice, g, "poll-"+strings.NewReplacer(" ", "-", "/", "-").Replace(name))
				row.meanwhile(t, alice)
				if fast {
					select {
					case <-told:
					case <-time.After(10 * time.Second):
						t.Fatal("redis never told this instance that the session's key changed")
					}
					clock.Advance(-time.Minute)
					t.Cleanup(func() { clock.Advance(time.Minute) })
				} else {
					clock.Advance(2 * time.Second)
				}
				res, body := answer()
				if row.withheld {
					withheld(t, res, body)
					return
				}
				if res.StatusCode != http.StatusOK || !strings.Contains(body, `"X-Session-User":["alice"]`) {
					t.Fatalf("got %d %q, want the app's answer to alice delivered: her session stands", res.StatusCode, body)
				}
			})
		}
	}
}

// redisToldOf returns a channel closed once Redis has told this process
// (testhook.StoreChanged) that a key holding hash changed, or that any
// key may have; for hash "", only the latter (a FLUSHALL's news): news of
// some key, still on its way from a write before the test's, is not it.
func redisToldOf(t *testing.T, hash string) <-chan struct{} {
	t.Helper()
	told := make(chan struct{})
	var once sync.Once
	f := func(keys []string) {
		if keys == nil || hash != "" && slices.ContainsFunc(keys, func(k string) bool { return strings.Contains(k, hash) }) {
			once.Do(func() { close(told) })
		}
	}
	testhook.StoreChanged.Store(&f)
	t.Cleanup(func() { testhook.StoreChanged.Store(nil) })
	return told
}

// TestAnswerOfASessionWithNoUser: an answer the app computed for a
// session that carried no user (a visitor's cart, before a login) holds
// none of a user's data: a login on that session meanwhile (another tab)
// delivers it, as it did the requests that a page sent beside its login.
// An end of that session withholds it, as any end does.
func TestAnswerOfASessionWithNoUser(t *testing.T) {
	rows := []struct {
		name      string
		meanwhile func(t *testing.T, v *visitor)
		withheld  bool
	}{
		{"login on another tab", func(t *testing.T, v *visitor) {
			expectStatus(t, v.clone().get("/login", "X-Session-Set-User: alice"), http.StatusOK)
		}, false},
		{"logout on another tab", func(t *testing.T, v *visitor) {
			expectStatus(t, v.clone().get("/logout", "X-Session-Destroy: true"), http.StatusOK)
		}, true},
		{"admin revocation of the session", func(t *testing.T, v *visitor) {
			sessionAPI(t, http.MethodDelete, "/session/sessions/"+session.HashID(v.sid).String(), "").decode(t, http.StatusOK, &struct{ Revoked int }{})
		}, true},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
				s, g := gatedSite(t, func(t *testing.T, _ string) *site { return newSite(t, "idle_timeout 2h\n\t\ttunnels 1h") })
				v := s.visitor()
				expectStatus(t, v.get("/cart", "X-Session-Set-Cart: pear"), http.StatusOK)
				answer := holdBody(t, v, g, "poll")
				row.meanwhile(t, v)
				res, body := answer()
				if row.withheld {
					withheld(t, res, body)
					return
				}
				if res.StatusCode != http.StatusOK || !strings.Contains(body, `"X-Session-Cart":["pear"]`) {
					t.Fatalf("got %d %q, want the app's answer to the visitor delivered", res.StatusCode, body)
				}
			})
		})
	}
}
