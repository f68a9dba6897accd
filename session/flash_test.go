package session

import (
	"maps"
	"net/http"
	"strings"
	"testing"
)

// TestTakeFlashCommands: X-Session-Flash-<Key> sets a flash value; keys
// are checked as session keys are, lowercased, and values as keys'
// values, with the same reasons; writable does not name flash keys.
func TestTakeFlashCommands(t *testing.T) {
	tests := []struct {
		name     string
		h        http.Header
		writable []string
		limits   *Limits
		flash    map[string]string // the patch's flash values
		set      map[string]string // and its keys
		reason   string            // non-empty: a *RuleError with this Reason
	}{
		{name: "one", h: http.Header{"X-Session-Flash-Notice": {"Saved"}}, flash: map[string]string{"notice": "Saved"}},
		{name: "lowercased, keeping its underscore", h: http.Header{"X-Session-Flash-Cart_Items": {"3 added"}},
			flash: map[string]string{"cart_items": "3 added"}},
		{name: "underscored command spelling", h: http.Header{"X_SESSION_FLASH_NOTICE": {"hi"}}, flash: map[string]string{"notice": "hi"}},
		{name: "empty value", h: http.Header{"X-Session-Flash-Notice": {""}}, flash: map[string]string{"notice": ""}},
		{name: "beside a key of the same name, a namespace of its own",
			h:     http.Header{"X-Session-Flash-Notice": {"flash"}, "X-Session-Set-Notice": {"key"}},
			flash: map[string]string{"notice": "flash"}, set: map[string]string{"notice": "key"}},
		{name: "not named by writable", h: http.Header{"X-Session-Flash-Notice": {"hi"}}, writable: []string{"user"},
			flash: map[string]string{"notice": "hi"}},
		{name: "flash is a key to Set", h: http.Header{"X-Session-Set-Flash": {"1"}}, set: map[string]string{"flash": "1"}},

		{name: "no key", h: http.Header{"X-Session-Flash-": {"hi"}}, reason: "invalid_key"},
		{name: "a bad key", h: http.Header{"X-Session-Flash-No!ce": {"hi"}}, reason: "invalid_key"},
		{name: "a key too long", h: http.Header{"X-Session-Flash-" + strings.Repeat("k", 65): {"hi"}}, reason: "invalid_key"},
		{name: "a reserved key", h: http.Header{"X-Session-Flash-Meta-Remembered": {"true"}}, reason: "reserved_key"},
		{name: "a flash- key", h: http.Header{"X-Session-Flash-Flash_X": {"1"}}, reason: "reserved_key"},
		{name: "no key at all is no command", h: http.Header{"X-Session-Flash": {"hi"}}, reason: "unknown_command"},
		{name: "a bad value", h: http.Header{"X-Session-Flash-Notice": {"a\x00b"}}, reason: "invalid_value"},
		{name: "a value over value_size", h: http.Header{"X-Session-Flash-Notice": {"12345"}},
			limits: &Limits{Keys: 64, ValueSize: 4, SessionSize: 1024}, reason: "value_too_large"},
		{name: "set twice", h: http.Header{"X-Session-Flash-Notice": {"a", "b"}}, reason: "conflict"},
		{name: "twice in two spellings", h: http.Header{"X-Session-Flash-Notice": {"a"}, "x-session-flash-notice": {"b"}}, reason: "conflict"},
		{name: "twins, one header to the app", h: http.Header{"X-Session-Flash-A_B": {"a"}, "X-Session-Flash-A-B": {"b"}}, reason: "conflict"},
		{name: "a bad flash refuses the keys beside it", h: http.Header{"X-Session-Flash-": {"a"}, "X-Session-Set-User": {"alice"}}, reason: "invalid_key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			limits := DefaultLimits()
			if tc.limits != nil {
				limits = *tc.limits
			}
			p := NewProtocol(DefaultHeaderPrefix, tc.writable, limits)
			h := tc.h.Clone()
			patch, err := p.TakeCommands(h)
			if len(h) != 0 {
				t.Errorf("headers left: %v", h)
			}
			if tc.reason != "" {
				re, ok := err.(*RuleError)
				if !ok || re.Reason != tc.reason || patch != nil {
					t.Fatalf("TakeCommands = %+v, %v; want a %q RuleError", patch, err, tc.reason)
				}
				if strings.Contains(re.Detail, "a\x00b") || strings.Contains(re.Detail, "12345") {
					t.Errorf("the error carries the value: %q", re.Detail)
				}
				return
			}
			if err != nil || patch == nil {
				t.Fatalf("TakeCommands = %+v, %v", patch, err)
			}
			if !maps.Equal(patch.Flash, tc.flash) || !maps.Equal(patch.Set, tc.set) {
				t.Fatalf("flash %v and keys %v, want %v and %v", patch.Flash, patch.Set, tc.flash, tc.set)
			}
		})
	}
}

