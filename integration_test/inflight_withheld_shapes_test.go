package integration_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/session"
)

// shapedAnswer is a held request's answer, with the 1xx responses the
// client got before it.
type shapedAnswer struct {
	res   *http.Response
	body  string
	hints []http.Header
}

// holdShaped sends method with the visitor's cookie and the upstream
// orders in headers (name, value pairs), and returns once the upstream
// holds it; the function it returns lets it go and returns its answer.
func holdShaped(t *testing.T, v *visitor, g *gates, name, method string, headers ...string) func() shapedAnswer {
	t.Helper()
	req, err := http.NewRequest(method, v.site.url("/poll"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	req.Header.Set("Test-Gate", name)
	req.Header.Set("Cookie", "sid="+v.sid)
	var mu sync.Mutex
	var hints []http.Header
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			mu.Lock()
			defer mu.Unlock()
			hints = append(hints, http.Header(h).Clone())
			return nil
		},
	}))
	arrived, release := g.chans(name)
	done := sendAside(t, req, &http.Transport{TLSClientConfig: &tls.Config{}})
	select {
	case <-arrived:
	case r := <-done:
		t.Fatalf("request %s was answered without reaching the upstream: %+v", name, r)
	}
	return func() shapedAnswer {
		t.Helper()
		close(release)
		var r sentAnswer
		within(t, "the held request got no answer", func() { r = <-done })
		if r.err != nil {
			t.Fatalf("request %s: %v", name, r.err)
		}
		assertNoNamespace(t, r.res.Header)
		a := shapedAnswer{res: r.res, body: r.body}
		mu.Lock()
		a.hints = hints
		mu.Unlock()
		for _, h := range a.hints {
			assertNoNamespace(t, h)
		}
		return a
	}
}

// answerShapes are answers of other shapes than a 200 with a body: each
// carries the app's headers for alice, which a withheld answer must not.
var answerShapes = []struct {
	name    string
	method  string
	headers []string
	status  int // the app's status, when delivered
}{
	{"HEAD", http.MethodHead, nil, http.StatusOK},
	{"304 Not Modified", http.MethodGet, []string{"Test-Status", "304", "Test-Header", "ETag: \"alice-v1\""}, http.StatusNotModified},
	{"204 No Content", http.MethodGet, []string{"Test-Status", "204"}, http.StatusNoContent},
	{"404 of the app", http.MethodGet, []string{"Test-Status", "404"}, http.StatusNotFound},
	{"103 Early Hints, then 200", http.MethodGet, []string{"Test-Early-Hints", "Link: </alice/avatar.png>; rel=preload"}, http.StatusOK},
}

// appHeaders are the headers every shaped answer of the app carries.
var appHeaders = []string{"Test-Header", "X-App-User: alice", "Test-Header", "Cache-Control: max-age=600", "Test-Header", "Set-Cookie: app=alice"}

