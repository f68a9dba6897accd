package integration_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/internal/testhook"
	"github.com/caddy-session/caddy-session/session"
)

// newsRow is one piece of news Redis tells an instance while a request
// of alice's is in flight on it: what is written, and by whom.
type newsRow struct {
	name string
	// other needs the second Caddy, a binary (skipped under -short).
	other bool
	// about is whose session's key the news is about: "alice", "bob", or
	// "" for any key (a flush).
	about string
	// ended is whether alice's session ended.
	ended bool
	// reads is how many HGETALL Redis may run for alice's request from
	// the news on: none where her session's key did not change, whose
	// copy the cache still holds; one where it changed.
	reads     int
	meanwhile func(t *testing.T, n *newsEnv, alice, bob *visitor)
}

// newsEnv is what a row's meanwhile acts through.
type newsEnv struct {
	srv *redistest.Server
	b   *site // the other instance, nil under -short
}

func newsRows() []newsRow {
	onB := func(n *newsEnv, v *visitor) *visitor { return &visitor{site: n.b, sid: v.sid} }
	return []newsRow{
		{name: "another session written on this instance", about: "bob",
			meanwhile: func(t *testing.T, _ *newsEnv, _, bob *visitor) {
				expectStatus(t, bob.clone().get("/cart", "X-Session-Set-Cart: pear"), http.StatusOK)
			}},
		{name: "another session written on another instance", other: true, about: "bob",
			meanwhile: func(t *testing.T, n *newsEnv, _, bob *visitor) {
				expectStatus(t, onB(n, bob).get("/cart", "X-Session-Set-Cart: pear"), http.StatusOK)
			}},
		{name: "another session ended on another instance", other: true, about: "bob",
			meanwhile: func(t *testing.T, n *newsEnv, _, bob *visitor) {
				expectStatus(t, onB(n, bob).get("/logout", "X-Session-Destroy: true"), http.StatusOK)
			}},
		{name: "its own session written on another tab", about: "alice", reads: 1,
			meanwhile: func(t *testing.T, _ *newsEnv, alice, _ *visitor) {
				expectStatus(t, alice.clone().get("/cart", "X-Session-Set-Cart: pear"), http.StatusOK)
			}},
		{name: "its own session ended on another instance", other: true, about: "alice", ended: true, reads: 1,
			meanwhile: func(t *testing.T, n *newsEnv, alice, _ *visitor) {
				expectStatus(t, onB(n, alice).get("/logout", "X-Session-Destroy: true"), http.StatusOK)
			}},
		{name: "every session deleted behind Caddy's back", ended: true, reads: 1,
			meanwhile: func(t *testing.T, n *newsEnv, _, _ *visitor) {
				if _, err := n.srv.Do("FLUSHALL"); err != nil {
					t.Fatal(err)
				}
			}},
	}
}

// startNewsEnv starts Redis and, unless -short, a second Caddy binary on
// it, of realm shop.
func startNewsEnv(t *testing.T) *newsEnv {
	t.Helper()
	n := &newsEnv{srv: redistest.Start(t)}
	if !short {
		n.b, _ = startRedisCaddy(t, n.srv.URL(), "", startUpstream(t))
	}
	return n
}

// waitTold runs the row's meanwhile and waits until Redis has told this
// process of it.
func (n *newsEnv) waitTold(t *testing.T, row newsRow, alice, bob *visitor) {
	t.Helper()
	hash := ""
	switch row.about {
	case "alice":
		hash = session.HashID(alice.sid).String()
	case "bob":
		hash = session.HashID(bob.sid).String()
	}
	told := redisToldOf(t, hash)
	row.meanwhile(t, n, alice, bob)
	select {
	case <-told:
	case <-time.After(10 * time.Second):
		t.Fatal("redis never told this instance of the change: the test cannot judge what its request read")
	}
}

// loginBoth logs alice and bob in on s, and has s read bob's session, so
// that it holds a copy Redis tells it of.
func loginBoth(t *testing.T, s *site) (alice, bob *visitor) {
	t.Helper()
	alice, bob = login(t, s, "alice"), login(t, s, "bob")
	expectSession(t, bob.get("/"), map[string]string{"X-Session-User": "bob", "X-Session-Cart": "apple"})
	return alice, bob
}

