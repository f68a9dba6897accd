package storetest

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// Put stores rec under hash as it is, indexed under the identity key
// identity, as if an update at now had written it: the store's own way
// in for a record that no Update writes yet. The session's metadata
// (Remembered, Flash, UserAgent) is such: the store keeps it, but Decide
// sets none of it so far.
type Put func(t *testing.T, s store.Store, hash session.Hash, rec *session.Record, identity string, now time.Time)

// Metadata runs the tests of the session's metadata against the stores
// that open returns, fresh and empty each time as for Run, putting the
// records that hold metadata with put: every store keeps it with the
// session through every write that keeps the session, and drops it with
// the session.
func Metadata(t *testing.T, open func(t *testing.T) store.Store, put Put) {
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store, put Put)
	}{
		{"Load", testMetadataLoad},
		{"KeptByWrites", testMetadataKeptByWrites},
		{"Rotation", testMetadataRotation},
		{"Listed", testMetadataListed},
		{"ReturnsCopies", testMetadataReturnsCopies},
		{"NotInherited", testMetadataNotInherited},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := opened(t, open)
			tc.run(t, s, put)
		})
	}
}

// remembered is a session of realm shop created at base with the suite's
// timeouts, holding values and every kind of metadata.
func remembered(values map[string]string) *session.Record {
	rec := timeouts.NewRecord(base)
	rec.Values = maps.Clone(values)
	rec.Realm = shop
	rec.Remembered = true
	rec.UserAgent = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	rec.Flash = map[string]string{"notice": "Saved.", "user": "a flash value, not the key", "empty": ""}
	rec.ClientNet = "2001:db8:1::/48"
	return rec
}

// wantMeta checks the metadata of got against want's.
func wantMeta(t *testing.T, what string, got, want *session.Record) {
	t.Helper()
	if got.Remembered != want.Remembered || got.UserAgent != want.UserAgent || got.ClientNet != want.ClientNet || !maps.Equal(got.Flash, want.Flash) {
		t.Fatalf("%s: metadata %v, %q, %q, %q; want %v, %q, %q, %q", what,
			got.Remembered, got.UserAgent, got.ClientNet, got.Flash, want.Remembered, want.UserAgent, want.ClientNet, want.Flash)
	}
}

// testMetadataLoad: a record with metadata loads with it, and its flash
// values are not keys; one without loads with none.
func testMetadataLoad(t *testing.T, s store.Store, put Put) {
	h, plain := hashOf("remembered"), hashOf("plain")
	want := remembered(map[string]string{"user": "alice"})
	put(t, s, h, want, identity, base)
	createIn(t, s, shop, plain, base, map[string]string{"user": "alice"})
	got := load(t, s, h, base)
	wantMeta(t, "Load", got, want)
	if d := diff(got, want); d != "" || got.Realm != shop {
		t.Fatalf("Load: %s (realm %q)", d, got.Realm)
	}
	got = load(t, s, plain, base)
	if got.Remembered || got.UserAgent != "" || got.ClientNet != "" || got.Flash != nil {
		t.Fatalf("Load of a session without metadata: %v, %q, %q, %#v; want false, \"\", \"\", nil", got.Remembered, got.UserAgent, got.ClientNet, got.Flash)
	}
	wantCount(t, s, base, 2)
}

// testMetadataKeptByWrites: a touch, a set and a delete, which a store
// may write in place, keep the metadata as it was.
func testMetadataKeptByWrites(t *testing.T, s store.Store, put Put) {
	h := hashOf("remembered")
	want := remembered(map[string]string{"user": "alice", "cart": "3"})
	put(t, s, h, want, identity, base)
	steps := []struct {
		name  string
		patch *session.Patch
	}{
		{"a touch", nil},
		{"a set", &session.Patch{Set: map[string]string{"cart": "4", "notice": "a key, not the flash value"}}},
		{"a delete", &session.Patch{Delete: []string{"cart"}}},
	}
	for i, step := range steps {
		now := base.Add(time.Duration(i+1) * time.Minute)
		res, err := s.Update(t.Context(), in(shop, h, "alice", now, step.patch))
		if err != nil || res.Record == nil {
			t.Fatalf("%s: %+v, %v", step.name, res, err)
		}
		wantMeta(t, step.name+": the record Update returned", res.Record, want)
		wantMeta(t, step.name+": Load", load(t, s, h, now), want)
	}
	got := load(t, s, h, base.Add(5*time.Minute))
	if !maps.Equal(got.Values, map[string]string{"user": "alice", "notice": "a key, not the flash value"}) {
		t.Fatalf("values %v after the writes", got.Values)
	}
}

