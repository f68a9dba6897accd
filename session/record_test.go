package session

import (
	"maps"
	"strings"
	"testing"
	"time"
)

// t0 is an arbitrary fixed instant: tests pass time as a parameter and never
// read the clock.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

var testTimeouts = Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute}

func TestNewRecord(t *testing.T) {
	tests := []struct {
		name     string
		to       Timeouts
		wantIdle time.Time
		wantAbs  time.Time
	}{
		{"defaults", testTimeouts, t0.Add(30 * time.Minute), t0.Add(12 * time.Hour)},
		{"idle longer than absolute", Timeouts{Idle: 2 * time.Hour, Absolute: time.Hour}, t0.Add(time.Hour), t0.Add(time.Hour)},
		{"idle equal to absolute", Timeouts{Idle: time.Hour, Absolute: time.Hour}, t0.Add(time.Hour), t0.Add(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.to.NewRecord(t0)
			if !r.Created.Equal(t0) || !r.LastSeen.Equal(t0) {
				t.Errorf("Created, LastSeen = %v, %v; want both %v", r.Created, r.LastSeen, t0)
			}
			if !r.IdleDeadline.Equal(tt.wantIdle) {
				t.Errorf("IdleDeadline = %v, want %v", r.IdleDeadline, tt.wantIdle)
			}
			if !r.AbsoluteDeadline.Equal(tt.wantAbs) {
				t.Errorf("AbsoluteDeadline = %v, want %v", r.AbsoluteDeadline, tt.wantAbs)
			}
			if r.Values == nil || len(r.Values) != 0 {
				t.Errorf("Values = %#v, want an empty non-nil map", r.Values)
			}
			if r.Expired(t0) {
				t.Error("a new record is expired at its creation")
			}
		})
	}
}

func TestExpiresAt(t *testing.T) {
	early, late := t0.Add(time.Minute), t0.Add(time.Hour)
	tests := []struct {
		name      string
		idle, abs time.Time
		want      time.Time
	}{
		{"idle first", early, late, early},
		{"absolute first", late, early, early},
		{"equal", early, early, early},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Record{IdleDeadline: tt.idle, AbsoluteDeadline: tt.abs}
			if got := r.ExpiresAt(); !got.Equal(tt.want) {
				t.Errorf("ExpiresAt() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRecordExpiredBoundary(t *testing.T) {
	r := testTimeouts.NewRecord(t0)
	idle := r.IdleDeadline
	tests := []struct {
		name string
		now  time.Time
		want bool
	}{
		{"long before", t0, false},
		{"1ns before idle deadline", idle.Add(-time.Nanosecond), false},
		{"at idle deadline", idle, true},
		{"after idle deadline", idle.Add(time.Nanosecond), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Expired(tt.now); got != tt.want {
				t.Errorf("Expired(%v) = %v, want %v (deadline %v)", tt.now, got, tt.want, idle)
			}
		})
	}

	// The absolute deadline ends a session however recently it was touched.
	r2 := testTimeouts.NewRecord(t0)
	abs := r2.AbsoluteDeadline
	testTimeouts.Touch(r2, abs.Add(-time.Second))
	if !r2.IdleDeadline.Equal(abs) {
		t.Fatalf("IdleDeadline = %v after a touch near the end, want capped at %v", r2.IdleDeadline, abs)
	}
	if r2.Expired(abs.Add(-time.Nanosecond)) {
		t.Error("expired 1ns before the absolute deadline")
	}
	if !r2.Expired(abs) {
		t.Error("not expired at the absolute deadline")
	}
}

func TestTimeoutsExpired(t *testing.T) {
	// The record was written under long timeouts; the configuration has
	// since been shortened. The shorter rules apply at once.
	long := Timeouts{Idle: 2 * time.Hour, Absolute: 24 * time.Hour, TouchInterval: time.Minute}
	r := long.NewRecord(t0)
	tests := []struct {
		name string
		to   Timeouts
		now  time.Time
		want bool
	}{
		{"same config, fresh", long, t0.Add(time.Hour), false},
		{"same config, at idle", long, t0.Add(2 * time.Hour), true},
		{"idle shortened, before new idle", Timeouts{Idle: 10 * time.Minute, Absolute: 24 * time.Hour}, t0.Add(10*time.Minute - time.Nanosecond), false},
		{"idle shortened, at new idle", Timeouts{Idle: 10 * time.Minute, Absolute: 24 * time.Hour}, t0.Add(10 * time.Minute), true},
		{"absolute shortened, before new absolute", Timeouts{Idle: 2 * time.Hour, Absolute: time.Hour}, t0.Add(time.Hour - time.Nanosecond), false},
		{"absolute shortened, at new absolute", Timeouts{Idle: 2 * time.Hour, Absolute: time.Hour}, t0.Add(time.Hour), true},
		// Lengthening the configuration does not revive a record whose
		// stored deadline has passed.
		{"config lengthened, stored deadline passed", Timeouts{Idle: 48 * time.Hour, Absolute: 48 * time.Hour}, t0.Add(2 * time.Hour), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r.Expired(tt.now) && !tt.want {
				t.Fatalf("test setup: stored deadlines already passed at %v", tt.now)
			}
			if got := tt.to.Expired(r, tt.now); got != tt.want {
				t.Errorf("Timeouts%+v.Expired(at %v) = %v, want %v", tt.to, tt.now.Sub(t0), got, tt.want)
			}
		})
	}
	// The shortened config expires a record its own deadlines still keep.
	short := Timeouts{Idle: 10 * time.Minute, Absolute: 24 * time.Hour}
	at := t0.Add(15 * time.Minute)
	if r.Expired(at) || !short.Expired(r, at) {
		t.Errorf("at +15m: stored Expired = %v (want false), shortened config Expired = %v (want true)", r.Expired(at), short.Expired(r, at))
	}
}

func TestNeedsTouch(t *testing.T) {
	r := testTimeouts.NewRecord(t0)
	tests := []struct {
		name string
		now  time.Time
		want bool
	}{
		{"same instant", t0, false},
		{"just before interval", t0.Add(time.Minute - time.Nanosecond), false},
		{"at interval", t0.Add(time.Minute), true},
		{"after interval", t0.Add(5 * time.Minute), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testTimeouts.NeedsTouch(r, tt.now); got != tt.want {
				t.Errorf("NeedsTouch(+%v) = %v, want %v", tt.now.Sub(t0), got, tt.want)
			}
		})
	}
}

