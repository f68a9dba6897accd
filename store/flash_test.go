package store

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// flashed is rec holding flash values ("k=v" pairs): an empty map for
// none.
func flashed(rec *session.Record, kv ...string) *session.Record {
	rec.Flash = map[string]string{}
	for _, p := range kv {
		k, v, _ := strings.Cut(p, "=")
		rec.Flash[k] = v
	}
	return rec
}

// take is the update of a request that takes the flash values of the
// session under hashA, as the handler makes it: no touch.
func take(seen string) Update {
	u := untouched(upd(seen, nil))
	u.TakeFlash = true
	return u
}

// restore is the update that puts back flash values taken.
func restore(seen string, kv map[string]string) Update {
	u := untouched(upd(seen, nil))
	u.RestoreFlash = kv
	return u
}

// TestDecideFlash: Decide takes, restores and sets flash values on the
// record it is given, in place, changing nothing else; a take or a
// restore that finds nothing to do writes nothing.
func TestDecideFlash(t *testing.T) {
	notice := map[string]string{"notice": "Saved"}
	tests := []struct {
		name   string
		u      Update
		stored *session.Record
		hop    int

		err       error
		rule      string
		write     bool              // an in-place write at hashA
		next      bool              // a forward record to follow to hashB
		flash     map[string]string // the written record's flash values
		taken     map[string]string // Result.Flash
		touched   bool
		followed  bool
		remove    bool
		standing  bool // no write, the session returned as it stands
		newAt     *session.Hash
		newValues map[string]string
	}{
		{name: "take", u: take("alice"), stored: flashed(live(realm, "user=alice"), "notice=Saved", "a_b=1"),
			write: true, taken: map[string]string{"notice": "Saved", "a_b": "1"}},
		{name: "take, touching", u: with(take("alice"), func(u *Update) { u.NoTouch = false }),
			stored: flashed(live(realm, "user=alice"), "notice=Saved"), write: true, taken: notice, touched: true},
		{name: "take finds none: nothing written", u: take("alice"), stored: live(realm, "user=alice"), standing: true},
		{name: "take finds an empty map: nothing written", u: take("alice"), stored: flashed(live(realm, "user=alice")), standing: true},
		{name: "take of a missing session", u: take("alice"), err: ErrNotFound},
		{name: "take of an expired session", u: with(take("alice"), func(u *Update) { u.Now = t0.Add(30 * time.Minute) }),
			stored: flashed(live(realm, "user=alice"), "notice=Saved"), err: ErrNotFound, remove: true},
		{name: "take of another realm's session", u: take("alice"), stored: flashed(live("admin", "user=alice"), "notice=Saved"), err: ErrNotFound},
		{name: "take through a forward record: followed", u: take("alice"), stored: fwd(realm, hashB, now.Add(time.Minute)), next: true},
		{name: "take at the successor", u: take("alice"), stored: flashed(live(realm, "user=alice"), "notice=Saved"), hop: 1,
			write: true, taken: notice, followed: true},
		{name: "take at a successor of another user", u: take("alice"), stored: flashed(live(realm, "user=bob"), "notice=Saved"), hop: 1,
			err: ErrStale},

		{name: "restore", u: restore("alice", notice), stored: live(realm, "user=alice"), write: true, flash: notice},
		{name: "restore beside a newer value of another key", u: restore("alice", notice),
			stored: flashed(live(realm, "user=alice"), "other=x"), write: true, flash: map[string]string{"notice": "Saved", "other": "x"}},
		{name: "restore under a newer value: nothing written", u: restore("alice", notice),
			stored: flashed(live(realm, "user=alice"), "notice=newer"), standing: true, flash: map[string]string{"notice": "newer"}},
		{name: "restore under a newer value in the other spelling", u: restore("alice", map[string]string{"a_b": "1"}),
			stored: flashed(live(realm, "user=alice"), "a-b=2"), standing: true, flash: map[string]string{"a-b": "2"}},
		{name: "restore past the limits: they were admitted once", u: restore("alice", map[string]string{"x": "1", "y": "2"}),
			stored: flashed(live(realm, "user=alice", "a=1"), "b=2"), write: true, flash: map[string]string{"b": "2", "x": "1", "y": "2"}},
		{name: "restore through a forward record: followed", u: restore("alice", notice), stored: fwd(realm, hashB, now.Add(time.Minute)), next: true},
		{name: "restore into an ended session", u: restore("alice", notice), err: ErrNotFound},
		// A login (or a logout that keeps the rest) rotated the session
		// after the take: the rotation would have carried the values into
		// the successor had they not been taken, so they go back there.
		{name: "restore at a successor of another user", u: restore("", notice), stored: live(realm, "user=alice"), hop: 1,
			write: true, flash: notice, followed: true},
		{name: "restore and a set at a successor of another user: stale", u: with(restore("", notice), func(u *Update) { u.Patch = set("cart=3") }),
			stored: live(realm, "user=alice"), hop: 1, err: ErrStale},

		{name: "set, in place, without taking", u: upd("alice", &session.Patch{Flash: map[string]string{"notice": "Saved"}}),
			stored: flashed(live(realm, "user=alice"), "other=x"), write: true, touched: true,
			flash: map[string]string{"notice": "Saved", "other": "x"}},
		{name: "set over the limits with the keys", u: upd("alice", &session.Patch{Flash: map[string]string{"a": "1", "b": "2", "c": "3"}}),
			stored: live(realm, "user=alice"), rule: "too_many_keys"},
		{name: "take, then set: the take takes the stored ones",
			u:      with(take("alice"), func(u *Update) { u.Patch = &session.Patch{Flash: map[string]string{"notice": "new"}} }),
			stored: flashed(live(realm, "user=alice"), "notice=Saved"), write: true, taken: notice,
			flash: map[string]string{"notice": "new"}},
		{name: "destroy and set: a new session with the flash value only",
			u:      with(upd("alice", &session.Patch{Destroy: true, Flash: map[string]string{"notice": "Logged out"}}), func(u *Update) { u.NewHash = ptr(hashC) }),
			stored: flashed(live(realm, "user=alice"), "old=x"), remove: true, newAt: ptr(hashC), newValues: map[string]string{},
			flash: map[string]string{"notice": "Logged out"}},
		{name: "renewal carries them", u: with(upd("alice", &session.Patch{Renew: true}), func(u *Update) { u.NewHash = ptr(hashC) }),
			stored: flashed(live(realm, "user=alice"), "notice=Saved"), remove: true, newAt: ptr(hashC),
			newValues: map[string]string{"user": "alice"}, flash: notice, touched: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before *session.Record
			if tc.stored != nil {
				before = tc.stored.Clone()
			}
			o := Decide(tc.u, hashA, tc.stored, tc.hop)
			if tc.stored != nil && !sameRecord(tc.stored, before) || tc.stored != nil && !maps.Equal(tc.stored.Flash, before.Flash) {
				t.Fatalf("Decide changed the stored record: %+v, was %+v", tc.stored, before)
			}
			var re *session.RuleError
			switch {
			case tc.rule != "":
				if !errors.As(o.Err, &re) || re.Reason != tc.rule || o.Writes() {
					t.Fatalf("outcome %+v, want a %q RuleError and no write", o, tc.rule)
				}
				return
			case !errors.Is(o.Err, tc.err):
				t.Fatalf("Err = %v, want %v", o.Err, tc.err)
			case o.Remove != tc.remove:
				t.Fatalf("Remove = %v, want %v", o.Remove, tc.remove)
			case tc.next != (o.Next != nil):
				t.Fatalf("Next = %v, want one: %v", o.Next, tc.next)
			case !maps.Equal(o.Result.Flash, tc.taken):
				t.Fatalf("Result.Flash = %v, want %v", o.Result.Flash, tc.taken)
			case o.Result.Followed != tc.followed:
				t.Fatalf("Followed = %v, want %v", o.Result.Followed, tc.followed)
			}
			switch {
			case tc.newAt != nil:
				if o.Write == nil || o.WriteAt != *tc.newAt || !maps.Equal(o.Write.Values, tc.newValues) || !maps.Equal(o.Write.Flash, tc.flash) {
					t.Fatalf("Write = %+v at %s, want %v and flash %v at %s", o.Write, o.WriteAt.Short(), tc.newValues, tc.flash, tc.newAt.Short())
				}
				if o.Forward != nil && len(o.Forward.Flash) != 0 {
					t.Fatalf("the forward record holds flash values: %v", o.Forward.Flash)
				}
			case tc.write:
				if o.Write == nil || !o.InPlace || o.WriteAt != hashA || len(o.Set) != 0 || len(o.Del) != 0 {
					t.Fatalf("outcome %+v, want a write in place that changes no key", o)
				}
				if !maps.Equal(o.Write.Values, tc.stored.Values) || !maps.Equal(o.Write.Flash, tc.flash) {
					t.Fatalf("Write holds %v and flash %v, want %v and %v", o.Write.Values, o.Write.Flash, tc.stored.Values, tc.flash)
				}
				if tc.flash == nil && o.Write.Flash != nil {
					t.Fatalf("Write.Flash = %#v, want nil", o.Write.Flash)
				}
				if moved := !o.Write.LastSeen.Equal(tc.stored.LastSeen); moved != tc.touched {
					t.Fatalf("last seen at %s, was %s; want touched: %v", o.Write.LastSeen.Sub(t0), tc.stored.LastSeen.Sub(t0), tc.touched)
				}
				if o.Result.Record != o.Write {
					t.Fatalf("Result.Record is not the written record")
				}
			case tc.standing:
				if o.Writes() || o.Result.Record == nil || o.Result.Hash != hashA || !maps.Equal(o.Result.Record.Flash, tc.flash) {
					t.Fatalf("outcome %+v, want no write and the session as it stands", o)
				}
			default:
				if o.Write != nil {
					t.Fatalf("Write = %+v, want none", o.Write)
				}
			}
		})
	}
}

