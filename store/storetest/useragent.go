package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// The tests of Update.UserAgent: a session keeps the User-Agent of the
// update that started it, and only that one.

// firefox is a User-Agent as browsers send them.
const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

// createWithUA starts a session of realm shop under hash at now holding
// values, with the User-Agent ua.
func createWithUA(t *testing.T, s store.Store, hash session.Hash, now time.Time, values map[string]string, ua string) store.Result {
	t.Helper()
	res, err := s.Update(t.Context(), store.Update{
		NewHash: ptr(hash), Patch: &session.Patch{Set: values},
		Identity: identity, Realm: shop, Now: now, Timeouts: timeouts, Limits: limits, UserAgent: ua,
	})
	if err != nil || res.Record == nil || res.Hash != hash {
		t.Fatalf("creating session %s: %+v, %v", hash.Short(), res, err)
	}
	return res
}

// wantUA checks the User-Agent of the session under hash, as Load and
// ListByIdentity have it.
func wantUA(t *testing.T, s store.Store, hash session.Hash, now time.Time, want string) {
	t.Helper()
	if got := load(t, s, hash, now).UserAgent; got != want {
		t.Fatalf("Load of %s: User-Agent %q, want %q", hash.Short(), got, want)
	}
	user := load(t, s, hash, now).Values[identity]
	for _, e := range listByIdentity(t, s, shop, identity, user, now) {
		if e.Hash == hash && e.Record.UserAgent != want {
			t.Fatalf("ListByIdentity of %s: User-Agent %q, want %q", hash.Short(), e.Record.UserAgent, want)
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

// testUserAgentKept: writes, touches and rotations keep the User-Agent the
// session was created with, whatever User-Agent they carry; a session
// that a logout starts takes the logout's.
func testUserAgentKept(t *testing.T, s store.Store) {
	h := hashOf("firefox")
	createWithUA(t, s, h, base, map[string]string{"user": "alice"}, firefox)
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
		u.UserAgent = "curl/8.5.0"
		if res, err := s.Update(t.Context(), u); err != nil || res.Record == nil || res.Record.UserAgent != firefox {
			t.Fatalf("%s: %+v, %v; want the User-Agent kept", step.name, res, err)
		}
		wantUA(t, s, h, now, firefox)
	}

	now = now.Add(time.Minute)
	renewed := hashOf("renewed")
	u := in(shop, h, "alice", now, &session.Patch{Renew: true})
	u.NewHash, u.UserAgent = ptr(renewed), "curl/8.5.0"
	if res, err := s.Update(t.Context(), u); err != nil || res.Record == nil || res.Record.UserAgent != firefox {
		t.Fatalf("a rotation: %+v, %v; want the User-Agent kept", res, err)
	}
	wantUA(t, s, renewed, now, firefox)

	now = now.Add(time.Minute)
	fresh := hashOf("fresh")
	u = in(shop, renewed, "alice", now, &session.Patch{Destroy: true, Set: map[string]string{"user": "bob"}})
	u.NewHash, u.UserAgent = ptr(fresh), "curl/8.5.0"
	if res, err := s.Update(t.Context(), u); err != nil || res.Hash != fresh || res.Record.UserAgent != "curl/8.5.0" {
		t.Fatalf("a logout that starts a session: %+v, %v; want the new session with the logout's User-Agent", res, err)
	}
	wantGone(t, s, renewed, now)
	wantUA(t, s, fresh, now, "curl/8.5.0")
}