// TestWithheldAnswerOfEveryShape: a slow answer whose session ended
// while the app worked on it is withheld whatever its shape (README, "A
// response that is never flushed"): a HEAD, a 304, a 204, an error of the
// app, a final answer after a 103. The client gets the 403, with none of
// the app's headers (its own cookie, its cache headers, its ETag) and no
// session cookie. One whose session stands (the same user, renewed on
// another tab) is delivered as the app wrote it.
func TestWithheldAnswerOfEveryShape(t *testing.T) {
	ends := []struct {
		name      string
		meanwhile func(t *testing.T, s *site, v *visitor)
		withheld  bool
	}{
		{"revoked", func(t *testing.T, s *site, v *visitor) {
			sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "alice"}`).decode(t, http.StatusOK, &struct{ Revoked int }{})
		}, true},
		{"logged out on another tab", func(t *testing.T, s *site, v *visitor) {
			expectStatus(t, v.clone().get("/logout", "X-Session-Destroy: true"), http.StatusOK)
		}, true},
		{"renewed on another tab 90s before", func(t *testing.T, s *site, v *visitor) {
			expectStatus(t, v.clone().get("/renew", "X-Session-Renew: true"), http.StatusOK)
			clock.Advance(90 * time.Second)
		}, false},
	}
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		for _, end := range ends {
			for _, shape := range answerShapes {
				t.Run(end.name+"/"+shape.name, func(t *testing.T) {
					s, g := gatedSite(t, func(t *testing.T, _ string) *site { return newSite(t, "idle_timeout 2h\n\t\ttunnels 1h") })
					alice := login(t, s, "alice")
					answer := holdShaped(t, alice, g, "poll", shape.method, append(append([]string{}, shape.headers...), appHeaders...)...)
					end.meanwhile(t, s, alice)
					a := answer()
					if !end.withheld {
						if a.res.StatusCode != shape.status || a.res.Header.Get("X-App-User") != "alice" {
							t.Fatalf("got %d %v, want the app's %d to alice delivered: the session stood", a.res.StatusCode, a.res.Header, shape.status)
						}
						expectNoCookie(t, a.res, "a request in flight across a renewal")
						if hinted := len(shape.headers) > 0 && shape.headers[0] == "Test-Early-Hints"; hinted && (len(a.hints) != 1 || a.hints[0].Get("Link") == "") {
							t.Fatalf("the client got the 1xx responses %v, want the app's 103 with its Link: the session stood", a.hints)
						}
						return
					}
					if a.res.StatusCode != answerWithheld {
						t.Fatalf("got %d %v, want the 403 of a withheld answer", a.res.StatusCode, a.res.Header)
					}
					for _, name := range []string{"X-App-User", "Etag", "Cache-Control", "Set-Cookie", "Link"} {
						if got := a.res.Header.Values(name); len(got) != 0 && !(name == "Cache-Control" && !strings.Contains(strings.Join(got, ","), "max-age=600")) {
							t.Errorf("the withheld answer carries the app's %s %q", name, got)
						}
					}
					if strings.Contains(a.body, "alice") {
						t.Errorf("the withheld answer's body holds alice's data: %q", a.body)
					}
					for _, h := range a.hints {
						if len(h.Values("Link")) != 0 {
							t.Errorf("a 1xx the app sent after the session ended reached the client with its Link %q", h.Values("Link"))
						}
					}
				})
			}
		}
	})
}

const answerWithheld = http.StatusForbidden

// TestWithheldUnderAShortTunnelsInterval: with `tunnels` under a second,
// an answer that took longer than the interval reads its session again
// (README), so that an end this process was not told of (the session
// deleted in Redis behind its back, as by another instance) is found. A
// faster one reads its session only once Redis told this process of a
// change (client tracking: FLUSHALL invalidates every key it read), and
// with no cache, which asks Redis for no tracking, it reads nothing and
// is delivered. A session that stands is delivered however long the
// answer took.
func TestWithheldUnderAShortTunnelsInterval(t *testing.T) {
	rows := []struct {
		name     string
		took     time.Duration
		flush    bool // the session is deleted behind Caddy's back meanwhile
		noCache  bool // cache_size 0: Redis tells this process of nothing
		withheld bool
	}{
		{"ended, took longer than the interval", 600 * time.Millisecond, true, false, true},
		{"ended, took the interval", 500 * time.Millisecond, true, false, true},
		{"ended, answered at once, told by Redis", 0, true, false, true},
		{"ended, answered at once, nothing told", 0, true, true, false},
		{"ended, took the interval, nothing told", 500 * time.Millisecond, true, true, true},
		{"stands, took longer than the interval", 600 * time.Millisecond, false, false, false},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			srv := redistest.Start(t)
			storeLine := "store redis " + srv.URL()
			if row.noCache {
				storeLine += " {\n\t\t\tcache_size 0\n\t\t}"
			}
			s, g := gatedSite(t, func(t *testing.T, _ string) *site {
				return newSiteOn(t, storeLine, "tunnels 500ms")
			})
			alice := login(t, s, "alice")
			answer := holdBody(t, alice, g, "poll")
			if row.flush {
				told := redisToldOf(t, session.HashID(alice.sid).String())
				if _, err := srv.Do("FLUSHALL"); err != nil {
					t.Fatal(err)
				}
				if !row.noCache {
					select {
					case <-told:
					case <-time.After(10 * time.Second):
						t.Fatal("redis never told this process of the FLUSHALL")
					}
				}
			}
			// The held request's own time on the real clock counts too:
			// milliseconds, but on a loaded machine it passed the 500ms
			// interval now and then, and the answer "at once" read its
			// session as a slow one (1 run in 40 of this test beside CPU
			// hogs). A row that answers at once steps the clock back a
			// minute instead, so that it is judged on what Redis told
			// this process alone, as TestAnswerAfterNewsReadsThroughTheCache
			// does; real time only adds to the other rows' took.
			if row.took == 0 {
				clock.Advance(-time.Minute)
				t.Cleanup(func() { clock.Advance(time.Minute) })
			}
			clock.Advance(row.took)
			res, body := answer()
			if row.withheld {
				withheld(t, res, body)
				return
			}
			delivered(t, res, body)
		})
	}
}
