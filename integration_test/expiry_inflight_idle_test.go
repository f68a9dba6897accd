package integration_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/internal/testhook"
)

// expiringStore is a store whose own removal of expired records (bolt's
// sweeper, Redis's key TTLs) a test drives: pass moves the session clock
// and the store's clock together, and lets the store remove what it
// would by then.
type expiringStore struct {
	name  string
	store string // the store line of the site; "" for bolt in the site's file
	// pass returns how many sessions (and forward records) the store
	// removed.
	pass func(t *testing.T, d time.Duration) int
}

// ageKeys runs every key's TTL down by the milliseconds in ARGV[1], as
// Redis's own clock would by moving that far, deletes those it runs out,
// as Redis expires them, and returns how many session keys it deleted.
const ageKeys = `
local d, n = tonumber(ARGV[1]), 0
for _, k in ipairs(redis.call('KEYS', '*')) do
	local ttl = redis.call('PTTL', k)
	if ttl >= 0 then
		if ttl <= d then
			redis.call('DEL', k)
			if string.find(k, 'caddy-session:{', 1, true) == 1 then
				n = n + 1
			end
		else
			redis.call('PEXPIRE', k, ttl - d)
		end
	end
end
return n`

// onEachExpiringStore runs test on bolt, whose sweeper runs every time
// the clock passes (as its ticker may, at any moment), and on a fresh
// Redis, whose keys' TTLs run down as the clock passes.
func onEachExpiringStore(t *testing.T, test func(t *testing.T, st expiringStore)) {
	t.Run("bolt", func(t *testing.T) {
		var mu sync.Mutex
		var sweeps []func() (int, error)
		hook := func(sweep func() (int, error)) {
			mu.Lock()
			defer mu.Unlock()
			sweeps = append(sweeps, sweep)
		}
		testhook.BoltOpened.Store(&hook)
		t.Cleanup(func() { testhook.BoltOpened.Store(nil) })
		test(t, expiringStore{name: "bolt", pass: func(t *testing.T, d time.Duration) int {
			t.Helper()
			clock.Advance(d)
			mu.Lock()
			defer mu.Unlock()
			if len(sweeps) == 0 {
				t.Fatal("no bolt file was opened to sweep")
			}
			removed := 0
			for _, sweep := range sweeps {
				n, err := sweep()
				if err != nil {
					t.Fatal(err)
				}
				removed += n
			}
			return removed
		}})
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		test(t, expiringStore{name: "redis", store: "store redis " + srv.URL(), pass: func(t *testing.T, d time.Duration) int {
			t.Helper()
			clock.Advance(d)
			out, err := srv.Do("EVAL", ageKeys, "0", strconv.FormatInt(d.Milliseconds(), 10))
			n, perr := strconv.Atoi(strings.TrimPrefix(out, ":"))
			if err != nil || perr != nil {
				t.Fatalf("running Redis's TTLs down by %v: %q, %v", d, out, err)
			}
			return n
		}})
	})
}

