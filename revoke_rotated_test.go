package caddysession

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// listedStore runs afterList once a ListByIdentity has returned, before
// the handler acts on what it listed.
// beforeList runs once before one begins.
type listedStore struct {
	store.Store
	beforeList, afterList func()
	// omit leaves the session under it out of every listing, as a
	// listing cut at store.MaxListByIdentity may.
	omit *session.Hash
}

func (l *listedStore) ListByIdentity(ctx context.Context, realm, key, value string, now time.Time) ([]store.Entry, error) {
	if l.beforeList != nil {
		l.beforeList()
		l.beforeList = nil
	}
	entries, err := l.Store.ListByIdentity(ctx, realm, key, value, now)
	if l.omit != nil {
		entries = slices.DeleteFunc(entries, func(e store.Entry) bool { return e.Hash == *l.omit })
	}
	if l.afterList != nil {
		l.afterList()
		l.afterList = nil
	}
	return entries, err
}

// rotate gives the session under hash a new ID, as a request of its own
// device that sets keys does (user alice: a renewal; another: a login).
func rotate(t *testing.T, s store.Store, h *Handler, hash session.Hash, keys map[string]string) session.Hash {
	t.Helper()
	return rotateAt(t, s, h, hash, clock.Now(), keys)
}

// rotateAt is rotate by a request that began at now.
func rotateAt(t *testing.T, s store.Store, h *Handler, hash session.Hash, now time.Time, keys map[string]string) session.Hash {
	t.Helper()
	_, next := newSessionID()
	res, err := s.Update(t.Context(), store.Update{Hash: hash, HasHash: true, NewHash: next,
		Patch: &session.Patch{Set: keys, Renew: true}, Seen: "alice",
		Identity: h.identity, Realm: h.realm, Now: now, Timeouts: h.timeouts, Limits: h.limits})
	if err != nil || res.Hash != *next {
		t.Fatalf("rotating %s: %+v, %v", hash.Short(), res, err)
	}
	return *next
}

// twoSessions starts two live sessions of alice on a wired handler: the
// request's own, under the ID it returns, and another.
func twoSessions(t *testing.T) (h *Handler, id string, mine, other *session.Hash) {
	t.Helper()
	h = wiredHandler(t)
	id, mine = newSessionID()
	startSession(t, h, *mine, clock.Now())
	_, other = newSessionID()
	startSession(t, h, *other, clock.Now())
	return h, id, mine, other
}

// TestRevokeOfASessionThatRotated: the session that X-Session-Revoke names
// gets a new ID between the check of the command and the revocation (its
// device renewed it: the short hash now holds a forward record). The
// revocation ends the successor, the same device's session; a successor
// that is another user's (that device logged in as someone else) is not
// the user's to end.
func TestRevokeOfASessionThatRotated(t *testing.T) {
	for _, tc := range []struct {
		name    string
		keys    map[string]string
		revoked bool
	}{
		{"renewed", map[string]string{"cart": "x"}, true},
		{"logged in as another user", map[string]string{"user": "bob"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, id, mine, other := twoSessions(t)
			log := withEvents(t, h, eventDestroyed)
			base := h.store
			var successor session.Hash
			h.store = &listedStore{Store: base, afterList: func() { successor = rotate(t, base, h, *other, tc.keys) }}

			if _, err := serveWith(t, h, id, "X-Session-Revoke: "+other.Short()); err != nil {
				t.Fatalf("ServeHTTP: %v", err)
			}
			if got := !isLive(t, h, successor); got != tc.revoked {
				t.Errorf("the successor of the revoked session ended: %v, want %v", got, tc.revoked)
			}
			// The event names the session that ended, the successor an
			// app was told of by the renewal's session.renewed.
			expectEnded(t, log.take(), tc.revoked, successor, causeRevoked)
			if !isLive(t, h, *mine) {
				t.Error("the revoking session ended")
			}
		})
	}
}

// TestEvictionOfASessionThatRotated: the cap's eviction of a session that
// got a new ID after it was listed, by a request of its device that began
// before the login (a slow renewal), ends the successor, so the login
// leaves the user within the cap. A successor seen since the login began
// is in use, and is not ended, as such a session would not be had the
// listing shown it.
func TestEvictionOfASessionThatRotated(t *testing.T) {
	for _, tc := range []struct {
		name    string
		renewed time.Duration // when the renewal's request began, from the login's
		lagging bool          // the login's instance holds a copy from before the renewal
		evicted bool
	}{
		{"by a request older than the login", -30 * time.Second, false, true},
		{"by a request since the login began", time.Second, false, false},
		{"by a request older than the login, elsewhere, a cached copy lagging", -30 * time.Second, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := wiredHandler(t)
			h.MaxSessionsPerIdentity = 1
			log := withEvents(t, h, eventDestroyed)
			_, old := newSessionID()
			startSession(t, h, *old, clock.Now().Add(-time.Minute))
			base := h.store
			var successor session.Hash
			loginAt := clock.Now()
			var listing store.Store = base
			if tc.lagging {
				listing = lagBehind(t, h, *old)
			}
			h.store = &listedStore{Store: listing, afterList: func() {
				successor = rotateAt(t, base, h, *old, loginAt.Add(tc.renewed), map[string]string{"cart": "x"})
			}}
			hdr, err := serveWith(t, h, "", "X-Session-Set-User: alice")
			if err != nil {
				t.Fatal(err)
			}
			if !isLive(t, h, issuedHash(t, hdr)) {
				t.Fatal("the login's session is not live")
			}
			if got := !isLive(t, h, successor); got != tc.evicted {
				t.Errorf("the successor of the evicted session ended: %v, want %v", got, tc.evicted)
			}
			expectEnded(t, log.take(), tc.evicted, successor, causeEvicted)
		})
	}
}

