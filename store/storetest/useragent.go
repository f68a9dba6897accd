package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// The tests of Update.UserAgent and Update.ClientNet: a session keeps the
// client of the update that started it, and only that one.

// firefox is a User-Agent as browsers send them.
const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

// client is what an update tells of the request's client.
type client struct{ userAgent, net string }

// browser and script are two clients.
var (
	browser = client{firefox, "198.51.100.0/24"}
	script  = client{"curl/8.5.0", "2001:db8::/56"}
)

// set makes u tell of c.
func (c client) set(u *store.Update) { u.UserAgent, u.ClientNet = c.userAgent, c.net }

// of is the client a record was created by.
func of(rec *session.Record) client { return client{rec.UserAgent, rec.ClientNet} }

// createWithUA starts a session of realm shop under hash at now holding
// values, with the User-Agent ua.
func createWithUA(t *testing.T, s store.Store, hash session.Hash, now time.Time, values map[string]string, ua string) store.Result {
	t.Helper()
	return createBy(t, s, hash, now, values, client{userAgent: ua})
}

// createBy starts a session of realm shop under hash at now holding
// values, created by c.
func createBy(t *testing.T, s store.Store, hash session.Hash, now time.Time, values map[string]string, c client) store.Result {
	t.Helper()
	u := store.Update{
		NewHash: ptr(hash), Patch: &session.Patch{Set: values},
		Identity: identity, Realm: shop, Now: now, Timeouts: timeouts, Limits: limits,
	}
	c.set(&u)
	res, err := s.Update(t.Context(), u)
	if err != nil || res.Record == nil || res.Hash != hash {
		t.Fatalf("creating session %s: %+v, %v", hash.Short(), res, err)
	}
	return res
}

// wantUA checks the User-Agent of the session under hash, as Load and
// ListByIdentity have it.
func wantUA(t *testing.T, s store.Store, hash session.Hash, now time.Time, want string) {
	t.Helper()
	wantClient(t, s, hash, now, client{userAgent: want})
}

// wantClient checks the client of the session under hash, as Load and
// ListByIdentity have it.
func wantClient(t *testing.T, s store.Store, hash session.Hash, now time.Time, want client) {
	t.Helper()
	if got := of(load(t, s, hash, now)); got != want {
		t.Fatalf("Load of %s: client %q, want %q", hash.Short(), got, want)
	}
	user := load(t, s, hash, now).Values[identity]
	for _, e := range listByIdentity(t, s, shop, identity, user, now) {
		if e.Hash == hash && of(e.Record) != want {
			t.Fatalf("ListByIdentity of %s: client %q, want %q", hash.Short(), of(e.Record), want)
		}
	}
}

// testUserAgentOnCreate: a new session keeps the User-Agent it was
// created with, cut to session.MaxUserAgent bytes, and counts it in no
// limit; one created without has none.
func testUserAgentOnCreate(t *testing.T, s store.Store) {
	h := hashOf("firefox")
	res := createWithUA(t, s, h, base, map[string]string{"user": "alice"}, firefox)
	if res.Record.UserAgent != firefox {
		t.Fatalf("Update returned User-Agent %q, want %q", res.Record.UserAgent, firefox)
	}
	wantUA(t, s, h, base, firefox)

	long := strings.Repeat("a", session.MaxUserAgent-1) + "é and more"
	cut := hashOf("long")
	createWithUA(t, s, cut, base, map[string]string{"user": "alice"}, long)
	wantUA(t, s, cut, base, long[:session.MaxUserAgent-1]) // not half of the é

	// The limits are on keys and values only: a session of exactly
	// session_size bytes takes a User-Agent beside them.
	tight := session.Limits{Keys: 1, ValueSize: 16, SessionSize: len("user") + 16}
	full := hashOf("full")
	res, err := s.Update(t.Context(), store.Update{
		NewHash: ptr(full), Patch: &session.Patch{Set: map[string]string{"user": strings.Repeat("b", 16)}},
		Identity: identity, Realm: shop, Now: base, Timeouts: timeouts, Limits: tight, UserAgent: firefox,
	})
	if err != nil || res.Record.UserAgent != firefox {
		t.Fatalf("a session at its size limit with a User-Agent: %+v, %v", res, err)
	}

	none := hashOf("none")
	createWithUA(t, s, none, base, map[string]string{"user": "alice"}, "")
	wantUA(t, s, none, base, "")
}

// testUserAgentKept: writes, touches and rotations keep the client (its
// User-Agent and network) the session was created by, whatever client
// they come from; a session that a logout starts takes the logout's.
func testUserAgentKept(t *testing.T, s store.Store) {
	h := hashOf("firefox")
	createBy(t, s, h, base, map[string]string{"user": "alice"}, browser)
	steps := []struct {
		name  string
		patch *session.Patch
	}{
		{"a touch", nil},
		{"a set", &session.Patch{Set: map[string]string{"cart": "1"}}},
		{"a delete", &session.Patch{Delete: []string{"cart"}}},
	}
	now := base
	for _, step := range steps {
		now = now.Add(2 * time.Minute)
		u := in(shop, h, "alice", now, step.patch)
		script.set(&u)
		if res, err := s.Update(t.Context(), u); err != nil || res.Record == nil || of(res.Record) != browser {
			t.Fatalf("%s: %+v, %v; want the client kept", step.name, res, err)
		}
		wantClient(t, s, h, now, browser)
	}

	now = now.Add(time.Minute)
	renewed := hashOf("renewed")
	u := in(shop, h, "alice", now, &session.Patch{Renew: true})
	u.NewHash = ptr(renewed)
	script.set(&u)
	if res, err := s.Update(t.Context(), u); err != nil || res.Record == nil || of(res.Record) != browser {
		t.Fatalf("a rotation: %+v, %v; want the client kept", res, err)
	}
	wantClient(t, s, renewed, now, browser)

	now = now.Add(time.Minute)
	fresh := hashOf("fresh")
	u = in(shop, renewed, "alice", now, &session.Patch{Destroy: true, Set: map[string]string{"user": "bob"}})
	u.NewHash = ptr(fresh)
	script.set(&u)
	if res, err := s.Update(t.Context(), u); err != nil || res.Hash != fresh || of(res.Record) != script {
		t.Fatalf("a logout that starts a session: %+v, %v; want the new session with the logout's client", res, err)
	}
	wantGone(t, s, renewed, now)
	wantClient(t, s, fresh, now, script)
}
