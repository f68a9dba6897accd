package storetest

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// importing is a session as an export from another store carries it: of
// realm shop, with every kind of metadata, written 10 minutes before base
// and last seen 5 minutes before it, so that its deadlines are not the
// ones a write at base would give.
func importing(name, user string) store.Entry {
	rec := remembered(map[string]string{"user": user, "cart": "apple"})
	rec.Created = base.Add(-10 * time.Minute)
	rec.AbsoluteDeadline = rec.Created.Add(timeouts.Absolute)
	timeouts.Touch(rec, base.Add(-5*time.Minute))
	return store.Entry{Hash: hashOf(name), Record: rec, Identity: identity}
}

// importAll imports entries at now and returns their statuses.
func importAll(t *testing.T, s store.Store, now time.Time, overwrite bool, entries ...store.Entry) []store.ImportStatus {
	t.Helper()
	statuses, err := s.Import(t.Context(), store.Import{Entries: entries, Now: now, Overwrite: overwrite, Limits: limits})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if len(statuses) != len(entries) {
		t.Fatalf("Import returned %d statuses for %d entries", len(statuses), len(entries))
	}
	return statuses
}

// wantStored checks that the session under e.Hash is e's record exactly.
func wantStored(t *testing.T, s store.Store, what string, e store.Entry, now time.Time) {
	t.Helper()
	got := load(t, s, e.Hash, now)
	if !store.SameRecord(got, e.Record) {
		t.Fatalf("%s: loaded %+v, want %+v", what, got, e.Record)
	}
}

func testImport(t *testing.T, s store.Store) {
	e := importing("import", "alice")
	if got := importAll(t, s, base, false, e); got[0] != store.Imported {
		t.Fatalf("Import = %v, want imported", got)
	}
	wantStored(t, s, "after Import", e, base)
	// The identity index is rebuilt: the user's list of devices and a
	// revocation find the session.
	wantListed(t, s, shop, identity, "alice", base, e.Hash)
	entries, _, err := s.List(t.Context(), "", 10, base)
	if err != nil || len(entries) != 1 || entries[0].Identity != identity {
		t.Fatalf("List = %+v, %v; want the session, indexed under %q", entries, err, identity)
	}
	// The cookie keeps working: the session takes a write at once, and
	// keeps its creation and absolute deadline through it.
	res, err := s.Update(t.Context(), in(shop, e.Hash, "alice", base, &session.Patch{Set: map[string]string{"cart": "pear"}}))
	if err != nil || res.Record == nil || res.Record.Values["cart"] != "pear" {
		t.Fatalf("Update of the imported session = %+v, %v", res, err)
	}
	if !res.Record.Created.Equal(e.Record.Created) || !res.Record.AbsoluteDeadline.Equal(e.Record.AbsoluteDeadline) {
		t.Fatalf("Update moved the imported times: created %v, absolute %v", res.Record.Created, res.Record.AbsoluteDeadline)
	}
	if n, err := s.DeleteByIdentity(t.Context(), shop, identity, "alice"); err != nil || n != 1 {
		t.Fatalf("DeleteByIdentity = %d, %v; want 1", n, err)
	}
	wantGone(t, s, e.Hash, base)
}

func testImportAgain(t *testing.T, s store.Store) {
	e := importing("again", "alice")
	importAll(t, s, base, false, e)
	if got := importAll(t, s, base, false, e); got[0] != store.Unchanged {
		t.Fatalf("a second Import = %v, want unchanged", got)
	}
	wantStored(t, s, "after a second Import", e, base)
}