// TestDecideFlashResultIsItsOwn: the values a take returns are not the
// stored record's map, which the store may keep (a cache).
func TestDecideFlashResultIsItsOwn(t *testing.T) {
	stored := flashed(live(realm, "user=alice"), "notice=Saved")
	o := Decide(take("alice"), hashA, stored, 0)
	o.Result.Flash["notice"] = "changed"
	if stored.Flash["notice"] != "Saved" {
		t.Fatalf("changing what a take returned changed the stored record: %v", stored.Flash)
	}
}

// TestDecideFlashExactlyOnce runs takes and a restore in sequence through
// memStore, as a store runs them one transaction after another: the
// second take finds nothing, a restore puts back what a failed request
// took, except what was set since, and the next take gets it.
func TestDecideFlashExactlyOnce(t *testing.T) {
	m := memStore{hashA: flashed(live(realm, "user=alice"), "notice=Saved", "n=1")}
	first, err := m.update(take("alice"))
	if err != nil || !maps.Equal(first.Flash, map[string]string{"notice": "Saved", "n": "1"}) {
		t.Fatalf("first take: %+v, %v", first, err)
	}
	second, err := m.update(take("alice"))
	if err != nil || second.Flash != nil || second.Record == nil {
		t.Fatalf("second take: %+v, %v; want nothing taken and the session", second, err)
	}
	// The first request's response failed; meanwhile another set n anew.
	if _, err := m.update(upd("alice", &session.Patch{Flash: map[string]string{"n": "2"}})); err != nil {
		t.Fatal(err)
	}
	if _, err := m.update(restore("alice", first.Flash)); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"notice": "Saved", "n": "2"}; !maps.Equal(m[hashA].Flash, want) {
		t.Fatalf("after the restore: %v, want %v", m[hashA].Flash, want)
	}
	third, err := m.update(take("alice"))
	if err != nil || !maps.Equal(third.Flash, map[string]string{"notice": "Saved", "n": "2"}) || m[hashA].Flash != nil {
		t.Fatalf("third take: %+v, %v, leaving %v", third, err, m[hashA].Flash)
	}
}

// TestDecideFlashThroughRotation: a take by a request that loaded the
// session before another renewed it takes the values from the successor,
// where the rotation carried them, and only once.
func TestDecideFlashThroughRotation(t *testing.T) {
	m := chain(t, 1) // a → b
	m[hashB].Flash = map[string]string{"notice": "Saved"}
	res, err := m.update(take("alice"))
	if err != nil || !res.Followed || res.Hash != hashB || !maps.Equal(res.Flash, map[string]string{"notice": "Saved"}) {
		t.Fatalf("take through a → b: %+v, %v", res, err)
	}
	if m[hashB].Flash != nil {
		t.Fatalf("the successor still holds %v", m[hashB].Flash)
	}
	if res, err := m.update(take("alice")); err != nil || res.Flash != nil {
		t.Fatalf("second take through a → b: %+v, %v", res, err)
	}
	if _, err := m.update(restore("alice", map[string]string{"notice": "Saved"})); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(m[hashB].Flash, map[string]string{"notice": "Saved"}) {
		t.Fatalf("restore through a → b left %v", m[hashB].Flash)
	}
}