func TestTouch(t *testing.T) {
	r := testTimeouts.NewRecord(t0)
	abs := r.AbsoluteDeadline
	tests := []struct {
		name     string
		at       time.Time
		wantIdle time.Time
	}{
		{"early", t0.Add(time.Hour), t0.Add(time.Hour + 30*time.Minute)},
		{"idle ends exactly at absolute", abs.Add(-30 * time.Minute), abs},
		{"idle would pass absolute", abs.Add(-time.Minute), abs},
		{"after absolute", abs.Add(time.Hour), abs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := r.Clone()
			testTimeouts.Touch(c, tt.at)
			if !c.LastSeen.Equal(tt.at) {
				t.Errorf("LastSeen = %v, want %v", c.LastSeen, tt.at)
			}
			if !c.IdleDeadline.Equal(tt.wantIdle) {
				t.Errorf("IdleDeadline = %v, want %v", c.IdleDeadline, tt.wantIdle)
			}
			if c.IdleDeadline.After(c.AbsoluteDeadline) {
				t.Errorf("IdleDeadline %v passes AbsoluteDeadline %v", c.IdleDeadline, c.AbsoluteDeadline)
			}
			if !c.AbsoluteDeadline.Equal(abs) || !c.Created.Equal(t0) {
				t.Errorf("Touch moved Created or AbsoluteDeadline: %v, %v", c.Created, c.AbsoluteDeadline)
			}
		})
	}
}