func testImportKeepsLive(t *testing.T, s store.Store) {
	e := importing("live", "alice")
	live := createIn(t, s, shop, e.Hash, base, map[string]string{"user": "bob"})
	if got := importAll(t, s, base, false, e); got[0] != store.Kept {
		t.Fatalf("Import over a live session = %v, want kept", got)
	}
	if got := load(t, s, e.Hash, base); !store.SameRecord(got, live) {
		t.Fatalf("the live session became %+v", got)
	}
	wantListed(t, s, shop, identity, "alice", base)

	// Overwrite replaces it, index and all: bob's revocation no longer
	// reaches it, alice's does.
	if got := importAll(t, s, base, true, e); got[0] != store.Imported {
		t.Fatalf("Import with Overwrite = %v, want imported", got)
	}
	wantStored(t, s, "after Overwrite", e, base)
	if n, err := s.DeleteByIdentity(t.Context(), shop, identity, "bob"); err != nil || n != 0 {
		t.Fatalf("DeleteByIdentity(bob) = %d, %v; want 0", n, err)
	}
	wantListed(t, s, shop, identity, "alice", base, e.Hash)
}

func testImportKeepsForward(t *testing.T, s store.Store) {
	e := importing("forwarded", "alice")
	createIn(t, s, shop, e.Hash, base, map[string]string{"user": "alice"})
	rotate(t, s, shop, e.Hash, hashOf("successor"), "alice", base, nil)
	// Overwrite replaces live sessions, not a forward record: the ID was
	// retired by the renewal (a login, a privilege change), and a session
	// stored under it again would open for whoever still holds the old
	// cookie, beside the successor the user holds.
	for _, overwrite := range []bool{false, true} {
		if got := importAll(t, s, base, overwrite, e); got[0] != store.Kept {
			t.Fatalf("Import over a forward record (overwrite %v) = %v, want kept", overwrite, got)
		}
		wantForward(t, s, e.Hash, hashOf("successor"), base)
	}
}

func testImportOverExpired(t *testing.T, s store.Store) {
	e := importing("expired", "alice")
	// A session stored long before that has expired since.
	createIn(t, s, shop, e.Hash, base.Add(-13*time.Hour), map[string]string{"user": "bob"})
	if got := importAll(t, s, base, false, e); got[0] != store.Imported {
		t.Fatalf("Import over an expired session = %v, want imported", got)
	}
	wantStored(t, s, "after Import over an expired session", e, base)
}

func testImportRefused(t *testing.T, s store.Store) {
	tests := []struct {
		name  string
		spoil func(e *store.Entry)
		want  string
	}{
		{"no record", func(e *store.Entry) { e.Record = nil }, "no record"},
		{"forward record", func(e *store.Entry) {
			next := hashOf("next")
			e.Record.Successor, e.Record.Values, e.Identity = &next, map[string]string{}, ""
		}, "forward record"},
		{"expired", func(e *store.Entry) { e.Record.IdleDeadline = base.Add(-time.Second) }, "expired"},
		{"no creation time", func(e *store.Entry) { e.Record.Created = time.Time{} }, "times"},
		{"seen before created", func(e *store.Entry) { e.Record.LastSeen = e.Record.Created.Add(-time.Second) }, "before it was created"},
		{"idle after absolute", func(e *store.Entry) { e.Record.IdleDeadline = e.Record.AbsoluteDeadline.Add(time.Second) }, "idle deadline"},
		{"invalid key", func(e *store.Entry) { e.Record.Values["bad key"] = "x" }, "not a session key"},
		{"uppercase key", func(e *store.Entry) { e.Record.Values["Cart2"] = "x" }, "lowercase"},
		{"reserved key", func(e *store.Entry) { e.Record.Values["meta-created"] = "x" }, "reserved"},
		{"value with a newline", func(e *store.Entry) { e.Record.Values["cart"] = "a\r\nX-Injected: 1" }, "header value"},
		{"flash value with a NUL", func(e *store.Entry) { e.Record.Flash["notice"] = "a\x00" }, "header value"},
		{"value too large", func(e *store.Entry) { e.Record.Values["cart"] = strings.Repeat("a", limits.ValueSize+1) }, "over the limit"},
		{"too many keys", func(e *store.Entry) {
			for i := range limits.Keys {
				e.Record.Values["k"+strings.Repeat("x", i)] = "v"
			}
		}, "over the limit"},
		{"user agent too long", func(e *store.Entry) { e.Record.UserAgent = strings.Repeat("a", session.MaxUserAgent+1) }, "user agent"},
		{"client network not a network", func(e *store.Entry) { e.Record.ClientNet = "198.51.100.7" }, "client network"},
		{"client network not masked", func(e *store.Entry) { e.Record.ClientNet = "198.51.100.7/24" }, "client network"},
		{"identity not held", func(e *store.Entry) { e.Identity = "email" }, "does not hold"},
		{"identity not a key", func(e *store.Entry) { e.Identity = "Bad Key" }, "identity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			good := importing("good-"+tc.name, "alice")
			bad := importing("bad-"+tc.name, "bob")
			bad.Record = bad.Record.Clone()
			tc.spoil(&bad)
			statuses, err := s.Import(t.Context(), store.Import{Entries: []store.Entry{good, bad}, Now: base, Limits: limits})
			var refused *store.ImportError
			if !errors.As(err, &refused) || refused.Index != 1 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Import = %v, %v; want an ImportError for entry 2 saying %q", statuses, err, tc.want)
			}
			// Nothing of the batch is written, not even the good entry.
			wantGone(t, s, good.Hash, base)
			wantGone(t, s, bad.Hash, base)
		})
	}
}