// expectEnded checks the session.destroyed events got: if ended, one, of
// alice's session under hash, with cause; otherwise none.
func expectEnded(t *testing.T, got []caddy.Event, ended bool, hash session.Hash, cause string) {
	t.Helper()
	if !ended {
		if len(got) != 0 {
			t.Errorf("events %v, want none", got)
		}
		return
	}
	if len(got) != 1 {
		t.Fatalf("events %v, want one session.destroyed", got)
	}
	d := got[0].Data
	if got[0].Name() != eventDestroyed || d["session"] != hash.Short() || d["identity"] != "alice" || d["cause"] != cause {
		t.Errorf("event %s %v, want session.destroyed of alice's session %s, cause %s", got[0].Name(), d, hash.Short(), cause)
	}
}

// TestRevokeFromASessionThatEnded: a request whose own session ended while
// it was in flight (that device was itself revoked, or logged out) revokes
// nothing: its commands are dropped, as any command of an ended session
// is, whether the response also sets a key or only revokes. One whose
// session was renewed meanwhile is still that user's session, and its
// revocation applies.
func TestRevokeFromASessionThatEnded(t *testing.T) {
	for _, tc := range []struct {
		name     string
		end      func(t *testing.T, s store.Store, h *Handler, mine session.Hash)
		commands []string
		revoked  bool
	}{
		{"ended, revoke only", deleteIn, nil, false},
		{"ended, revoke and a key", deleteIn, []string{"X-Session-Set-Cart: x"}, false},
		{"renewed, revoke only", renewIn, nil, true},
		{"renewed, revoke and a key", renewIn, []string{"X-Session-Set-Cart: x"}, true},
		{"ended, revoke only, no touch due", deleteIn, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := wiredHandler(t)
			id, mine := newSessionID()
			seen := clock.Now().Add(-2 * time.Minute) // a touch is due
			if strings.HasSuffix(tc.name, "no touch due") {
				seen = clock.Now()
			}
			startSession(t, h, *mine, seen)
			_, other := newSessionID()
			startSession(t, h, *other, clock.Now())
			base := h.store
			h.store = &listedStore{Store: base, beforeList: func() { tc.end(t, base, h, *mine) }}
			_, err := serveWith(t, h, id, append([]string{"X-Session-Revoke: " + other.Short()}, tc.commands...)...)
			switch {
			case !tc.revoked:
				expectWithheld(t, err) // its session ended: withheld.go
			case err != nil:
				t.Fatalf("ServeHTTP: %v", err)
			}
			if got := !isLive(t, h, *other); got != tc.revoked {
				t.Errorf("the other session revoked: %v, want %v", got, tc.revoked)
			}
		})
	}
}

func deleteIn(t *testing.T, s store.Store, _ *Handler, hash session.Hash) {
	t.Helper()
	if err := s.Delete(t.Context(), hash); err != nil {
		t.Fatal(err)
	}
}

func renewIn(t *testing.T, s store.Store, h *Handler, hash session.Hash) {
	t.Helper()
	rotate(t, s, h, hash, nil)
}

// TestRevokeFromASessionTheListingLeftOut: a user with more sessions than
// a listing holds (store.MaxListByIdentity) may not find the request's
// own among them; it is live all the same, and its revocation applies.
func TestRevokeFromASessionTheListingLeftOut(t *testing.T) {
	h, id, mine, other := twoSessions(t)
	h.store = &listedStore{Store: h.store, omit: mine}
	if _, err := serveWith(t, h, id, "X-Session-Revoke: "+other.Short()); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	if isLive(t, h, *other) {
		t.Error("the other session was not revoked")
	}
}

