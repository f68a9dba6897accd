package integration_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// TestReadsAgreeOnATouchJustMade: bolt answers a touch at once and writes
// it with the next commit, or within a second (README, "Stores"). Every
// way of reading the session right after, past the idle deadline the file
// held before the touch and within the one the touch gave it, must see the
// session touched, as the next request does: an operator's listing or
// export, the user's devices page and the store's count may not show it
// ended, or last seen before its last use, while requests go on with it.
func TestReadsAgreeOnATouchJustMade(t *testing.T) {
	const opts = `idle_timeout 10m
		touch_interval 1m
		devices /account/devices`
	type reading struct {
		found    bool
		lastSeen time.Time // zero when the reader does not say
	}
	cases := []struct {
		name string
		read func(t *testing.T, touched, other *visitor) reading
	}{
		{"the next request", func(t *testing.T, touched, _ *visitor) reading {
			return reading{found: touched.get("/").session()["X-Session-User"] == "alice"}
		}},
		{"GET /session/sessions/<hash>", func(t *testing.T, touched, _ *visitor) reading {
			a := sessionAPI(t, http.MethodGet, "/session/sessions/"+touched.adminHash(), "")
			if a.status == http.StatusNotFound {
				return reading{}
			}
			var one apiSession
			a.decode(t, http.StatusOK, &one)
			return reading{found: true, lastSeen: one.LastSeen}
		}},
		{"GET /session/sessions", func(t *testing.T, touched, _ *visitor) reading {
			var page apiPage
			sessionAPI(t, http.MethodGet, "/session/sessions", "").decode(t, http.StatusOK, &page)
			for _, s := range page.Sessions {
				if s.Hash == touched.adminHash() {
					return reading{found: true, lastSeen: s.LastSeen}
				}
			}
			return reading{}
		}},
		{"GET /session/export", func(t *testing.T, touched, _ *visitor) reading {
			var rec struct {
				LastSeen time.Time `json:"last_seen"`
			}
			if err := json.Unmarshal([]byte(exportedLine(t, touched)), &rec); err != nil {
				t.Fatalf("the export line: %v", err)
			}
			return reading{found: true, lastSeen: rec.LastSeen}
		}},
		{"the devices page of another session of the user", func(t *testing.T, touched, other *visitor) reading {
			for _, d := range other.get("/account/devices").devices(t) {
				if d.Session == touched.shortHash() {
					seen, err := time.Parse(time.RFC3339, d.LastSeen)
					if err != nil {
						t.Fatal(err)
					}
					return reading{found: true, lastSeen: seen}
				}
			}
			return reading{}
		}},
		{"GET /session/stores", func(t *testing.T, _, _ *visitor) reading {
			var stores []apiStore
			sessionAPI(t, http.MethodGet, "/session/stores", "").decode(t, http.StatusOK, &stores)
			if len(stores) != 1 {
				t.Fatalf("GET /session/stores lists %d stores, want the site's one", len(stores))
			}
			return reading{found: stores[0].Sessions == 2}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSite(t, opts)
			touched, other := login(t, s, "alice"), login(t, s, "alice")
			loggedIn := clock.Now()
			clock.Advance(5 * time.Minute)
			used := clock.Now()
			for _, v := range []*visitor{touched, other} {
				expectUser(t, v, "alice") // touches: 5 minutes from the idle deadline, deferred
			}
			// Past the idle deadline of the login, before the touch's.
			clock.Advance(6 * time.Minute)
			got := c.read(t, touched, other)
			if !got.found {
				t.Fatalf("%s does not find the session touched %s ago, whose idle deadline is %s away",
					c.name, clock.Now().Sub(used).Round(time.Second), used.Add(10*time.Minute).Sub(clock.Now()).Round(time.Second))
			}
			// RFC 3339 to the second in the devices list.
			if !got.lastSeen.IsZero() && !got.lastSeen.After(loggedIn.Add(4*time.Minute)) {
				t.Fatalf("%s shows the session last seen at %v, before its use at %v", c.name, got.lastSeen, used)
			}
		})
	}
}
