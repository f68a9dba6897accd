package session

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// rememberTimeouts are testTimeouts with remember timeouts: 14 days idle,
// 30 days absolute.
var rememberTimeouts = Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute,
	RememberIdle: 14 * 24 * time.Hour, RememberAbsolute: 30 * 24 * time.Hour}

// A remembered record is judged and touched by the remember timeouts, any
// other by the normal ones; without remember timeouts, a remembered record
// is judged as any other.
func TestTimeoutsOfRememberedRecords(t *testing.T) {
	const day = 24 * time.Hour
	plain := rememberTimeouts.NewRecord(t0)
	kept := plain.Clone()
	rememberTimeouts.SetRemembered(kept, true)
	tests := []struct {
		name string
		to   Timeouts
		rec  *Record
		at   time.Duration // after t0
		want bool
	}{
		{"plain, before its idle timeout", rememberTimeouts, plain, 30*time.Minute - time.Nanosecond, false},
		{"plain, at its idle timeout", rememberTimeouts, plain, 30 * time.Minute, true},
		{"remembered, past the normal idle timeout", rememberTimeouts, kept, time.Hour, false},
		{"remembered, before the remember idle timeout", rememberTimeouts, kept, 14*day - time.Nanosecond, false},
		{"remembered, at the remember idle timeout", rememberTimeouts, kept, 14 * day, true},
		// A config that shortened the remember timeouts ends it at once.
		{"remembered, remember idle shortened", Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour, RememberIdle: day, RememberAbsolute: 30 * day}, kept, day, true},
		{"remembered, judged without remember timeouts", testTimeouts, kept, 30 * time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.to.Expired(tt.rec, t0.Add(tt.at)); got != tt.want {
				t.Errorf("Expired at +%v = %v, want %v", tt.at, got, tt.want)
			}
		})
	}

	// Touched every 13 days, a remembered session lives to its absolute
	// deadline, 30 days after its creation, and no longer.
	rec := kept.Clone()
	for at := 13 * day; at < 30*day; at += 13 * day {
		if rememberTimeouts.Expired(rec, t0.Add(at)) {
			t.Fatalf("expired at +%v, touched 13 days before", at)
		}
		rememberTimeouts.Touch(rec, t0.Add(at))
		if want := t0.Add(min(at+14*day, 30*day)); !rec.IdleDeadline.Equal(want) {
			t.Fatalf("touched at +%v: idle deadline +%v, want +%v", at, rec.IdleDeadline.Sub(t0), want.Sub(t0))
		}
	}
	if !rememberTimeouts.Expired(rec, t0.Add(30*day)) {
		t.Error("a remembered session outlived its absolute timeout")
	}
}

// SetRemembered moves both deadlines to the timeouts that apply, from the
// record's creation and last use, and back.
func TestSetRemembered(t *testing.T) {
	const day = 24 * time.Hour
	rec := rememberTimeouts.NewRecord(t0)
	rememberTimeouts.Touch(rec, t0.Add(time.Hour))
	rememberTimeouts.SetRemembered(rec, true)
	if !rec.Remembered || !rec.AbsoluteDeadline.Equal(t0.Add(30*day)) || !rec.IdleDeadline.Equal(t0.Add(time.Hour+14*day)) {
		t.Fatalf("remembered: %v, idle +%v, absolute +%v; want true, +337h, +720h", rec.Remembered,
			rec.IdleDeadline.Sub(t0), rec.AbsoluteDeadline.Sub(t0))
	}
	if !rec.Created.Equal(t0) || !rec.LastSeen.Equal(t0.Add(time.Hour)) {
		t.Fatalf("SetRemembered moved Created or LastSeen: %v, %v", rec.Created, rec.LastSeen)
	}
	rememberTimeouts.SetRemembered(rec, false)
	if rec.Remembered || !rec.AbsoluteDeadline.Equal(t0.Add(12*time.Hour)) || !rec.IdleDeadline.Equal(t0.Add(90*time.Minute)) {
		t.Fatalf("forgotten: %v, idle +%v, absolute +%v; want false, +1h30m, +12h", rec.Remembered,
			rec.IdleDeadline.Sub(t0), rec.AbsoluteDeadline.Sub(t0))
	}
	// Back to the normal timeouts after they have run out: the deadlines
	// are in the past, never past the absolute one.
	old := rememberTimeouts.NewRecord(t0)
	rememberTimeouts.SetRemembered(old, true)
	rememberTimeouts.Touch(old, t0.Add(20*time.Hour))
	rememberTimeouts.SetRemembered(old, false)
	if !old.IdleDeadline.Equal(t0.Add(12*time.Hour)) || !rememberTimeouts.Expired(old, t0.Add(20*time.Hour)) {
		t.Fatalf("forgotten after 20h: idle +%v, expired %v; want +12h, true", old.IdleDeadline.Sub(t0), rememberTimeouts.Expired(old, t0.Add(20*time.Hour)))
	}
}