// testMetadataRotation: a rotation carries the metadata to the new hash;
// the forward record left behind has none.
func testMetadataRotation(t *testing.T, s store.Store, put Put) {
	old, renewed := hashOf("old"), hashOf("renewed")
	want := remembered(map[string]string{"user": "alice"})
	put(t, s, old, want, identity, base)
	res := rotate(t, s, shop, old, renewed, "alice", base.Add(time.Minute), nil)
	wantMeta(t, "the rotated record", res.Record, want)
	wantMeta(t, "Load of the rotated record", load(t, s, renewed, base.Add(time.Minute)), want)
	fwd := wantForward(t, s, old, renewed, base.Add(time.Minute))
	if fwd.Remembered || fwd.UserAgent != "" || fwd.ClientNet != "" || len(fwd.Flash) != 0 {
		t.Fatalf("the forward record holds metadata: %v, %q, %q, %v", fwd.Remembered, fwd.UserAgent, fwd.ClientNet, fwd.Flash)
	}
	// A write through the forward record reaches the successor, and keeps
	// its metadata.
	u := in(shop, old, "alice", base.Add(2*time.Minute), &session.Patch{Set: map[string]string{"cart": "1"}})
	if res, err := s.Update(t.Context(), u); err != nil || !res.Followed {
		t.Fatalf("a write through the forward record: %+v, %v", res, err)
	}
	wantMeta(t, "Load after a write through the forward record", load(t, s, renewed, base.Add(2*time.Minute)), want)
	wantCount(t, s, base.Add(2*time.Minute), 1)
}

// testMetadataListed: List and ListByIdentity return the metadata.
func testMetadataListed(t *testing.T, s store.Store, put Put) {
	want := remembered(map[string]string{"user": "alice"})
	for i := range 3 {
		put(t, s, hashOf(fmt.Sprint("remembered", i)), want, identity, base)
	}
	entries := listAll(t, s, 2, base, 3)
	if len(entries) != 3 {
		t.Fatalf("List: %d sessions, want 3", len(entries))
	}
	for _, e := range entries {
		wantMeta(t, "List", e.Record, want)
	}
	for _, e := range listByIdentity(t, s, shop, "user", "alice", base) {
		wantMeta(t, "ListByIdentity", e.Record, want)
	}
	wantListed(t, s, shop, "user", "alice", base, hashOf("remembered0"), hashOf("remembered1"), hashOf("remembered2"))
}

// testMetadataReturnsCopies: changing the metadata of a record a store
// returned changes nothing stored.
func testMetadataReturnsCopies(t *testing.T, s store.Store, put Put) {
	h := hashOf("remembered")
	want := remembered(map[string]string{"user": "alice"})
	put(t, s, h, want, identity, base)
	scribble := func(r *session.Record) {
		r.Remembered = false
		r.UserAgent = "curl"
		r.Flash["notice"] = "changed"
		r.Flash["new"] = "x"
	}
	scribble(load(t, s, h, base))
	wantMeta(t, "Load after changing a loaded record", load(t, s, h, base), want)
	res, err := s.Update(t.Context(), in(shop, h, "alice", base.Add(time.Minute), nil))
	if err != nil || res.Record == nil {
		t.Fatalf("touch: %+v, %v", res, err)
	}
	scribble(res.Record)
	wantMeta(t, "Load after changing the record a touch returned", load(t, s, h, base.Add(time.Minute)), want)
	entries := listByIdentity(t, s, shop, "user", "alice", base.Add(time.Minute))
	scribble(entries[0].Record)
	wantMeta(t, "Load after changing a listed record", load(t, s, h, base.Add(time.Minute)), want)
}

// testMetadataNotInherited: a session that replaces one with metadata
// (keys set in the response of a logout) starts without any.
func testMetadataNotInherited(t *testing.T, s store.Store, put Put) {
	h, fresh := hashOf("remembered"), hashOf("fresh")
	put(t, s, h, remembered(map[string]string{"user": "alice"}), identity, base)
	u := in(shop, h, "alice", base.Add(time.Minute), &session.Patch{Destroy: true, Set: map[string]string{"notice": "bye"}})
	u.NewHash = ptr(fresh)
	res, err := s.Update(t.Context(), u)
	if err != nil || res.Hash != fresh {
		t.Fatalf("logout with a new session: %+v, %v", res, err)
	}
	wantGone(t, s, h, base.Add(time.Minute))
	got := load(t, s, fresh, base.Add(time.Minute))
	wantMeta(t, "the new session", got, &session.Record{})
}