// TestStreamRegisteredAfterNewsReadsThroughTheCache: a response that
// starts to stream (an event stream; an ordinary page the app sends in
// chunks is one too) after Redis told this instance of some change since
// its request loaded the session looks at its session at once. Told of
// changes alone, that look reads the session where the cache keeps it,
// as an answer's judgement does (withheld.go): what changed is gone from
// the cache, and the rest is as Redis holds it. It read past the cache
// (a Redis round trip) whenever any key this instance had read changed:
// on a busy instance beside others, whose writes (touches, carts,
// logins of other users) Redis tells it of all the time, every streamed
// page paid a Redis read of its session. The news of its own session's
// change still reads Redis, and an end still closes the stream.
func TestStreamRegisteredAfterNewsReadsThroughTheCache(t *testing.T) {
	n := startNewsEnv(t)
	for _, row := range newsRows() {
		t.Run(row.name, func(t *testing.T) {
			if row.other && n.b == nil {
				t.Skip("skipped under -short: needs the Caddy binary beside the one in this process")
			}
			s, app := newStreamSite(t, "store redis "+n.srv.URL(), "realm shop\n\t\tidle_timeout 2h\n\t\ttunnels 1h")
			alice, bob := loginBoth(t, s)
			reached, release := holdStreamOpening(t)
			_, br := sendRaw(t, alice, "/events?kind=events", "Accept: text/event-stream\r\n")
			waitReached(t, reached)
			n.waitTold(t, row, alice, bob)

			checked := make(chan testhook.TunnelCheck, 1)
			f := func(c testhook.TunnelCheck) {
				if !c.Periodic {
					select {
					case checked <- c:
					default:
					}
				}
			}
			testhook.TunnelChecked.Store(&f)
			t.Cleanup(func() { testhook.TunnelChecked.Store(nil) })

			before := hgetallCalls(t, n.srv)
			release()
			res := rawAnswer(t, br, http.StatusOK)
			var c testhook.TunnelCheck
			select {
			case c = <-checked:
			case <-time.After(10 * time.Second):
				t.Fatal("the stream registered after news of a change never looked at its session")
			}
			if reads := hgetallCalls(t, n.srv) - before; reads > row.reads {
				t.Errorf("the stream's look at its session ran HGETALL %d times, want at most %d: it read past the cache that the news kept right", reads, row.reads)
			}
			if c.Closed != row.ended {
				t.Errorf("the stream's look found its session ended: %v, want %v", c.Closed, row.ended)
			}
			st := &openStream{t: t, app: app, body: res.Body, br: bufio.NewReader(res.Body)}
			if row.ended {
				st.closesPast("hello") // the look closes it, before or after its first event
				return
			}
			st.reads("hello")
			st.flows("still yours")
		})
	}
}

// TestAnswerAfterNewsReadsThroughTheCache: an answer judged after Redis
// told this instance of a change reads its session through the cache
// (withheld.go): no Redis read when the news was of another session, one
// when it was of its own, and an end withholds it. The clock is stepped
// back, so that the answer is judged on the news alone.
func TestAnswerAfterNewsReadsThroughTheCache(t *testing.T) {
	n := startNewsEnv(t)
	s, g := gatedSite(t, func(t *testing.T, _ string) *site {
		return newSiteOn(t, "store redis "+n.srv.URL(), "realm shop\n\t\tidle_timeout 2h")
	})
	for _, row := range newsRows() {
		t.Run(row.name, func(t *testing.T) {
			if row.other && n.b == nil {
				t.Skip("skipped under -short: needs the Caddy binary beside the one in this process")
			}
			alice, bob := loginBoth(t, s)
			answer := holdBody(t, alice, g, "poll-"+strings.NewReplacer(" ", "-", "'", "").Replace(row.name))
			n.waitTold(t, row, alice, bob)
			clock.Advance(-time.Minute)
			t.Cleanup(func() { clock.Advance(time.Minute) })
			before := hgetallCalls(t, n.srv)
			res, body := answer()
			if reads := hgetallCalls(t, n.srv) - before; reads > row.reads {
				t.Errorf("the answer's judgement ran HGETALL %d times, want at most %d: it read past the cache that the news kept right", reads, row.reads)
			}
			if row.ended {
				withheld(t, res, body)
				return
			}
			delivered(t, res, body)
		})
	}
}