func TestRememberSwitches(t *testing.T) {
	plain, kept := &Record{}, &Record{Remembered: true}
	for _, tt := range []struct {
		r    Remember
		rec  *Record
		want bool
	}{
		{RememberAsIs, plain, false},
		{RememberAsIs, kept, false},
		{RememberOn, plain, true},
		{RememberOn, kept, false},
		{RememberOff, plain, false},
		{RememberOff, kept, true},
	} {
		if got := tt.r.Switches(tt.rec); got != tt.want {
			t.Errorf("Remember(%d).Switches(remembered: %v) = %v, want %v", tt.r, tt.rec.Remembered, got, tt.want)
		}
	}
}

// The cookie of a remembered session has a Max-Age to the session's
// absolute deadline, in whole seconds, and every attribute of the session
// cookie, Priority included.
func TestIssuePersistentHeader(t *testing.T) {
	id := NewID()
	ck := &Cookie{Name: "__Host-sid", Path: "/", Secure: SecureAlways, SameSite: http.SameSiteNoneMode, Partitioned: true, Priority: PriorityHigh}
	for _, tt := range []struct {
		maxAge time.Duration
		want   string
	}{
		{30 * 24 * time.Hour, "Max-Age=2592000"},
		{90*time.Second + 999*time.Millisecond, "Max-Age=90"},
		{time.Millisecond, "Max-Age=1"}, // never 0, which would delete it
		{-time.Second, "Max-Age=1"},
	} {
		s := ck.IssuePersistentHeader(id, false, tt.maxAge)
		want := "__Host-sid=" + id + "; Path=/; " + tt.want + "; HttpOnly; Secure; SameSite=None; Partitioned; Priority=High"
		if s != want {
			t.Errorf("IssuePersistentHeader(%v) = %q\nwant %q", tt.maxAge, s, want)
		}
		if strings.Contains(s, "Expires") {
			t.Errorf("%q has Expires", s)
		}
	}
}

// X-Session-Remember is a flag that takes true or false, in any case and
// either spelling of the name; X-Session-Meta-Remembered is the plugin's
// own: a client's is scrubbed in every spelling, and an app's is no
// command.
func TestRememberCommand(t *testing.T) {
	p := NewProtocol(DefaultHeaderPrefix, nil, DefaultLimits())
	for _, tt := range []struct {
		h      http.Header
		want   Remember
		reason string
	}{
		{h: http.Header{"X-Session-Remember": {"true"}, "X-Session-Set-User": {"alice"}}, want: RememberOn},
		{h: http.Header{"X_Session_Remember": {" False"}}, want: RememberOff},
		{h: http.Header{"X-Session-Remember": {"TRUE"}, "X-Session-Renew": {"true"}}, want: RememberOn},
		{h: http.Header{"X-Session-Remember": {"1"}}, reason: "invalid_value"},
		{h: http.Header{"X-Session-Remember": {"true", "false"}}, reason: "invalid_value"},
		{h: http.Header{"X-Session-Meta-Remembered": {"true"}}, reason: "unknown_command"},
	} {
		patch, err := p.TakeCommands(tt.h)
		switch {
		case tt.reason != "":
			if re, ok := err.(*RuleError); !ok || re.Reason != tt.reason {
				t.Errorf("%v: %+v, %v; want a %s refusal", tt.h, patch, err, tt.reason)
			}
		case err != nil || patch == nil || patch.Remember != tt.want:
			t.Errorf("%v: %+v, %v; want Remember %d", tt.h, patch, err, tt.want)
		}
		if len(tt.h) != 0 {
			t.Errorf("commands left in the response: %v", tt.h)
		}
	}

	h := http.Header{"X-Session-Meta-Remembered": {"true"}, "X_Session_Meta_Remembered": {"true"},
		"X.Session.Meta.Remembered": {"true"}, "X-Session-Meta_remembered": {"true"}, "Accept": {"*/*"}}
	p.Scrub(h)
	if len(h) != 1 {
		t.Errorf("Scrub left %v", h)
	}
	if got := p.HeaderName("meta-remembered"); got != "X-Session-Meta-Remembered" {
		t.Errorf("HeaderName(meta-remembered) = %q", got)
	}
}

// AbsoluteEnd is the stored absolute deadline, unless the timeouts that
// now apply end the session sooner.
func TestAbsoluteEnd(t *testing.T) {
	const day = 24 * time.Hour
	kept := rememberTimeouts.NewRecord(t0)
	rememberTimeouts.SetRemembered(kept, true)
	shortened := rememberTimeouts
	shortened.RememberAbsolute = 7 * day
	lengthened := rememberTimeouts
	lengthened.RememberAbsolute = 90 * day
	tests := []struct {
		name string
		to   Timeouts
		rec  *Record
		want time.Time
	}{
		{"plain", rememberTimeouts, rememberTimeouts.NewRecord(t0), t0.Add(12 * time.Hour)},
		{"remembered", rememberTimeouts, kept, t0.Add(30 * day)},
		{"remembered, the timeout shortened since", shortened, kept, t0.Add(7 * day)},
		{"remembered, the timeout lengthened since: the stored deadline holds", lengthened, kept, t0.Add(30 * day)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			end := tt.to.AbsoluteEnd(tt.rec)
			if !end.Equal(tt.want) {
				t.Fatalf("AbsoluteEnd = %s after t0, want %s", end.Sub(t0), tt.want.Sub(t0))
			}
		})
	}
}
