package session

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestDefaultLimits(t *testing.T) {
	l := DefaultLimits()
	if l.Keys != DefaultMaxKeys || l.ValueSize != DefaultValueSize || l.SessionSize != DefaultSessionSize {
		t.Errorf("DefaultLimits() = %+v", l)
	}
	if l.ValueSize > l.SessionSize {
		t.Errorf("default value size %d exceeds default session size %d", l.ValueSize, l.SessionSize)
	}
}

func TestRuleErrorError(t *testing.T) {
	e := ruleError("invalid_key", "key %q is bad", "x y")
	if e.Reason != "invalid_key" || e.Error() != `key "x y" is bad` {
		t.Errorf("ruleError = %+v, Error() = %q", e, e.Error())
	}
}

func TestChanges(t *testing.T) {
	tests := []struct {
		name string
		p    *Patch
		want bool
	}{
		{"nil", nil, false},
		{"empty", &Patch{}, false},
		{"renew only", &Patch{Renew: true}, false},
		{"destroy only", &Patch{Destroy: true}, false},
		{"empty set map", &Patch{Set: map[string]string{}}, false},
		{"set", &Patch{Set: map[string]string{"a": "1"}}, true},
		{"set empty value", &Patch{Set: map[string]string{"a": ""}}, true},
		{"delete", &Patch{Delete: []string{"a"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Changes(); got != tt.want {
				t.Errorf("Changes() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestApplyTo(t *testing.T) {
	noLimits := Limits{}
	tests := []struct {
		name   string
		before map[string]string
		patch  *Patch
		limits Limits
		want   map[string]string // nil when an error is expected
		reason string
	}{
		{
			name:   "set into empty",
			before: map[string]string{},
			patch:  &Patch{Set: map[string]string{"user": "alice"}},
			limits: DefaultLimits(),
			want:   map[string]string{"user": "alice"},
		},
		{
			name:   "set into nil values",
			before: nil,
			patch:  &Patch{Set: map[string]string{"user": "alice"}},
			limits: DefaultLimits(),
			want:   map[string]string{"user": "alice"},
		},
		{
			name:   "overwrite and add",
			before: map[string]string{"user": "alice", "role": "user"},
			patch:  &Patch{Set: map[string]string{"role": "admin", "cart": "3"}},
			limits: DefaultLimits(),
			want:   map[string]string{"user": "alice", "role": "admin", "cart": "3"},
		},
		{
			name:   "delete",
			before: map[string]string{"user": "alice", "role": "user"},
			patch:  &Patch{Delete: []string{"role"}},
			limits: DefaultLimits(),
			want:   map[string]string{"user": "alice"},
		},
		{
			name:   "delete missing key",
			before: map[string]string{"user": "alice"},
			patch:  &Patch{Delete: []string{"nope"}},
			limits: DefaultLimits(),
			want:   map[string]string{"user": "alice"},
		},
		{
			name:   "no changes leaves values",
			before: map[string]string{"user": "alice"},
			patch:  &Patch{Renew: true},
			limits: Limits{Keys: 0},
			want:   map[string]string{"user": "alice"},
		},
		{
			name:   "zero limits mean unlimited",
			before: map[string]string{"a": strings.Repeat("x", 1000)},
			patch:  &Patch{Set: map[string]string{"b": strings.Repeat("y", 1000)}},
			limits: noLimits,
			want:   map[string]string{"a": strings.Repeat("x", 1000), "b": strings.Repeat("y", 1000)},
		},
		{
			name:   "at the key limit",
			before: map[string]string{"a": "1"},
			patch:  &Patch{Set: map[string]string{"b": "2"}},
			limits: Limits{Keys: 2},
			want:   map[string]string{"a": "1", "b": "2"},
		},
		{
			name:   "over the key limit",
			before: map[string]string{"a": "1", "b": "2"},
			patch:  &Patch{Set: map[string]string{"c": "3"}},
			limits: Limits{Keys: 2},
			reason: "too_many_keys",
		},
		{
			name:   "overwrite counts once",
			before: map[string]string{"a": "1", "b": "2"},
			patch:  &Patch{Set: map[string]string{"a": "10", "b": "20"}},
			limits: Limits{Keys: 2},
			want:   map[string]string{"a": "10", "b": "20"},
		},
		{
			name:   "delete makes room for a set",
			before: map[string]string{"a": "1", "b": "2"},
			patch:  &Patch{Set: map[string]string{"c": "3"}, Delete: []string{"a"}},
			limits: Limits{Keys: 2},
			want:   map[string]string{"b": "2", "c": "3"},
		},
		{
			name:   "delete of a missing key makes no room",
			before: map[string]string{"a": "1", "b": "2"},
			patch:  &Patch{Set: map[string]string{"c": "3"}, Delete: []string{"zz"}},
			limits: Limits{Keys: 2},
			reason: "too_many_keys",
		},
		{
			name:   "at the session size",
			before: map[string]string{"a": "1234"},              // 5 bytes
			patch:  &Patch{Set: map[string]string{"b": "1234"}}, // 5 bytes
			limits: Limits{SessionSize: 10},
			want:   map[string]string{"a": "1234", "b": "1234"},
		},
		{
			name:   "over the session size",
			before: map[string]string{"a": "1234"},
			patch:  &Patch{Set: map[string]string{"b": "12345"}},
			limits: Limits{SessionSize: 10},
			reason: "session_too_large",
		},
		{
			name:   "overwrite is measured by the new value",
			before: map[string]string{"a": strings.Repeat("x", 9)}, // 10 bytes
			patch:  &Patch{Set: map[string]string{"a": "1"}},       // 2 bytes
			limits: Limits{SessionSize: 10},
			want:   map[string]string{"a": "1"},
		},
		{
			name:   "overwrite growing past the size",
			before: map[string]string{"a": "1"},
			patch:  &Patch{Set: map[string]string{"a": strings.Repeat("x", 10)}},
			limits: Limits{SessionSize: 10},
			reason: "session_too_large",
		},
		{
			name:   "delete frees bytes",
			before: map[string]string{"a": strings.Repeat("x", 8)},
			patch:  &Patch{Set: map[string]string{"b": strings.Repeat("y", 8)}, Delete: []string{"a"}},
			limits: Limits{SessionSize: 10},
			want:   map[string]string{"b": strings.Repeat("y", 8)},
		},
		// A key is one key whether spelled with '_' or '-'.
		{
			name:   "set in the '_' spelling of an existing key",
			before: map[string]string{"cart-items": "1"},
			patch:  &Patch{Set: map[string]string{"cart_items": "2"}},
			limits: DefaultLimits(),
			want:   map[string]string{"cart-items": "2"},
		},
		{
			name:   "set in the '-' spelling of an existing key",
			before: map[string]string{"cart_items": "1", "user": "alice"},
			patch:  &Patch{Set: map[string]string{"cart-items": "2"}},
			limits: DefaultLimits(),
			want:   map[string]string{"cart_items": "2", "user": "alice"},
		},
		{
			name:   "set in a mixed spelling of an existing key",
			before: map[string]string{"a_b-c": "1"},
			patch:  &Patch{Set: map[string]string{"a-b_c": "2"}},
			limits: DefaultLimits(),
			want:   map[string]string{"a_b-c": "2"},
		},
		{
			name:   "delete in the other spelling",
			before: map[string]string{"cart_items": "1", "user": "alice"},
			patch:  &Patch{Delete: []string{"cart-items"}},
			limits: DefaultLimits(),
			want:   map[string]string{"user": "alice"},
		},
		{
			name:   "set in the other spelling counts as an overwrite against the key limit",
			before: map[string]string{"cart_items": "1", "user": "alice"},
			patch:  &Patch{Set: map[string]string{"cart-items": "2"}},
			limits: Limits{Keys: 2},
			want:   map[string]string{"cart_items": "2", "user": "alice"},
		},
		{
			name:   "set of a new key with '_' stays as spelled",
			before: map[string]string{"user": "alice"},
			patch:  &Patch{Set: map[string]string{"cart_items": "1"}},
			limits: DefaultLimits(),
			want:   map[string]string{"cart_items": "1", "user": "alice"},
		},
		{
			name:   "set of one spelling and delete of the other",
			before: map[string]string{"cart_items": "1"},
			patch:  &Patch{Set: map[string]string{"cart_items": "2"}, Delete: []string{"cart-items"}},
			limits: DefaultLimits(),
			want:   map[string]string{"cart_items": "2"}, // set wins over delete, as for one spelling
		},
		{
			name:   "two keys set that land on one",
			before: map[string]string{"cart_items": "1"},
			patch:  &Patch{Set: map[string]string{"cart_items": "2", "cart-items": "3"}},
			limits: DefaultLimits(),
			reason: "conflict",
		},
		{
			name:   "two new twins set by hand",
			before: map[string]string{},
			patch:  &Patch{Set: map[string]string{"cart_items": "2", "cart-items": "3"}},
			limits: DefaultLimits(),
			reason: "conflict",
		},
		{
			name:   "a record already holding two twins is ambiguous",
			before: map[string]string{"a_b_c": "1", "a-b-c": "2"},
			patch:  &Patch{Set: map[string]string{"a_b-c": "3"}},
			limits: DefaultLimits(),
			reason: "conflict",
		},
		{
			name:   "a record already holding two twins: exact spellings still work",
			before: map[string]string{"a_b_c": "1", "a-b-c": "2"},
			patch:  &Patch{Set: map[string]string{"a_b_c": "3"}, Delete: []string{"a-b-c"}},
			limits: DefaultLimits(),
			want:   map[string]string{"a_b_c": "3"},
		},
		{
			name:   "twin allowed when the existing one is deleted",
			before: map[string]string{"cart_items": "1", "user": "alice"},
			patch:  &Patch{Set: map[string]string{"cart-items": "2"}, Delete: []string{"cart_items"}},
			limits: DefaultLimits(),
			want:   map[string]string{"cart-items": "2", "user": "alice"},
		},
		{
			name:   "same key is no twin",
			before: map[string]string{"cart_items": "1"},
			patch:  &Patch{Set: map[string]string{"cart_items": "2"}},
			limits: DefaultLimits(),
			want:   map[string]string{"cart_items": "2"},
		},
		{
			name:   "set wins over delete of the same key",
			before: map[string]string{"a": "1"},
			patch:  &Patch{Set: map[string]string{"a": "2"}, Delete: []string{"a"}},
			limits: Limits{Keys: 1},
			want:   map[string]string{"a": "2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := testTimeouts.NewRecord(t0)
			rec.Values = maps.Clone(tt.before)
			orig := rec.Clone()
			err := tt.patch.ApplyTo(rec, tt.limits)
			if tt.reason != "" {
				var re *RuleError
				if !errors.As(err, &re) {
					t.Fatalf("ApplyTo() error = %v, want a *RuleError %q", err, tt.reason)
				}
				if re.Reason != tt.reason {
					t.Errorf("Reason = %q, want %q (detail %q)", re.Reason, tt.reason, re.Detail)
				}
				if re.Detail == "" {
					t.Error("RuleError has an empty Detail")
				}
				if !maps.Equal(rec.Values, orig.Values) || len(rec.Values) != len(tt.before) {
					t.Errorf("record changed on error: %v, was %v", rec.Values, orig.Values)
				}
				if !rec.LastSeen.Equal(orig.LastSeen) || !rec.IdleDeadline.Equal(orig.IdleDeadline) {
					t.Error("record deadlines changed on error")
				}
				return
			}
			if err != nil {
				t.Fatalf("ApplyTo() = %v, want nil", err)
			}
			if !maps.Equal(rec.Values, tt.want) {
				t.Errorf("values = %v, want %v", rec.Values, tt.want)
			}
			if tt.limits.Keys > 0 && len(rec.Values) > tt.limits.Keys {
				t.Errorf("%d keys exceed the limit %d", len(rec.Values), tt.limits.Keys)
			}
			if tt.limits.SessionSize > 0 && rec.Size() > tt.limits.SessionSize {
				t.Errorf("size %d exceeds the limit %d", rec.Size(), tt.limits.SessionSize)
			}
		})
	}
}

// ApplyTo rewrites the patch to the spellings the record holds, so that a
// store that writes only the keys a patch names writes the right fields;
// it leaves the caller's map and slice alone, and the patch too on error.
func TestApplyToRespellsThePatch(t *testing.T) {
	tests := []struct {
		name       string
		before     map[string]string
		set        map[string]string
		del        []string
		wantSet    map[string]string
		wantDelete []string
		reason     string
	}{
		{
			name:    "same spelling: the patch is left as it was",
			before:  map[string]string{"cart_items": "1"},
			set:     map[string]string{"cart_items": "2", "user": "bob"},
			del:     []string{"role"},
			wantSet: map[string]string{"cart_items": "2", "user": "bob"}, wantDelete: []string{"role"},
		},
		{
			name:    "set in the other spelling",
			before:  map[string]string{"cart_items": "1"},
			set:     map[string]string{"cart-items": "2", "user": "bob"},
			wantSet: map[string]string{"cart_items": "2", "user": "bob"},
		},
		{
			name:       "delete in the other spelling",
			before:     map[string]string{"cart_items": "1", "user-id": "7"},
			del:        []string{"cart-items", "user_id", "gone_key"},
			wantDelete: []string{"cart_items", "user-id", "gone_key"},
		},
		{
			name:    "rename: set one spelling, delete the other",
			before:  map[string]string{"cart_items": "1"},
			set:     map[string]string{"cart-items": "2"},
			del:     []string{"cart_items"},
			wantSet: map[string]string{"cart-items": "2"}, wantDelete: []string{"cart_items"},
		},
		{
			name:    "refused: the patch is left as it was",
			before:  map[string]string{"cart_items": "1", "b": "2"},
			set:     map[string]string{"cart-items": "2", "c": "3"},
			del:     []string{"B"},
			wantSet: map[string]string{"cart-items": "2", "c": "3"}, wantDelete: []string{"B"},
			reason: "too_many_keys",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &Record{Values: maps.Clone(tt.before)}
			setArg, delArg := maps.Clone(tt.set), slices.Clone(tt.del)
			p := &Patch{Set: setArg, Delete: delArg}
			err := p.ApplyTo(rec, Limits{Keys: 2})
			var re *RuleError
			if tt.reason != "" && (!errors.As(err, &re) || re.Reason != tt.reason) || tt.reason == "" && err != nil {
				t.Fatalf("ApplyTo() = %v, want reason %q", err, tt.reason)
			}
			if !maps.Equal(p.Set, tt.wantSet) || !slices.Equal(p.Delete, tt.wantDelete) {
				t.Errorf("patch after ApplyTo = %v %q, want %v %q", p.Set, p.Delete, tt.wantSet, tt.wantDelete)
			}
			if !maps.Equal(setArg, tt.set) || !slices.Equal(delArg, tt.del) {
				t.Errorf("ApplyTo changed the caller's map or slice: %v %q", setArg, delArg)
			}
			if err != nil {
				return
			}
			// Applying the rewritten patch again, as a store retrying its
			// transaction does, gives the same record.
			again := &Record{Values: maps.Clone(tt.before)}
			if err := p.ApplyTo(again, Limits{Keys: 2}); err != nil || !maps.Equal(again.Values, rec.Values) {
				t.Errorf("the rewritten patch gives %v, %v; the first apply gave %v", again.Values, err, rec.Values)
			}
		})
	}
}

func TestApplyToNilPatch(t *testing.T) {
	rec := testTimeouts.NewRecord(t0)
	rec.Values["a"] = "1"
	var p *Patch
	if err := p.ApplyTo(rec, DefaultLimits()); err != nil {
		t.Fatalf("nil patch: %v", err)
	}
	if len(rec.Values) != 1 || rec.Values["a"] != "1" {
		t.Errorf("nil patch changed values: %v", rec.Values)
	}
}

// A record already over a limit is refused any growth.
func TestApplyToAlreadyOverLimit(t *testing.T) {
	rec := &Record{Values: map[string]string{"a": "1", "b": "2", "c": "3"}}
	err := (&Patch{Set: map[string]string{"d": "4"}}).ApplyTo(rec, Limits{Keys: 2})
	var re *RuleError
	if !errors.As(err, &re) || re.Reason != "too_many_keys" {
		t.Fatalf("error = %v, want too_many_keys", err)
	}
	if len(rec.Values) != 3 {
		t.Errorf("record changed: %v", rec.Values)
	}
}

func TestApplyToLetsAnOversizedSessionShrink(t *testing.T) {
	rec := &Record{Values: map[string]string{"a": "1", "b": "2", "c": "3"}}
	lim := Limits{Keys: 2, SessionSize: 100}
	if err := (&Patch{Delete: []string{"a"}}).ApplyTo(rec, lim); err != nil {
		t.Fatalf("deleting from a session over the key limit: %v", err)
	}
	if len(rec.Values) != 2 {
		t.Fatalf("values = %v, want a deleted", rec.Values)
	}
	rec.Values["d"] = "4"
	err := (&Patch{Set: map[string]string{"e": "5"}, Delete: []string{"d"}}).ApplyTo(rec, lim)
	if err != nil {
		t.Fatalf("a patch that keeps an oversized session's size: %v", err)
	}
	if err := (&Patch{Set: map[string]string{"f": "6"}}).ApplyTo(rec, lim); err == nil {
		t.Fatal("a patch that grows a session over the key limit was allowed")
	}
}

// Sets, Deletes and LookupKey see a key in either spelling, as ApplyTo
// does, so that whoever decides on a key before the store (a renew_on
// key's change rotates the ID) decides on the key ApplyTo will change.
func TestSpellingBlindLookups(t *testing.T) {
	p := &Patch{Set: map[string]string{"user-id": "2", "role": "admin"}, Delete: []string{"cart_items"}}
	values := map[string]string{"user_id": "1", "cart-items": "3"}
	tests := []struct {
		key           string
		set           string
		sets, deletes bool
		held, value   string
		holds         bool
	}{
		{key: "user_id", set: "2", sets: true, held: "user_id", value: "1", holds: true},
		{key: "user-id", set: "2", sets: true, held: "user_id", value: "1", holds: true},
		{key: "role", set: "admin", sets: true},
		{key: "cart-items", deletes: true, held: "cart-items", value: "3", holds: true},
		{key: "cart_items", deletes: true, held: "cart-items", value: "3", holds: true},
		{key: "userid"},
		{key: "user"},
		{key: "cart_item"},
	}
	for _, tt := range tests {
		if v, ok := p.Sets(tt.key); v != tt.set || ok != tt.sets {
			t.Errorf("Sets(%q) = %q, %v; want %q, %v", tt.key, v, ok, tt.set, tt.sets)
		}
		if got := p.Deletes(tt.key); got != tt.deletes {
			t.Errorf("Deletes(%q) = %v, want %v", tt.key, got, tt.deletes)
		}
		if held, v, ok := LookupKey(values, tt.key); held != tt.held || v != tt.value || ok != tt.holds {
			t.Errorf("LookupKey(%q) = %q, %q, %v; want %q, %q, %v", tt.key, held, v, ok, tt.held, tt.value, tt.holds)
		}
	}
	if _, ok := (&Patch{}).Sets("a"); ok || (&Patch{}).Deletes("a") {
		t.Error("an empty patch sets or deletes something")
	}
}