// TestRevokeOfItsOwnSessionAfterARenewal: a request whose session another
// request of the device renewed while it was in flight acts as the
// session it became (the successor), so naming the successor's short hash
// names the request's own session, which X-Session-Destroy ends: the
// command is refused as a conflict, nothing of the response applies, and
// the session lives on. So is naming the ID the request presented, now a
// forward record. Naming another of the user's sessions still revokes it.
func TestRevokeOfItsOwnSessionAfterARenewal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		target  func(presented, successor, other session.Hash) session.Hash
		revoked bool // target ended; otherwise the response was refused
	}{
		{"the successor", func(_, s, _ session.Hash) session.Hash { return s }, false},
		{"the presented ID", func(p, _, _ session.Hash) session.Hash { return p }, false},
		{"another session", func(_, _, o session.Hash) session.Hash { return o }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, id, mine, other := twoSessions(t)
			conflicts := conflictsCounted(t)
			var successor, target session.Hash
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				// Another tab renews the session while this request is in
				// the app.
				successor = rotate(t, h.store, h, *mine, nil)
				target = tc.target(*mine, successor, *other)
				w.Header().Set("X-Session-Revoke", target.Short())
				w.Header().Set("X-Session-Set-Cart", "x")
				w.WriteHeader(http.StatusOK)
				return nil
			})
			if _, err := serveID(h, id, next); err != nil {
				t.Fatalf("ServeHTTP: %v", err)
			}
			if got := !isLive(t, h, target); got != tc.revoked {
				t.Fatalf("revoking %s ended it: %v, want %v", tc.name, got, tc.revoked)
			}
			if !isLive(t, h, successor) {
				t.Fatal("the request's own session, renewed in flight, ended")
			}
			rec, err := h.store.Load(t.Context(), successor, clock.Now(), h.timeouts)
			if err != nil {
				t.Fatal(err)
			}
			if applied := rec.Values["cart"] == "x"; applied != tc.revoked {
				t.Errorf("the response's other command applied: %v, want %v", applied, tc.revoked)
			}
			refused := conflictsCounted(t) - conflicts
			if want := map[bool]float64{true: 0, false: 1}[tc.revoked]; refused != want {
				t.Errorf("conflict refusals counted: %v, want %v", refused, want)
			}
		})
	}
}

// conflictsCounted is the rejected metric's count of conflicts so far.
func conflictsCounted(t *testing.T) float64 {
	t.Helper()
	return counted(t, sessionMetrics.rejected, "conflict")
}

// counted is the count of vec's counter of label so far.
func counted(t *testing.T, vec *prometheus.CounterVec, label string) float64 {
	t.Helper()
	var m dto.Metric
	if err := vec.WithLabelValues(label).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestRevokeDroppedWhyCounted: a request whose own session ended while
// it was in flight, or became another user's (a login in another tab),
// has its revocation dropped, counted in the dropped metric by what
// happened: ended, or identity_changed, as any other command of such a
// request is.
func TestRevokeDroppedWhyCounted(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		end          func(t *testing.T, s store.Store, h *Handler, mine session.Hash)
	}{
		{"ended", droppedEnded, deleteIn},
		{"logged in as another user", droppedIdentityChange, func(t *testing.T, s store.Store, h *Handler, mine session.Hash) {
			t.Helper()
			rotate(t, s, h, mine, map[string]string{"user": "bob"})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, id, mine, other := twoSessions(t)
			before := counted(t, sessionMetrics.dropped, tc.reason)
			base := h.store
			h.store = &listedStore{Store: base, beforeList: func() { tc.end(t, base, h, *mine) }}
			_, err := serveWith(t, h, id, "X-Session-Revoke: "+other.Short())
			expectWithheld(t, err) // its session ended, or is bob's: withheld.go
			if !isLive(t, h, *other) {
				t.Error("the other session was revoked")
			}
			if got := counted(t, sessionMetrics.dropped, tc.reason) - before; got != 1 {
				t.Errorf("drops counted as %s: %v, want 1", tc.reason, got)
			}
		})
	}
}

// failingDelete is a store whose Delete fails, as one that goes away
// between a response's commit and its revocation does.
type failingDelete struct{ store.Store }

func (failingDelete) Delete(context.Context, session.Hash) error {
	return errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
}

// TestRevokeFailingAfterARenewalKeepsTheCookie: a revocation is applied
// after the rest of its response, and a store that fails in between
// leaves the rest applied and the client gets a 503 (README, "A user's
// own devices"). When the rest gave the session a new ID (a renewal
// beside the revocation, as after a password change), the 503 must carry
// the new ID's cookie: the old ID is only a forward record now, which no
// new request adopts, so without it the device is logged out. None of
// the app's own headers ride on the 503.
func TestRevokeFailingAfterARenewalKeepsTheCookie(t *testing.T) {
	h, id, mine, other := twoSessions(t)
	h.store = failingDelete{h.store}
	hdr, err := serveWith(t, h, id, "X-Session-Renew: true", "X-Session-Revoke: "+other.Short(), "Set-Cookie: app=1")
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("ServeHTTP: %v, want a 503", err)
	}
	if !isLive(t, h, *other) {
		t.Error("the other session ended, though its revocation failed")
	}
	var sids []string
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name != "sid" {
			t.Errorf("the 503 carries the app's cookie %s", c.Name)
			continue
		}
		sids = append(sids, c.Value)
	}
	if len(sids) != 1 {
		t.Fatalf("the 503 carries session cookies %q, want the renewed session's", sids)
	}
	renewed := session.HashID(sids[0])
	if renewed == *mine || !isLive(t, h, renewed) {
		t.Errorf("the 503's cookie is not the renewed session's")
	}
	if hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q on a response that sets a session cookie, want no-store", hdr.Get("Cache-Control"))
	}
}