func TestRecordSize(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]string
		want   int
	}{
		{"nil", nil, 0},
		{"empty", map[string]string{}, 0},
		{"empty value", map[string]string{"k": ""}, 1},
		{"several", map[string]string{"user": "alice", "cart": "1,2,3"}, 4 + 5 + 4 + 5},
		{"bytes not runes", map[string]string{"k": "héllo"}, 1 + 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Record{Values: tt.values}
			if got := r.Size(); got != tt.want {
				t.Errorf("Size() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestClone(t *testing.T) {
	r := testTimeouts.NewRecord(t0)
	r.Values["user"] = "alice"
	r.Values["role"] = "admin"
	c := r.Clone()
	if c == r {
		t.Fatal("Clone returned the same pointer")
	}
	if !maps.Equal(c.Values, r.Values) || !c.Created.Equal(r.Created) || !c.LastSeen.Equal(r.LastSeen) ||
		!c.IdleDeadline.Equal(r.IdleDeadline) || !c.AbsoluteDeadline.Equal(r.AbsoluteDeadline) {
		t.Fatalf("Clone() = %+v, want a copy of %+v", c, r)
	}
	c.Values["user"] = "mallory"
	c.Values["new"] = "x"
	delete(c.Values, "role")
	testTimeouts.Touch(c, t0.Add(time.Hour))
	if r.Values["user"] != "alice" || r.Values["role"] != "admin" || len(r.Values) != 2 {
		t.Errorf("changing the clone's values changed the original: %v", r.Values)
	}
	if !r.LastSeen.Equal(t0) {
		t.Errorf("touching the clone moved the original's LastSeen to %v", r.LastSeen)
	}

	// A record without values clones to one that can be written to.
	empty := (&Record{}).Clone()
	if empty.Values == nil {
		t.Fatal("Clone of a record with nil Values has nil Values")
	}
	empty.Values["k"] = "v"
}

func TestCloneForwardAndRealm(t *testing.T) {
	next := HashID("next")
	r := &Record{Realm: "shop", Successor: &next, Values: map[string]string{}}
	c := r.Clone()
	if c.Realm != "shop" {
		t.Errorf("Clone's Realm = %q, want %q", c.Realm, "shop")
	}
	if !c.Forwarded() || *c.Successor != next {
		t.Fatalf("Clone of a forward record: Successor = %v, want %v", c.Successor, next)
	}
	if c.Successor == r.Successor {
		t.Fatal("Clone shares the Successor: changing one changes the other")
	}
	c.Successor[0] ^= 0xff
	if *r.Successor != next {
		t.Error("changing the clone's Successor changed the original's")
	}
}

func TestForwarded(t *testing.T) {
	next := HashID("next")
	tests := []struct {
		name string
		rec  *Record
		want bool
	}{
		{"session", testTimeouts.NewRecord(t0), false},
		{"forward record", &Record{Successor: &next}, true},
		{"forward to the zero hash", &Record{Successor: &Hash{}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rec.Forwarded(); got != tt.want {
				t.Errorf("Forwarded() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCloneMetadata(t *testing.T) {
	r := testTimeouts.NewRecord(t0)
	r.Remembered = true
	r.UserAgent = "Mozilla/5.0"
	r.Flash = map[string]string{"notice": "saved"}
	c := r.Clone()
	if !c.Remembered || c.UserAgent != r.UserAgent || !maps.Equal(c.Flash, r.Flash) {
		t.Fatalf("Clone() = %+v, want the metadata of %+v", c, r)
	}
	c.Flash["notice"] = "changed"
	c.Flash["other"] = "x"
	if r.Flash["notice"] != "saved" || len(r.Flash) != 1 {
		t.Errorf("changing the clone's flash values changed the original's: %v", r.Flash)
	}
	// No flash values, the common case, clone to none.
	if f := testTimeouts.NewRecord(t0).Clone().Flash; f != nil {
		t.Errorf("Clone of a record without flash values has Flash %#v, want nil", f)
	}
}

func TestFlashSize(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]string
		flash  map[string]string
		size   int
		flashN int
	}{
		{"none", map[string]string{"user": "alice"}, nil, 9, 0},
		{"flash only", nil, map[string]string{"notice": "saved"}, 0, 11},
		{"both apart", map[string]string{"k": "vv"}, map[string]string{"k": "vvvv"}, 3, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Record{Values: tt.values, Flash: tt.flash, UserAgent: "not counted"}
			if got := r.Size(); got != tt.size {
				t.Errorf("Size() = %d, want %d", got, tt.size)
			}
			if got := r.FlashSize(); got != tt.flashN {
				t.Errorf("FlashSize() = %d, want %d", got, tt.flashN)
			}
		})
	}
}

func TestTruncateUserAgent(t *testing.T) {
	long := strings.Repeat("a", MaxUserAgent)
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"short", "curl/8.5.0", "curl/8.5.0"},
		{"exactly the most", long, long},
		{"one over", long + "b", long},
		{"a cut inside a rune backs up", long[:MaxUserAgent-1] + "é", long[:MaxUserAgent-1]},
		{"a rune that ends at the cut stays", long[:MaxUserAgent-2] + "é" + "x", long[:MaxUserAgent-2] + "é"},
		{"a four-byte rune", long[:MaxUserAgent-2] + "😀", long[:MaxUserAgent-2]},
		// Not UTF-8: it backs up three bytes at most, and cuts there.
		{"invalid bytes", long[:MaxUserAgent-4] + strings.Repeat("\x80", 8), long[:MaxUserAgent-4] + "\x80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TruncateUserAgent(tt.in)
			if got != tt.want {
				t.Errorf("TruncateUserAgent(%d bytes) = %d bytes %q, want %d bytes", len(tt.in), len(got), got[max(0, len(got)-8):], len(tt.want))
			}
			if len(got) > MaxUserAgent {
				t.Errorf("%d bytes, over %d", len(got), MaxUserAgent)
			}
		})
	}
}
