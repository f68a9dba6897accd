package integration_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// holdLate is what the held request's app answers with: its commands, and
// whether they move the session to a new ID when they apply.
type holdLate struct {
	name     string
	commands func(value string) []string
	rotates  bool
}

// holdLates are the answers of the held request: each carries a value of
// its own (value) that, once the session it was meant for has ended, no
// live session may hold.
var holdLates = []holdLate{
	{"nothing", func(string) []string { return nil }, false},
	{"sets a key", func(v string) []string { return []string{"X-Session-Set-Cart:" + v} }, false},
	{"renews and sets", func(v string) []string { return []string{"X-Session-Renew:true", "X-Session-Set-Cart:" + v} }, true},
	{"remembers and sets", func(v string) []string { return []string{"X-Session-Remember:true", "X-Session-Set-Cart:" + v} }, true},
	{"sets a flash value", func(v string) []string { return []string{"X-Session-Flash-Notice:" + v} }, false},
	{"deletes the user and sets", func(v string) []string { return []string{"X-Session-Delete:user", "X-Session-Set-Cart:" + v} }, true},
}

// holdEnd is what happens to alice's session while her request is held in
// the app; keeps: it goes on, under the same user, in the session that
// successor names (v's own ID if it returns "").
type holdEnd struct {
	name      string
	end       func(t *testing.T, s *site, command string, v *visitor) (successor string)
	keeps     bool
	rotatesTo bool // keeps, under a new ID the held request's cookie must not need
	clock     bool // moves the clock: every other session ages with alice's
	// options are more options of the site's session handler.
	options string
	// before runs before the request is sent, if set.
	before func()
	// outlasts: the request outlasts the idle timeout, which its use
	// when it began cannot carry the session across, but for an answer
	// that remembers it (the remember timeouts then apply).
	outlasts bool
}

// holdEnds are apps2Ends (committed by this Caddy while the request is
// held) and the session's deadlines passing while it is.
func holdEnds() []holdEnd {
	var out []holdEnd
	for _, e := range apps2Ends {
		out = append(out, holdEnd{name: e.name, keeps: e.keeps, rotatesTo: e.keeps,
			end: func(t *testing.T, s *site, command string, v *visitor) string {
				if !e.keeps {
					e.end(t, s, command, v)
					return ""
				}
				// The renewal row: its new ID is the other tab's.
				tab := &visitor{site: s, sid: v.sid}
				expectStatus(t, tab.get(appPath(command, "h", "X-Session-Renew:true")), http.StatusOK)
				if tab.sid == v.sid || tab.sid == "" {
					t.Fatal("the renewal gave no new ID")
				}
				return tab.sid
			}})
	}
	return append(out,
		holdEnd{name: "admin revocation of the session by its hash", end: func(t *testing.T, s *site, _ string, v *visitor) string {
			var revoked struct{ Revoked int }
			sessionAPI(t, http.MethodDelete, "/session/sessions/"+hashOf("sid="+v.sid), "").decode(t, http.StatusOK, &revoked)
			if revoked.Revoked != 1 {
				t.Fatalf("the admin API revoked %d sessions, want alice's", revoked.Revoked)
			}
			return ""
		}},
		holdEnd{name: "eviction by a login beyond max_sessions_per_identity", options: "max_sessions_per_identity 1",
			end: func(t *testing.T, s *site, command string, v *visitor) string {
				apps2Login(t, s, command, "alice")
				return ""
			}},
		// The forward record a renewal leaves under the old ID lasts two
		// minutes: an answer after them finds the session it loaded
		// ended, and reaches none of the successor.
		holdEnd{name: "renewal in another tab, the answer after the forward record's end", clock: true,
			before: func() { clock.Advance(10 * time.Minute) }, // a touch is due: the request's use carries the session
			end: func(t *testing.T, s *site, command string, v *visitor) string {
				tab := &visitor{site: s, sid: v.sid}
				expectStatus(t, tab.get(appPath(command, "h", "X-Session-Renew:true")), http.StatusOK)
				if tab.sid == v.sid || tab.sid == "" {
					t.Fatal("the renewal gave no new ID")
				}
				clock.Advance(3 * time.Minute)
				return ""
			}},
		holdEnd{name: "absolute deadline passes", clock: true, end: func(*testing.T, *site, string, *visitor) string {
			clock.Advance(3*time.Hour + 5*time.Minute)
			return ""
		}},
		// A touch is due when the request begins: its use carries the
		// session past the idle deadline that passes while it is held.
		holdEnd{name: "idle deadline passes, the answer within the grace", keeps: true, clock: true,
			before: func() { clock.Advance(60 * time.Minute) },
			end: func(*testing.T, *site, string, *visitor) string {
				clock.Advance(31 * time.Minute)
				return ""
			}},
		// The request began when the session was last used and takes
		// longer than idle_timeout (a slow upload): answered within the
		// grace of the idle deadline, its use when it began does not
		// carry the session to its answer.
		holdEnd{name: "the request outlasts idle_timeout", clock: true, outlasts: true,
			end: func(*testing.T, *site, string, *visitor) string {
				clock.Advance(90*time.Minute + time.Minute)
				return ""
			}},
	)
}

