package integration_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// TestAppServersConcurrentWritesSurvive: two requests of alice's session
// are inside a real app server at once, each answering with commands of
// its own (two keys; a key and a renewal; a key and a remember; a key and
// a delete; a flash value and a key), and are let go in either order.
// Every write of both survives in the one session alice holds after them
// (README: "concurrent requests that set different keys never lose each
// other's writes"), a cookie is set only by the one that rotates, and
// the ID it rotated away opens nothing.
func TestAppServersConcurrentWritesSurvive(t *testing.T) {
	rows := []struct {
		name string
		a, b []string
		// want is what alice's session holds after both; flash: its flash
		// values.
		want, flash map[string]string
		rotates     bool // b moves the session to a new ID
		remembered  bool
	}{
		{name: "two keys", a: []string{"X-Session-Set-Cart:pear"}, b: []string{"X-Session-Set-Color:blue"},
			want: map[string]string{"user": "alice", "theme": "dark", "cart": "pear", "color": "blue"}},
		{name: "a key and a renewal", a: []string{"X-Session-Set-Cart:pear"}, b: []string{"X-Session-Renew:true"},
			want: map[string]string{"user": "alice", "theme": "dark", "cart": "pear"}, rotates: true},
		{name: "a key and a renewal with a key", a: []string{"X-Session-Set-Cart:pear"}, b: []string{"X-Session-Renew:true", "X-Session-Set-Color:blue"},
			want: map[string]string{"user": "alice", "theme": "dark", "cart": "pear", "color": "blue"}, rotates: true},
		{name: "a key and a remember", a: []string{"X-Session-Set-Cart:pear"}, b: []string{"X-Session-Remember:true"},
			want: map[string]string{"user": "alice", "theme": "dark", "cart": "pear"}, rotates: true, remembered: true},
		{name: "a key and a delete", a: []string{"X-Session-Set-Cart:pear"}, b: []string{"X-Session-Delete:theme"},
			want: map[string]string{"user": "alice", "cart": "pear"}},
		{name: "a flash value and a key", a: []string{"X-Session-Flash-Notice:saved"}, b: []string{"X-Session-Set-Color:blue"},
			want: map[string]string{"user": "alice", "color": "blue", "theme": "dark"}, flash: map[string]string{"notice": "saved"}},
	}
	for _, srv := range holdServers(t) {
		t.Run(srv.name, func(t *testing.T) {
			for _, row := range rows {
				for _, bFirst := range []bool{false, true} {
					name := row.name + ", the first let go first"
					if bFirst {
						name = row.name + ", the second let go first"
					}
					t.Run(name, func(t *testing.T) {
						s := newApps2Site(t, srv.apps2Server, "", "")
						alice := apps2Login(t, s, srv.command, "alice")
						expectStatus(t, alice.get(appPath(srv.command, "h", "X-Session-Set-Theme:dark")), http.StatusOK)
						a := srv.holdIn(t, s, alice, row.a...)
						b := srv.holdIn(t, s, alice, row.b...)
						var ra, rb sentAnswer
						if bFirst {
							rb, ra = b(), a()
						} else {
							ra, rb = a(), b()
						}
						for _, r := range []sentAnswer{ra, rb} {
							if r.res.StatusCode != http.StatusOK || !strings.Contains(r.body, "alice") {
								t.Fatalf("an answer of alice's live session is %d %q, want the app's", r.res.StatusCode, r.body)
							}
						}
						expectNoCookie(t, ra.res, "a write beside another")
						now := alice.sid
						if c := sidCookie(rb.res); row.rotates {
							if c == nil || c.MaxAge < 0 || c.Value == alice.sid {
								t.Fatalf("the rotation set the cookie %v, want a new ID", c)
							}
							now = c.Value
						} else {
							expectNoCookie(t, rb.res, "a write beside another")
						}
						sessions := holdSessions(t)
						if len(sessions) != 1 {
							t.Fatalf("%d live sessions after the two requests, want alice's only", len(sessions))
						}
						got, ok := sessions[hashOf("sid="+now)]
						if !ok {
							t.Fatal("the ID alice holds after the two requests opens nothing")
						}
						if !equalMaps(got.Values, row.want) || !equalMaps(got.Flash, row.flash) {
							t.Fatalf("alice's session holds %v, flash %v; want %v, flash %v", got.Values, got.Flash, row.want, row.flash)
						}
						if got.Remembered != row.remembered {
							t.Fatalf("alice's session remembered: %v, want %v", got.Remembered, row.remembered)
						}
					})
				}
			}
		})
	}
}

// TestAppServersLateWriteKeepsANewerTouch: a request that began before
// another touched the session, inside a real app server while it did, and
// answers with a write after it, keeps the write and the newer touch:
// the idle deadline stays where the newer request moved it (README: "one
// that answers after a newer request touched the session writes its
// changes without moving the deadline back").
func TestAppServersLateWriteKeepsANewerTouch(t *testing.T) {
	for _, srv := range holdServers(t) {
		t.Run(srv.name, func(t *testing.T) {
			for _, late := range [][]string{{"X-Session-Set-Cart:pear"}, {"X-Session-Renew:true"}, {"X-Session-Flash-Notice:saved"}} {
				t.Run(strings.Join(late, " "), func(t *testing.T) {
					s := newApps2Site(t, srv.apps2Server, "", "idle_timeout 30m\n\t\ttouch_interval 1m")
					alice := apps2Login(t, s, srv.command, "alice")
					slow := srv.holdIn(t, s, alice, late...)
					clock.Advance(10 * time.Minute)
					expectStatus(t, alice.get(appPath(srv.command)), http.StatusOK) // touches
					touched := holdSessions(t)[hashOf("sid="+alice.sid)].IdleDeadline
					if want := clock.Now().Add(30 * time.Minute); touched.Before(want.Add(-time.Minute)) {
						t.Fatalf("the newer request's touch left the idle deadline at %s, want about %s", touched, want)
					}
					r := slow()
					if r.res.StatusCode != http.StatusOK {
						t.Fatalf("the late write's answer is %d %q", r.res.StatusCode, r.body)
					}
					now := alice.sid
					if c := sidCookie(r.res); c != nil && c.MaxAge >= 0 {
						now = c.Value
					}
					got, ok := holdSessions(t)[hashOf("sid="+now)]
					if !ok {
						t.Fatal("alice's session is gone after the late write")
					}
					if got.IdleDeadline.Before(touched) {
						t.Fatalf("the late write moved the idle deadline back from %s to %s", touched, got.IdleDeadline)
					}
					if got.Values["user"] != "alice" || (late[0] == "X-Session-Set-Cart:pear" && got.Values["cart"] != "pear") ||
						(late[0] == "X-Session-Flash-Notice:saved" && got.Flash["notice"] != "saved") {
						t.Fatalf("after the late write alice's session holds %v, flash %v", got.Values, got.Flash)
					}
				})
			}
		})
	}
}

// equalMaps is maps.Equal, with nil and empty alike.
func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
