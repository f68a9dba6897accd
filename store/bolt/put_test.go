package bolt

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

func TestPut(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: imports more than 20,000 sessions in one goroutine")
	}
	s := openTest(t)
	defer s.Close()
	now := base
	// More than one transaction's worth, one of them replacing a record
	// that is already there under another identity value.
	existing := create(t, s, "id-0", now, timeouts, map[string]string{"user": "old"})
	n := importBatch + 5
	entries := make([]store.Entry, n)
	for i := range entries {
		rec := timeouts.NewRecord(now)
		rec.Values = map[string]string{"user": fmt.Sprintf("u%d", i%7), "cart": "apple"}
		entries[i] = store.Entry{Hash: session.HashID(fmt.Sprintf("id-%d", i)), Record: rec}
	}
	if entries[0].Hash != existing {
		t.Fatal("the test means to replace id-0")
	}
	if err := s.Put(t.Context(), entries, "user"); err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, s)
	if got, err := s.Count(t.Context(), now); err != nil || got != n {
		t.Fatalf("Count = %d, %v; want %d", got, err, n)
	}
	for _, i := range []int{0, 1, n - 1} {
		rec, err := s.Load(t.Context(), entries[i].Hash, now, timeouts)
		if err != nil {
			t.Fatalf("Load %d: %v", i, err)
		}
		if !maps.Equal(rec.Values, entries[i].Record.Values) {
			t.Fatalf("Load %d = %v, want %v", i, rec.Values, entries[i].Record.Values)
		}
	}
	// The identity index is the importer's: the old value no longer finds
	// id-0, the new one does.
	if got, _ := s.DeleteByIdentity(t.Context(), "", "user", "old"); got != 0 {
		t.Fatalf("DeleteByIdentity(old) removed %d", got)
	}
	want := (n + 6) / 7
	if got, _ := s.DeleteByIdentity(t.Context(), "", "user", "u0"); got != want {
		t.Fatalf("DeleteByIdentity(u0) removed %d, want %d", got, want)
	}
	checkConsistent(t, s)
	// Imported records expire as any other.
	if got, err := s.Sweep(now.Add(timeouts.Idle)); err != nil || got != n-want {
		t.Fatalf("Sweep removed %d, %v; want %d", got, err, n-want)
	}
}

func TestPutCanceled(t *testing.T) {
	s := openTest(t)
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rec := timeouts.NewRecord(time.Now())
	err := s.Put(ctx, []store.Entry{{Hash: session.HashID("x"), Record: rec}}, "user")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a canceled context = %v", err)
	}
}