func TestFlashHeaderName(t *testing.T) {
	p := newTestProtocol()
	for key, want := range map[string]string{
		"notice":     "X-Session-Flash-Notice",
		"cart_items": "X-Session-Flash-Cart-Items",
		"a-b":        "X-Session-Flash-A-B",
	} {
		if got := p.FlashHeaderName(key); got != want {
			t.Errorf("FlashHeaderName(%q) = %q, want %q", key, got, want)
		}
	}
	custom := NewProtocol("app-sess-", nil, DefaultLimits())
	if got := custom.FlashHeaderName("notice"); got != "App-Sess-Flash-Notice" {
		t.Errorf("with a custom prefix: %q", got)
	}
	h := http.Header{"X-Session-User": {"alice"}}
	p.ForwardFlash(h, map[string]string{"notice": "Saved", "cart_items": "3"})
	want := http.Header{"X-Session-User": {"alice"}, "X-Session-Flash-Notice": {"Saved"}, "X-Session-Flash-Cart-Items": {"3"}}
	if len(h) != len(want) {
		t.Fatalf("ForwardFlash: %v, want %v", h, want)
	}
	for name, v := range want {
		if h.Get(name) != v[0] {
			t.Fatalf("ForwardFlash: %v, want %v", h, want)
		}
	}
	// A forwarded flash header is in the namespace a client's is
	// scrubbed from.
	if !p.InNamespace("X-Session-Flash-Notice") || !p.InNamespace("x.session.flash.notice") {
		t.Fatal("flash headers are not in the namespace")
	}
}

func TestStartsAndStarting(t *testing.T) {
	tests := []struct {
		name string
		p    *Patch
		want bool
	}{
		{"nil", nil, false},
		{"empty", &Patch{}, false},
		{"delete and flags", &Patch{Delete: []string{"a"}, Destroy: true, Renew: true}, false},
		{"a key", &Patch{Set: map[string]string{"a": "1"}}, true},
		{"a flash value", &Patch{Flash: map[string]string{"notice": "bye"}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Starts(); got != tc.want {
				t.Errorf("Starts() = %v, want %v", got, tc.want)
			}
		})
	}
	p := &Patch{Set: map[string]string{"a": "1"}, Flash: map[string]string{"n": "x"}, Delete: []string{"b"}, Destroy: true, DestroyAll: true}
	s := p.Starting()
	if !maps.Equal(s.Set, p.Set) || !maps.Equal(s.Flash, p.Flash) || s.Delete != nil || s.Destroy || s.DestroyAll {
		t.Fatalf("Starting() = %+v", s)
	}
	if !(&Patch{Flash: map[string]string{"n": "x"}}).Changes() {
		t.Fatal("a patch that sets a flash value changes nothing, says Changes")
	}
}

