package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// entryOf is the export entry of the session under h in s, as it stands.
func entryOf(t *testing.T, s store.Store, h session.Hash, now time.Time) store.Entry {
	t.Helper()
	rec := has(t, s, h, now)
	if rec == nil {
		t.Fatalf("no session %s to export", h.Short())
	}
	return store.Entry{Hash: h, Record: rec.Clone(), Identity: "user"}
}

// failingImport is a store whose Import stores the first n entries of a
// batch and then fails, as a store that goes down in the middle does.
type failingImport struct {
	store.Store
	n int
}

var errDown = errors.New("the store went down")

func (s failingImport) Import(ctx context.Context, imp store.Import) ([]store.ImportStatus, error) {
	if len(imp.Entries) <= s.n {
		return s.Store.Import(ctx, imp)
	}
	imp.Entries = imp.Entries[:s.n]
	statuses, err := s.Store.Import(ctx, imp)
	if err != nil {
		return statuses, err
	}
	return statuses, errDown
}

// TestFallbackImportJudgesOld: an import during a move is judged by what
// a request would open under each hash, New's session or else Old's:
// Old's session used since the export is kept (unless overwrite), one
// unchanged is unchanged, an ID Old renewed away stays retired even under
// overwrite, and a hash neither store holds is imported into New. The
// statuses come in the order of the entries; a failure of New in the
// middle returns those of the entries done before it, and a refused
// entry is named by its place in the batch.
func TestFallbackImportJudgesOld(t *testing.T) {
	now := base.Add(time.Second)
	// setup returns the stores and a batch: an unchanged session of Old,
	// one Old changed since, one Old renewed away, one nobody holds, one
	// of New's.
	setup := func(t *testing.T) (oldS, newS store.Store, batch []store.Entry) {
		oldS, newS = openBolt(t, "old.db"), openBolt(t, "new.db")
		same := login(t, oldS, "same-id", "u1", base)
		changed := login(t, oldS, "changed-id", "u2", base)
		renewed := login(t, oldS, "renewed-id", "u3", base)
		gone := login(t, oldS, "gone-id", "u4", base)
		inNew := login(t, newS, "new-id", "u5", base)
		for _, h := range []session.Hash{same, changed, renewed, gone, inNew} {
			s := oldS
			if h == inNew {
				s = newS
			}
			batch = append(batch, entryOf(t, s, h, base))
		}
		// Since the export: a key set, a renewal, the session deleted
		// (no tombstone: it comes back, as documented).
		if _, err := oldS.Update(t.Context(), in(changed, "u2", base, &session.Patch{Set: map[string]string{"cart": "apple"}})); err != nil {
			t.Fatal(err)
		}
		next := session.HashID("renewed-id-2")
		u := in(renewed, "u3", base, nil)
		u.NewHash = &next
		if _, err := oldS.Update(t.Context(), u); err != nil {
			t.Fatal(err)
		}
		if err := oldS.Delete(t.Context(), gone); err != nil {
			t.Fatal(err)
		}
		return oldS, newS, batch
	}
	I, U, K := store.Imported, store.Unchanged, store.Kept
	cases := []struct {
		name      string
		overwrite bool
		want      []store.ImportStatus
		// cart: the value of cart under the changed session afterwards.
		cart string
	}{
		{"without overwrite", false, []store.ImportStatus{U, K, K, I, U}, "apple"},
		{"with overwrite", true, []store.ImportStatus{U, I, K, I, U}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			oldS, newS, batch := setup(t)
			f := &store.Fallback{New: newS, Old: oldS, Identity: "user"}
			got, err := f.Import(t.Context(), store.Import{Entries: batch, Now: now, Overwrite: tc.overwrite})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("statuses = %v, want %v", got, tc.want)
			}
			if rec := has(t, f, batch[1].Hash, now); rec == nil || rec.Values["cart"] != tc.cart {
				t.Errorf("the changed session opens %+v, want cart %q", rec, tc.cart)
			}
			if rec := has(t, f, batch[2].Hash, now); rec == nil || !rec.Forwarded() {
				t.Errorf("the renewed ID opens %+v, want its forward record", rec)
			}
			if rec := has(t, f, batch[3].Hash, now); rec == nil || rec.Values["user"] != "u4" {
				t.Errorf("the imported session opens %+v", rec)
			}
		})
	}

	t.Run("new fails in the middle", func(t *testing.T) {
		oldS, newS, batch := setup(t)
		// New gets the entries that are not retired: same, changed,
		// gone, in new; it stores two and fails.
		f := &store.Fallback{New: failingImport{Store: newS, n: 2}, Old: oldS, Identity: "user"}
		got, err := f.Import(t.Context(), store.Import{Entries: batch, Now: now})
		if !errors.Is(err, errDown) {
			t.Fatalf("err = %v, want the store's failure", err)
		}
		// Same and changed are done, and the retired ID between changed
		// and gone; gone is not.
		if want := []store.ImportStatus{U, K, K}; !slices.Equal(got, want) {
			t.Fatalf("statuses = %v, want %v", got, want)
		}
	})

	t.Run("a refused entry is named by its place", func(t *testing.T) {
		oldS, newS, batch := setup(t)
		bad := batch[4]
		bad.Record = bad.Record.Clone()
		bad.Record.Values["Bad Key"] = "x"
		batch[4] = bad
		f := &store.Fallback{New: newS, Old: oldS, Identity: "user"}
		_, err := f.Import(t.Context(), store.Import{Entries: batch, Now: now})
		var refused *store.ImportError
		if !errors.As(err, &refused) || refused.Index != 4 {
			t.Fatalf("err = %v, want entry 4 refused", err)
		}
		// Nothing was written: not even the copy of the changed session.
		if rec := has(t, newS, batch[1].Hash, now); rec != nil {
			t.Fatalf("a refused batch copied %+v into the new store", rec)
		}
	})
}