// testImportRoundTrip lists sessions written by updates, every kind of
// metadata included, removes them, and imports the listing back: each
// comes back exactly as it was, byte for byte, a value and a flash value
// of obs-text (Latin-1, not UTF-8) included. caddy session migrate moves
// sessions so, List to Import, with no file in between.
func testImportRoundTrip(t *testing.T, s store.Store) {
	createIn(t, s, shop, hashOf("plain"), base, map[string]string{"user": "alice", "cart": "apple"})
	flash(t, s, hashOf("plain"), base.Add(2*time.Minute), map[string]string{"notice": "Saved \xe0 9h."})
	createIn(t, s, shop, hashOf("anonymous"), base, map[string]string{"cart": "caf\xe9"})
	now := base.Add(3 * time.Minute)
	entries, _, err := s.List(t.Context(), "", 10, now)
	if err != nil || len(entries) != 2 {
		t.Fatalf("List = %d entries, %v; want 2", len(entries), err)
	}
	before := map[session.Hash]store.Entry{}
	for _, e := range entries {
		before[e.Hash] = store.Entry{Hash: e.Hash, Record: load(t, s, e.Hash, now), Identity: e.Identity}
		if err := s.Delete(t.Context(), e.Hash); err != nil {
			t.Fatal(err)
		}
	}
	if before[hashOf("plain")].Identity != identity || before[hashOf("anonymous")].Identity != "" {
		t.Fatalf("List gave identities %q and %q, want %q and none",
			before[hashOf("plain")].Identity, before[hashOf("anonymous")].Identity, identity)
	}
	for _, st := range importAll(t, s, now, false, entries...) {
		if st != store.Imported {
			t.Fatalf("Import of the listing = %v", st)
		}
	}
	for h, e := range before {
		wantStored(t, s, "session "+h.Short()+" imported back", e, now)
	}
	if got := load(t, s, hashOf("plain"), now); !maps.Equal(got.Flash, map[string]string{"notice": "Saved \xe0 9h."}) {
		t.Fatalf("the flash value came back as %v", got.Flash)
	}
	wantListed(t, s, shop, identity, "alice", now, hashOf("plain"))
}

// testListBadCursor gives List a cursor it never returned: the caller's
// mistake, told apart from a failure of the store.
func testListBadCursor(t *testing.T, s store.Store) {
	for _, cursor := range []string{"page2", hashOf("x").String() + "x", "zzz-" + hashOf("x").String()} {
		if _, _, err := s.List(t.Context(), cursor, 10, base); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("List(%q) = %v, want ErrBadCursor", cursor, err)
		}
	}
}