// TestRequestInFlightAcrossTheIdleDeadlineKeepsItsSession: a request
// counts as a use of its session when it began (README, "Sessions"): one
// that began before the idle deadline and answers after it keeps the
// session, its touch or its writes applied, and its answer delivered,
// whatever the store's own removal of expired records (bolt's sweeper,
// which runs every minute; Redis's TTL, set to the deadline) did while it
// was in flight. Both used to remove the session at its stored idle
// deadline, and the request's commit then found none: the user was logged
// out, their login, cart or flash value lost, and the answer withheld
// (403) as that of a session that ended while the app worked on it.
func TestRequestInFlightAcrossTheIdleDeadlineKeepsItsSession(t *testing.T) {
	const opts = `idle_timeout 30m
		absolute_timeout 12h`
	type after struct {
		user, cart string
		cookie     string // "kept" (none set), "new", "persistent" or "expired"
		flash      string // the notice the next request is handed
		status     int    // of the request in flight; 0: 200
	}
	for _, c := range []struct {
		name       string
		remembered bool // logged in with remember me: the remember timeouts
		commands   []string
		want       after
	}{
		{"a touch", false, nil, after{user: "alice", cart: "apple", cookie: "kept"}},
		{"a change", false, []string{"X-Session-Set-Cart: pear"}, after{user: "alice", cart: "pear", cookie: "kept"}},
		{"a deletion", false, []string{"X-Session-Delete: cart"}, after{user: "alice", cookie: "kept"}},
		{"a flash value", false, []string{"X-Session-Flash-Notice: Saved"}, after{user: "alice", cart: "apple", cookie: "kept", flash: "Saved"}},
		{"a renewal", false, []string{"X-Session-Renew: true"}, after{user: "alice", cart: "apple", cookie: "new"}},
		{"a login as another user", false, []string{"X-Session-Set-User: bob"}, after{user: "bob", cart: "apple", cookie: "new"}},
		{"remember me", false, []string{"X-Session-Remember: true"}, after{user: "alice", cart: "apple", cookie: "persistent"}},
		{"a logout", false, []string{"X-Session-Destroy: true"}, after{cookie: "expired"}},
		{"a logout that keeps the cart", false, []string{"X-Session-Delete: user"}, after{cart: "apple", cookie: "new"}},
		// A response that is no use of the session (README, "Polling
		// without keeping a session alive") does not hold off its idle
		// deadline: the session ended while the app ran, as it does for
		// a read that says so, and its commands are dropped, its answer
		// withheld but for a login (README, "Requests in flight").
		{"a read that is no use", false, []string{"X-Session-Touch: false"}, after{cookie: "kept", status: http.StatusForbidden}},
		{"a change that is no use", false, []string{"X-Session-Touch: false", "X-Session-Set-Cart: pear"}, after{cookie: "kept", status: http.StatusForbidden}},
		{"a flash value that is no use", false, []string{"X-Session-Touch: false", "X-Session-Flash-Notice: Saved"}, after{cookie: "kept", status: http.StatusForbidden}},
		{"a renewal that is no use", false, []string{"X-Session-Touch: false", "X-Session-Renew: true"}, after{cookie: "kept", status: http.StatusForbidden}},
		{"a login that is no use", false, []string{"X-Session-Touch: false", "X-Session-Set-User: bob"}, after{cookie: "kept"}},
		{"remember me, no use", false, []string{"X-Session-Touch: false", "X-Session-Remember: true"}, after{cookie: "kept", status: http.StatusForbidden}},
		{"remembered, a touch", true, nil, after{user: "alice", cart: "apple", cookie: "kept"}},
		{"remembered, a change", true, []string{"X-Session-Set-Cart: pear"}, after{user: "alice", cart: "pear", cookie: "kept"}},
		{"remembered, forget me, past the normal timeouts", true, []string{"X-Session-Remember: false"}, after{cookie: "expired"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			onEachExpiringStore(t, func(t *testing.T, st expiringStore) {
				s, g := gatedSite(t, func(t *testing.T, _ string) *site {
					return newSiteWith(t, st.store, "", opts+"\n\t\tremember {\n\t\t\tidle_timeout 14d\n\t\t\tabsolute_timeout 30d\n\t\t}")
				})
				v := s.visitor()
				idle := 30 * time.Minute
				if c.remembered {
					idle = 14 * 24 * time.Hour
					expectStatus(t, v.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Cart: apple", "X-Session-Remember: true"), http.StatusOK)
				} else {
					expectStatus(t, v.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Cart: apple"), http.StatusOK)
				}
				if v.sid == "" {
					t.Fatal("the login issued no session")
				}
				st.pass(t, idle-30*time.Second) // 30s before the idle deadline
				slow := v.start(g, "slow", c.commands...)
				st.pass(t, time.Minute) // the idle deadline passes while the app runs
				res := slow.finish(t)
				status := c.want.status
				if status == 0 {
					status = http.StatusOK
				}
				expectStatus(t, &response{Response: res}, status)
				old := v.sid
				cookie := sidCookie(res)
				switch {
				case c.want.cookie == "kept" && cookie != nil:
					t.Fatalf("the response set the session cookie %q (max-age %d), want none", cookie.Value, cookie.MaxAge)
				case c.want.cookie == "kept":
				case cookie == nil:
					t.Fatalf("the response set no session cookie, want a %s one", c.want.cookie)
				case c.want.cookie == "expired" && cookie.MaxAge >= 0:
					t.Fatalf("the response set the session cookie %q (max-age %d), want it expired", cookie.Value, cookie.MaxAge)
				case c.want.cookie == "expired":
					v.sid = ""
				case cookie.Value == old || cookie.MaxAge < 0:
					t.Fatalf("the response set the session cookie %q (max-age %d), want a new ID", cookie.Value, cookie.MaxAge)
				case (c.want.cookie == "persistent") != (cookie.MaxAge > 0):
					t.Fatalf("the response set the session cookie max-age %d, want a %s one", cookie.MaxAge, c.want.cookie)
				default:
					v.sid = cookie.Value
				}
				if v.sid != old && old != "" {
					if got := sessionWith(t, s, old); len(got) != 0 {
						t.Errorf("the ID from before the request still opens %v", got)
					}
				}
				r := v.navigate(http.MethodGet, "/after")
				expectStatus(t, r, http.StatusOK)
				got := r.session()
				if got["X-Session-User"] != c.want.user || got["X-Session-Cart"] != c.want.cart {
					t.Fatalf("after the request the upstream saw %v, want user %q and cart %q", got, c.want.user, c.want.cart)
				}
				if got["X-Session-Flash-Notice"] != c.want.flash {
					t.Fatalf("after the request the upstream was handed %v, want the notice %q", got, c.want.flash)
				}
			})
		})
	}
}

// TestExpiredSessionIsRemovedAfterTheGrace: a session past its idle
// deadline is invisible at once, and the store, which keeps it
// store.ExpiryGrace (two minutes) for the requests in flight across the
// deadline, removes it then by itself: bolt's sweeper, Redis's TTL.
func TestExpiredSessionIsRemovedAfterTheGrace(t *testing.T) {
	onEachExpiringStore(t, func(t *testing.T, st expiringStore) {
		s := newSiteWith(t, st.store, "", "idle_timeout 30m")
		v := login(t, s, "alice")
		if n := st.pass(t, 30*time.Minute+30*time.Second); n != 0 {
			t.Fatalf("%d sessions removed 30s after the idle deadline, want none before the grace", n)
		}
		sid := v.sid
		expectUser(t, v, "")
		if n := countSessions(t); n != 0 {
			t.Fatalf("%d live sessions 30s after the idle deadline, want none", n)
		}
		if n := st.pass(t, 2*time.Minute); n != 1 {
			t.Fatalf("%d sessions removed 2m30s after the idle deadline, want the expired one", n)
		}
		if got := sessionWith(t, s, sid); len(got) != 0 {
			t.Fatalf("the expired ID opens %v", got)
		}
	})
}

// TestRequestInFlightPastTheGrace: the grace bounds how late a request in
// flight across the idle deadline may answer and keep its session: one
// that answers later finds it ended, as after a logout (README, "Requests
// in flight"): its commands are dropped, its answer withheld, and no
// cookie set; its keys start no new session.
func TestRequestInFlightPastTheGrace(t *testing.T) {
	onEachExpiringStore(t, func(t *testing.T, st expiringStore) {
		s, g := gatedSite(t, func(t *testing.T, _ string) *site {
			return newSiteWith(t, st.store, "", "idle_timeout 30m")
		})
		v := login(t, s, "alice")
		st.pass(t, 29*time.Minute+30*time.Second)
		slow := v.start(g, "slow", "X-Session-Set-Cart: pear")
		if n := st.pass(t, 3*time.Minute); n != 1 {
			t.Fatalf("%d sessions removed 2m30s after the idle deadline, want the expired one", n)
		}
		res := slow.finish(t)
		expectStatus(t, &response{Response: res}, http.StatusForbidden)
		expectNoCookie(t, res, "a request in flight across the idle deadline that answers after the grace")
		expectUser(t, v, "")
		if n := countSessions(t); n != 0 {
			t.Fatalf("%d sessions stored, want none", n)
		}
	})
}

// TestRequestInFlightAcrossAReloadThatShortensIdle: a reload shortens
// idle_timeout while a request is in flight, and the new idle deadline
// passes before it answers. The request began before it, under either
// config's timeouts, and keeps the session, as a use then; a session that
// no request used meanwhile has ended at once by the new timeout
// (README, "Sessions": shortening a timeout takes effect at once), and
// the kept one ends idle_timeout, the new one, after the request began.
func TestRequestInFlightAcrossAReloadThatShortensIdle(t *testing.T) {
	onEachExpiringStore(t, func(t *testing.T, st expiringStore) {
		s, g := gatedSite(t, func(t *testing.T, _ string) *site {
			return newSiteWith(t, st.store, "", "idle_timeout 30m")
		})
		v := login(t, s, "alice")
		idle := login(t, s, "alice") // a device not used again
		st.pass(t, 9*time.Minute+30*time.Second)
		slow := v.start(g, "slow", "X-Session-Set-Cart: pear")
		s.options = "idle_timeout 10m"
		s.load()
		st.pass(t, time.Minute) // past the new idle deadline, before the old one
		res := slow.finish(t)
		expectStatus(t, &response{Response: res}, http.StatusOK)
		expectNoCookie(t, res, "a change in flight across a reload")
		expectUser(t, idle, "")
		r := v.get("/after")
		if got := r.session(); got["X-Session-User"] != "alice" || got["X-Session-Cart"] != "pear" {
			t.Fatalf("after the request the upstream saw %v, want alice's session with the cart changed", got)
		}
		st.pass(t, 10*time.Minute) // the new idle_timeout after that use
		expectUser(t, v, "")
	})
}

// TestLogoutEverywhereEndsASessionInItsGrace: a session past its idle
// deadline, which the store keeps store.ExpiryGrace longer for a request
// of it in flight, is still the user's: a logout everywhere ends it, and
// the request in flight across the deadline, which would have kept it,
// finds it ended (its answer withheld, no cookie) and brings nothing back.
func TestLogoutEverywhereEndsASessionInItsGrace(t *testing.T) {
	for _, end := range []struct {
		name string
		end  func(t *testing.T, s *site, phone, laptop *visitor)
	}{
		{"a logout everywhere", func(t *testing.T, _ *site, phone, _ *visitor) {
			expectStatus(t, phone.get("/logout", "X-Session-Destroy-All: true"), http.StatusOK)
		}},
		{"an admin revocation of the user", func(t *testing.T, _ *site, _, _ *visitor) {
			var revoked struct{ Revoked int }
			sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "alice"}`).decode(t, http.StatusOK, &revoked)
		}},
	} {
		t.Run(end.name, func(t *testing.T) {
			onEachExpiringStore(t, func(t *testing.T, st expiringStore) {
				s, g := gatedSite(t, func(t *testing.T, _ string) *site {
					return newSiteWith(t, st.store, "", "idle_timeout 30m")
				})
				laptop := login(t, s, "alice")
				st.pass(t, 29*time.Minute+30*time.Second)
				slow := laptop.start(g, "slow", "X-Session-Set-Cart: pear")
				st.pass(t, time.Minute) // the laptop's idle deadline passes
				phone := login(t, s, "alice")
				end.end(t, s, phone, laptop)
				res := slow.finish(t)
				expectStatus(t, &response{Response: res}, http.StatusForbidden)
				expectNoCookie(t, res, "a request in flight across the idle deadline of a session ended meanwhile")
				expectUser(t, laptop, "")
				expectUser(t, phone, "")
				if n := countSessions(t); n != 0 {
					t.Fatalf("%d sessions stored, want none", n)
				}
			})
		})
	}
}

// TestSweepKeepsASessionWithATouchPending: bolt defers a touch far from
// the idle deadline (store/bolt/touch.go) and writes it with the next
// commit, the sweeper's included. A sweep that comes after the deadline
// the file holds, before the one the touch set, writes the touch first
// and keeps the session in use, as Redis, which writes every touch at
// once, does.
func TestSweepKeepsASessionWithATouchPending(t *testing.T) {
	onEachExpiringStore(t, func(t *testing.T, st expiringStore) {
		s := newSiteWith(t, st.store, "", "idle_timeout 30m")
		v := login(t, s, "alice")
		st.pass(t, 10*time.Minute)
		expectUser(t, v, "alice") // a touch, 20m from the deadline: deferred on bolt
		// Past the deadline the file held, and its grace, before the one
		// the touch set.
		if n := st.pass(t, 25*time.Minute); n != 0 {
			t.Fatalf("%d sessions removed, want none: the session was used 25m ago", n)
		}
		expectUser(t, v, "alice")
	})
}
