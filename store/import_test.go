package store

import (
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

func TestDecideImport(t *testing.T) {
	now := time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)
	timeouts := session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour}
	rec := timeouts.NewRecord(now.Add(-time.Minute))
	rec.Values = map[string]string{"user": "alice"}
	e := Entry{Hash: session.HashID("a"), Record: rec, Identity: "user"}
	other := rec.Clone()
	other.Values["cart"] = "apple"
	expired := timeouts.NewRecord(now.Add(-13 * time.Hour))
	successor := session.HashID("b")
	forward := &session.Record{IdleDeadline: now.Add(time.Minute), AbsoluteDeadline: now.Add(time.Minute), Successor: &successor}
	sameTimesOtherZone := rec.Clone()
	sameTimesOtherZone.Created = rec.Created.In(time.FixedZone("UTC+1", 3600))

	tests := []struct {
		name           string
		stored         *session.Record
		storedIdentity string
		overwrite      bool
		want           ImportStatus
		writes, remove bool
	}{
		{"nothing stored", nil, "", false, Imported, true, false},
		{"the same record", rec.Clone(), "user", false, Unchanged, false, false},
		{"the same instants in another zone", sameTimesOtherZone, "user", false, Unchanged, false, false},
		{"the same record, indexed under another key", rec.Clone(), "", false, Kept, false, false},
		{"another live record", other, "user", false, Kept, false, false},
		{"another live record, overwritten", other, "user", true, Imported, true, true},
		{"an expired record", expired, "user", false, Imported, true, true},
		{"a forward record", forward, "", false, Kept, false, false},
		{"a forward record, overwritten: the ID stays retired", forward, "", true, Kept, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, got := DecideImport(e, tc.stored, tc.storedIdentity, now, tc.overwrite)
			if got != tc.want || o.Writes() != tc.writes || o.Remove != tc.remove {
				t.Fatalf("DecideImport = %v, writes %v, remove %v; want %v, %v, %v", got, o.Writes(), o.Remove, tc.want, tc.writes, tc.remove)
			}
			if !tc.writes {
				return
			}
			if o.At != e.Hash || o.WriteAt != e.Hash || o.Identity != "user" || o.InPlace || o.Forward != nil {
				t.Fatalf("outcome %+v does not replace the record under the entry's hash", o)
			}
			if o.Write == e.Record || !SameRecord(o.Write, e.Record) {
				t.Fatal("the outcome's record is not a copy of the entry's")
			}
		})
	}
}
