package store

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

const day = 24 * time.Hour

// rememberTimeouts are the timeouts of the remember-me tests: 30 minutes
// and 12 hours, 14 and 30 days for a remembered session.
var rememberTimeouts = session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute,
	RememberIdle: 14 * day, RememberAbsolute: 30 * day}

// kept is live, remembered, last seen at seen.
func kept(seen time.Time, kv ...string) *session.Record {
	rec := live(realm, kv...)
	rememberTimeouts.SetRemembered(rec, true)
	rememberTimeouts.Touch(rec, seen)
	return rec
}

func asking(r session.Remember, p *session.Patch) *session.Patch {
	if p == nil {
		p = &session.Patch{}
	}
	p.Remember = r
	return p
}

// rememberUpd is upd with the remember timeouts at the given time, moving
// the session to hashC unless to is nil.
func rememberUpd(at time.Time, to *session.Hash, p *session.Patch) Update {
	return with(upd("alice", p), func(u *Update) { u.Now, u.Timeouts, u.NewHash = at, rememberTimeouts, to })
}

// TestDecideRemember: X-Session-Remember takes effect on a session that
// starts or moves to a new ID, with the deadlines of the timeouts that then
// apply; a session it returns to timeouts it has outlived ends.
func TestDecideRemember(t *testing.T) {
	tests := []struct {
		name   string
		u      Update
		stored *session.Record
		hop    int

		err        error
		expired    bool // ended, Result.Expired
		remembered bool
		writeAt    session.Hash
		inPlace    bool
		idle, abs  time.Time
	}{
		{name: "created remembered",
			u:          Update{NewHash: ptr(hashC), Patch: asking(session.RememberOn, set("user=alice")), Identity: "user", Realm: realm, Now: now, Timeouts: rememberTimeouts, Limits: limits},
			remembered: true, writeAt: hashC, idle: now.Add(14 * day), abs: now.Add(30 * day)},
		{name: "created, remember false",
			u:       Update{NewHash: ptr(hashC), Patch: asking(session.RememberOff, set("user=alice")), Identity: "user", Realm: realm, Now: now, Timeouts: rememberTimeouts, Limits: limits},
			writeAt: hashC, idle: now.Add(30 * time.Minute), abs: now.Add(12 * time.Hour)},
		{name: "logout and login remembered",
			u:      with(rememberUpd(now, ptr(hashC), asking(session.RememberOn, set("user=bob"))), func(u *Update) { u.Patch.Destroy = true }),
			stored: live(realm, "user=alice"), remembered: true, writeAt: hashC, idle: now.Add(14 * day), abs: now.Add(30 * day)},
		{name: "logout of a remembered session, login not remembered",
			u:      with(rememberUpd(now, ptr(hashC), set("user=bob")), func(u *Update) { u.Patch.Destroy = true }),
			stored: kept(t0, "user=alice"), writeAt: hashC, idle: now.Add(30 * time.Minute), abs: now.Add(12 * time.Hour)},
		{name: "remembered: from the creation, touched now",
			u:      rememberUpd(now, ptr(hashC), asking(session.RememberOn, nil)),
			stored: live(realm, "user=alice"), remembered: true, writeAt: hashC, idle: now.Add(14 * day), abs: t0.Add(30 * day)},
		{name: "remembered without a touch: idle from the last use",
			u:      untouched(rememberUpd(now, ptr(hashC), asking(session.RememberOn, nil))),
			stored: live(realm, "user=alice"), remembered: true, writeAt: hashC, idle: t0.Add(14 * day), abs: t0.Add(30 * day)},
		{name: "remembered through a forward record",
			u:      rememberUpd(now, ptr(hashC), asking(session.RememberOn, set("cart=1"))),
			stored: live(realm, "user=alice"), hop: 1, remembered: true, writeAt: hashC, idle: now.Add(14 * day), abs: t0.Add(30 * day)},
		{name: "remember true in place changes nothing",
			u:      rememberUpd(now, nil, asking(session.RememberOn, set("cart=1"))),
			stored: live(realm, "user=alice"), writeAt: hashA, inPlace: true, idle: now.Add(30 * time.Minute), abs: t0.Add(12 * time.Hour)},
		{name: "remember false in place changes nothing",
			u:      rememberUpd(t0.Add(20*time.Hour), nil, asking(session.RememberOff, set("cart=1"))),
			stored: kept(t0.Add(19*time.Hour), "user=alice"), remembered: true, writeAt: hashA, inPlace: true,
			idle: t0.Add(20*time.Hour + 14*day), abs: t0.Add(30 * day)},
		{name: "remember true on a remembered session: a plain rotation",
			u:      rememberUpd(t0.Add(2*day), ptr(hashC), asking(session.RememberOn, nil)),
			stored: kept(t0.Add(day), "user=alice"), remembered: true, writeAt: hashC, idle: t0.Add(16 * day), abs: t0.Add(30 * day)},
		{name: "a login keeps a remembered session remembered",
			u:      rememberUpd(t0.Add(2*day), ptr(hashC), set("user=bob")),
			stored: kept(t0.Add(day), "user=alice"), remembered: true, writeAt: hashC, idle: t0.Add(16 * day), abs: t0.Add(30 * day)},
		{name: "a touch of a remembered session",
			u:      rememberUpd(t0.Add(2*day), nil, nil),
			stored: kept(t0.Add(day), "user=alice"), remembered: true, writeAt: hashA, inPlace: true, idle: t0.Add(16 * day), abs: t0.Add(30 * day)},
		{name: "forgotten within the normal timeouts",
			u:      rememberUpd(t0.Add(time.Hour), ptr(hashC), asking(session.RememberOff, nil)),
			stored: kept(t0.Add(50*time.Minute), "user=alice"), writeAt: hashC, idle: t0.Add(90 * time.Minute), abs: t0.Add(12 * time.Hour)},
		{name: "forgotten past the normal absolute timeout",
			u:      rememberUpd(t0.Add(20*time.Hour), ptr(hashC), asking(session.RememberOff, set("cart=1"))),
			stored: kept(t0.Add(19*time.Hour), "user=alice"), expired: true},
		{name: "forgotten without a touch, past the normal idle timeout",
			u:      untouched(rememberUpd(t0.Add(2*time.Hour), ptr(hashC), asking(session.RememberOff, nil))),
			stored: kept(t0.Add(time.Hour), "user=alice"), expired: true},
		// Unused for longer than the normal idle timeout when the request
		// came: this request's use does not revive it.
		{name: "forgotten past the normal idle timeout",
			u:      rememberUpd(t0.Add(2*time.Hour), ptr(hashC), asking(session.RememberOff, nil)),
			stored: kept(t0.Add(time.Hour), "user=alice"), expired: true},
		{name: "forgotten through a forward record, past the normal timeouts",
			u:      rememberUpd(t0.Add(20*time.Hour), ptr(hashC), asking(session.RememberOff, nil)),
			stored: kept(t0.Add(19*time.Hour), "user=alice"), hop: 1, expired: true},
		{name: "a remembered session past the remember idle timeout",
			u:      rememberUpd(t0.Add(16*day), ptr(hashC), asking(session.RememberOff, nil)),
			stored: kept(t0.Add(day), "user=alice"), err: ErrNotFound},
		{name: "remember alone on a forward record, in place: a touch, which ends there",
			u:      rememberUpd(now, nil, asking(session.RememberOn, nil)),
			stored: fwd(realm, hashB, now.Add(time.Minute)), err: ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			at := hashA
			if tc.hop > 0 {
				at = hashB
			}
			o := Decide(tc.u, at, tc.stored, tc.hop)
			switch {
			case tc.err != nil:
				if !errors.Is(o.Err, tc.err) || o.Write != nil || o.Result.Expired {
					t.Fatalf("%+v, want %v and nothing written", o, tc.err)
				}
				return
			case o.Err != nil:
				t.Fatalf("Err = %v", o.Err)
			case tc.expired:
				if !o.Remove || o.Write != nil || o.Forward != nil || !reflect.DeepEqual(o.Result, Result{Acted: at, Expired: true, Followed: tc.hop > 0}) {
					t.Fatalf("%+v, want the session removed, nothing written and Result.Expired", o)
				}
				return
			}
			r := o.Write
			switch {
			case r == nil:
				t.Fatalf("nothing written: %+v", o)
			case o.Result.Expired:
				t.Errorf("Result.Expired with a record written")
			case r.Remembered != tc.remembered:
				t.Errorf("Remembered = %v, want %v", r.Remembered, tc.remembered)
			case o.WriteAt != tc.writeAt || o.InPlace != tc.inPlace:
				t.Errorf("written at %s, in place %v; want %s, %v", o.WriteAt.Short(), o.InPlace, tc.writeAt.Short(), tc.inPlace)
			case !r.IdleDeadline.Equal(tc.idle) || !r.AbsoluteDeadline.Equal(tc.abs):
				t.Errorf("deadlines +%v, +%v; want +%v, +%v", r.IdleDeadline.Sub(t0), r.AbsoluteDeadline.Sub(t0), tc.idle.Sub(t0), tc.abs.Sub(t0))
			case tc.inPlace && tc.stored != nil && (r.Remembered != tc.stored.Remembered || !r.AbsoluteDeadline.Equal(tc.stored.AbsoluteDeadline)):
				t.Errorf("an update in place changed the persistence or the absolute deadline")
			case !tc.inPlace && tc.stored != nil && !tc.u.Patch.Destroy && (o.Forward == nil || !o.Remove):
				t.Errorf("a rotation left no forward record: %+v", o)
			case o.Forward != nil && (o.Forward.Remembered || o.Forward.ExpiresAt().After(r.ExpiresAt())):
				t.Errorf("forward record %+v: remembered, or outliving its session", o.Forward)
			}
		})
	}
}