// TestAppServersHeldAnswerAcrossItsSessionEnd: alice's request is inside a
// real app server, its header not yet written, when her session ends (a
// logout in another tab, a logout everywhere, an admin revocation,
// another user's login on it, its absolute deadline) or goes on (a
// renewal in another tab, its idle deadline passing within the grace);
// then the app answers with commands of every kind. After an end, the
// answer is withheld (a 403 with nothing of the app's, no cookie), and
// its commands resurrect nothing: no live session holds what they set,
// the ended ID opens nothing, and the number of live sessions is what the
// end left. When the session goes on, the answer is delivered and its
// commands apply to the session alice holds now, and a cookie it sets
// names a live session of alice's.
func TestAppServersHeldAnswerAcrossItsSessionEnd(t *testing.T) {
	for _, srv := range holdServers(t) {
		t.Run(srv.name, func(t *testing.T) {
			for _, end := range holdEnds() {
				t.Run(end.name, func(t *testing.T) {
					// One site for the row: each config keeps its own
					// idle connections to the app open after the next
					// replaces it, and waitress stops accepting at 100.
					s := newApps2Site(t, srv.apps2Server, "", "idle_timeout 90m\n\t\tabsolute_timeout 3h\n\t\ttunnels 1h\n\t\t"+end.options)
					for _, late := range holdLates {
						t.Run(late.name, func(t *testing.T) {
							in := *s
							in.t = t
							holdHeldAcross(t, &in, srv, end, late)
						})
					}
				})
			}
		})
	}
}

func holdHeldAcross(t *testing.T, s *site, srv holdServer, end holdEnd, late holdLate) {
	t.Helper()
	value := "late-" + strings.ReplaceAll(late.name, " ", "-")
	alice := apps2Login(t, s, srv.command, "alice")
	bystander := apps2Login(t, s, srv.command, "carol")
	if end.before != nil {
		end.before()
	}
	answer := srv.holdIn(t, s, alice, late.commands(value)...)
	successor := end.end(t, s, srv.command, alice)
	before := holdSessions(t)
	r := answer()

	after := holdSessions(t)
	if _, ok := after[hashOf("sid="+bystander.sid)]; !ok && !end.clock {
		t.Fatal("another user's session ended with alice's")
	}
	keeps := end.keeps || end.outlasts && strings.HasPrefix(late.name, "remembers")
	if !keeps {
		// A delete of the user is an answer that changes its session's
		// user, which the README delivers; every other is withheld.
		if late.name != "deletes the user and sets" || r.res.StatusCode != http.StatusOK {
			withheld(t, r.res, r.body)
		}
		expectNoCookie(t, r.res, "an answer whose session had ended")
		if got := holding(after, value); len(got) > 0 {
			t.Fatalf("the commands of an answer whose session had ended live on in %+v", got)
		}
		if _, ok := after[hashOf("sid="+alice.sid)]; ok {
			t.Fatal("the ended ID opens a session again")
		}
		if len(after) != len(before) {
			t.Fatalf("the withheld answer changed the number of live sessions from %d to %d", len(before), len(after))
		}
		return
	}

	if r.res.StatusCode != http.StatusOK || !strings.Contains(r.body, "alice") {
		t.Fatalf("the answer of a session that went on is %d %q, want the app's answer to alice", r.res.StatusCode, r.body)
	}
	if successor == "" {
		successor = alice.sid
	}
	cookie := sidCookie(r.res)
	if late.rotates && !end.rotatesTo && cookie == nil {
		t.Fatal("an answer that rotates its live session set no cookie")
	}
	if !late.rotates && cookie != nil {
		t.Fatalf("an answer that changes no ID set the cookie %q", cookie.Value)
	}
	now := successor
	if cookie != nil {
		if cookie.MaxAge < 0 {
			t.Fatal("an answer of a live session expired its cookie")
		}
		now = cookie.Value
		if _, ok := after[hashOf("sid="+successor)]; ok && now != successor {
			t.Fatal("the answer moved the session to a new ID and the previous one still opens it")
		}
	}
	l, ok := after[hashOf("sid="+now)]
	if !ok {
		t.Fatalf("the ID alice holds after the answer opens nothing (cookie set: %v)", cookie != nil)
	}
	if late.name == "deletes the user and sets" {
		if _, ok := l.Values["user"]; ok {
			t.Fatalf("the answer's delete of the user did not apply: %v", l.Values)
		}
	} else if l.Values["user"] != "alice" {
		t.Fatalf("alice's session holds %v after the answer", l.Values)
	}
	if late.name != "nothing" {
		if got := holding(after, value); len(got) != 1 || got[0].Hash != l.Hash {
			t.Fatalf("the answer's %q is in %+v, want it in alice's session %s only", value, got, l.Hash)
		}
	}
	if strings.HasPrefix(late.name, "remembers") && !l.Remembered {
		t.Fatal("the answer's remember did not apply")
	}
}