// TestApplyToFlash: flash values are stored beside the keys, a new one
// replacing the one of its key in either spelling, and count with the
// keys in the limits; a patch over them changes nothing.
func TestApplyToFlash(t *testing.T) {
	lim := Limits{Keys: 3, ValueSize: 16, SessionSize: 24}
	tests := []struct {
		name         string
		values       map[string]string
		flash        map[string]string
		patch        *Patch
		wantValues   map[string]string
		wantFlash    map[string]string
		reason       string
		detailSubstr string
	}{
		{name: "into none", values: map[string]string{"user": "al"},
			patch:      &Patch{Flash: map[string]string{"notice": "ok"}},
			wantValues: map[string]string{"user": "al"}, wantFlash: map[string]string{"notice": "ok"}},
		{name: "replaces its key, adds the rest", flash: map[string]string{"notice": "old", "other": "x"},
			patch:     &Patch{Flash: map[string]string{"notice": "new"}},
			wantFlash: map[string]string{"notice": "new", "other": "x"}},
		{name: "replaces its twin", flash: map[string]string{"a_b": "old"},
			patch:     &Patch{Flash: map[string]string{"a-b": "new"}},
			wantFlash: map[string]string{"a-b": "new"}},
		{name: "a key set beside", values: map[string]string{}, flash: map[string]string{"n": "1"},
			patch:      &Patch{Set: map[string]string{"user": "al"}},
			wantValues: map[string]string{"user": "al"}, wantFlash: map[string]string{"n": "1"}},
		{name: "too many with the keys", values: map[string]string{"a": "1", "b": "2"},
			patch: &Patch{Flash: map[string]string{"c": "3", "d": "4"}}, reason: "too_many_keys", detailSubstr: "4 keys and flash values"},
		{name: "a key over the count the flash values take", values: map[string]string{"a": "1"}, flash: map[string]string{"b": "2", "c": "3"},
			patch: &Patch{Set: map[string]string{"d": "4"}}, reason: "too_many_keys"},
		{name: "too large with the keys", values: map[string]string{"user": "0123456789"},
			patch: &Patch{Flash: map[string]string{"notice": "0123456"}}, reason: "session_too_large", detailSubstr: "of keys and flash values"},
		{name: "replacing one with a shorter one over the limit already", values: map[string]string{"user": "0123456789012345"},
			flash:     map[string]string{"notice": "0123456789"},
			patch:     &Patch{Flash: map[string]string{"notice": "x"}},
			wantFlash: map[string]string{"notice": "x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &Record{Values: maps.Clone(tc.values), Flash: maps.Clone(tc.flash)}
			before := rec.Clone()
			err := tc.patch.ApplyTo(rec, lim)
			if tc.reason != "" {
				re, ok := err.(*RuleError)
				if !ok || re.Reason != tc.reason || !strings.Contains(re.Detail, tc.detailSubstr) {
					t.Fatalf("ApplyTo = %v, want a %q RuleError saying %q", err, tc.reason, tc.detailSubstr)
				}
				if !maps.Equal(rec.Values, before.Values) || !maps.Equal(rec.Flash, before.Flash) {
					t.Fatalf("a refused patch changed the record: %v, %v", rec.Values, rec.Flash)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantValues == nil {
				tc.wantValues = tc.values
			}
			if !maps.Equal(rec.Values, tc.wantValues) || !maps.Equal(rec.Flash, tc.wantFlash) {
				t.Fatalf("record %v, %v; want %v, %v", rec.Values, rec.Flash, tc.wantValues, tc.wantFlash)
			}
		})
	}
}

// TestApplyToFlashLeavesItsMapAlone: the record's map is replaced, not
// written into, so that a caller's copy of it stays as it was.
func TestApplyToFlashLeavesItsMapAlone(t *testing.T) {
	held := map[string]string{"notice": "old"}
	rec := &Record{Values: map[string]string{}, Flash: held}
	if err := (&Patch{Flash: map[string]string{"notice": "new", "x": "1"}}).ApplyTo(rec, DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(held, map[string]string{"notice": "old"}) {
		t.Fatalf("the map the record held became %v", held)
	}
}

func TestTakeAndRestoreFlash(t *testing.T) {
	rec := &Record{Flash: map[string]string{"notice": "Saved", "a_b": "1"}}
	taken := TakeFlash(rec)
	if rec.Flash != nil || !maps.Equal(taken, map[string]string{"notice": "Saved", "a_b": "1"}) {
		t.Fatalf("TakeFlash = %v, leaving %v", taken, rec.Flash)
	}
	if again := TakeFlash(rec); again != nil {
		t.Fatalf("a second TakeFlash = %v, want nil", again)
	}
	empty := &Record{Flash: map[string]string{}}
	if got := TakeFlash(empty); got != nil {
		t.Fatalf("TakeFlash of an empty map = %v, want nil", got)
	}

	// Put back, except where a value was set since, in either spelling.
	rec.Flash = map[string]string{"notice": "newer", "a-b": "2"}
	if !RestoreFlash(rec, map[string]string{"notice": "Saved", "a_b": "1", "gone": "x"}) {
		t.Fatal("RestoreFlash put nothing back")
	}
	if want := map[string]string{"notice": "newer", "a-b": "2", "gone": "x"}; !maps.Equal(rec.Flash, want) {
		t.Fatalf("after RestoreFlash: %v, want %v", rec.Flash, want)
	}
	if RestoreFlash(rec, map[string]string{"notice": "Saved"}) {
		t.Fatal("RestoreFlash over a newer value reports a change")
	}
	none := &Record{}
	if !RestoreFlash(none, taken) || !maps.Equal(none.Flash, taken) {
		t.Fatalf("RestoreFlash into a record with none: %v", none.Flash)
	}
}