// TestAppServersSlowLoginStartsALiveSession: a request that takes longer
// than idle_timeout inside the app (a login beside a slow upload) and
// starts a session (a login of an anonymous visitor; keys set beside a
// logout) hands out a cookie of a session that is live when it answers:
// started when the request began, the session was over at once, and the
// cookie named a session that nothing opens.
func TestAppServersSlowLoginStartsALiveSession(t *testing.T) {
	rows := []struct {
		name     string
		alice    bool // the request is alice's, not an anonymous visitor's
		commands []string
		want     map[string]string
	}{
		{"login of an anonymous visitor", false, []string{"X-Session-Set-User:bob"}, map[string]string{"user": "bob"}},
		{"remembered login of an anonymous visitor", false, []string{"X-Session-Set-User:bob", "X-Session-Remember:true"}, map[string]string{"user": "bob"}},
		{"logout with keys set beside it", true, []string{"X-Session-Destroy:true", "X-Session-Set-Notice:bye"}, map[string]string{"notice": "bye"}},
	}
	for _, srv := range holdServers(t) {
		t.Run(srv.name, func(t *testing.T) {
			for _, row := range rows {
				t.Run(row.name, func(t *testing.T) {
					s := newApps2Site(t, srv.apps2Server, "", "idle_timeout 90m\n\t\tabsolute_timeout 3h\n\t\ttunnels 1h")
					v := s.visitor()
					if row.alice {
						v = apps2Login(t, s, srv.command, "alice")
					}
					answer := srv.holdIn(t, s, v, row.commands...)
					clock.Advance(90*time.Minute + time.Minute)
					r := answer()
					if r.res.StatusCode != http.StatusOK {
						t.Fatalf("the slow login's answer is %d %q, want the app's", r.res.StatusCode, r.body)
					}
					c := sidCookie(r.res)
					if c == nil || c.MaxAge < 0 {
						t.Fatalf("the slow login set no session cookie: %v", r.res.Header["Set-Cookie"])
					}
					got, ok := holdSessions(t)[hashOf("sid="+c.Value)]
					if !ok {
						t.Fatal("the cookie of the slow login names a session that is over")
					}
					for k, want := range row.want {
						if got.Values[k] != want {
							t.Fatalf("the slow login's session holds %v, want %v", got.Values, row.want)
						}
					}
					if row.alice {
						if _, ok := holdSessions(t)[hashOf("sid="+v.sid)]; ok {
							t.Fatal("the logout left the old session live")
						}
					}
				})
			}
		})
	}
}

// TestAppServersVisitorPageBesideItsLogin: a visitor's session holds a cart
// and no user; a request of it is inside the app when another tab logs
// the visitor in as alice, which moves the session to a new ID. The held
// answer was computed for no one and is delivered (README, "A response
// that is never flushed"), but its commands are dropped, as those of any
// request across a login are ("Requests in flight"): alice's session
// gets none of them, it sets no cookie, and the visitor's old ID opens
// nothing.
func TestAppServersVisitorPageBesideItsLogin(t *testing.T) {
	for _, srv := range holdServers(t) {
		t.Run(srv.name, func(t *testing.T) {
			for _, late := range holdLates {
				t.Run(late.name, func(t *testing.T) {
					s := newApps2Site(t, srv.apps2Server, "", "idle_timeout 2h\n\t\ttunnels 1h")
					v := s.visitor()
					expectStatus(t, v.get(appPath(srv.command, "h", "X-Session-Set-Cart:apple")), http.StatusOK)
					if v.sid == "" {
						t.Fatal("the visitor's cart started no session")
					}
					value := "late-" + strings.ReplaceAll(late.name, " ", "-")
					answer := srv.holdWith(t, s, v, nil, late.commands(value)...)
					tab := &visitor{site: s, sid: v.sid}
					expectStatus(t, tab.get(appPath(srv.command, "h", "X-Session-Set-User:alice")), http.StatusOK)
					if tab.sid == v.sid || tab.sid == "" {
						t.Fatal("the login gave no new ID")
					}
					r := answer()
					if r.res == nil {
						t.Fatalf("the visitor's page beside its login got no response: %v", r.err)
					}
					assertNoNamespace(t, r.res.Header)
					expectNoCookie(t, r.res, "a page beside the login")
					sessions := holdSessions(t)
					if got := holding(sessions, value); len(got) > 0 {
						t.Fatalf("the commands of a page across a login live on in %+v", got)
					}
					if _, ok := sessions[hashOf("sid="+v.sid)]; ok {
						t.Fatal("the visitor's ID from before the login opens a session")
					}
					l, ok := sessions[hashOf("sid="+tab.sid)]
					if !ok || l.Values["user"] != "alice" || l.Values["cart"] != "apple" {
						t.Fatalf("alice's session after the page is %+v (found: %v), want her login with the cart", l, ok)
					}
					if len(sessions) != 1 {
						t.Fatalf("%d live sessions, want alice's only", len(sessions))
					}
					if r.err != nil || r.res.StatusCode != http.StatusOK {
						t.Fatalf("the visitor's page beside its login is %d %q (%v), want it delivered", r.res.StatusCode, r.body, r.err)
					}
				})
			}
		})
	}
}
