package redis

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/storetest"
)

func TestMetadata(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		storetest.Metadata(t, func(t *testing.T) store.Store {
			s := b.newStore(t, Options{})
			inspector := b.inspector(t, s)
			flush(t, inspector)
			return checkedStore{Store: s, inspector: inspector, t: t}
		}, putRecord)
	})
}

// putRecord is storetest.Put: the writes of an outcome that stores rec,
// as a creation's are.
func putRecord(t *testing.T, st store.Store, hash session.Hash, rec *session.Record, identity string, now time.Time) {
	t.Helper()
	s := st.(checkedStore).Store
	o := store.Outcome{At: hash, Write: rec.Clone(), WriteAt: hash, Identity: identity}
	if err := s.write(t.Context(), s.plan(store.Update{Now: now}, o, nil, "")); err != nil {
		t.Fatal(err)
	}
}

// metaRecord is a session with every kind of metadata.
func metaRecord() *session.Record {
	rec := timeouts.NewRecord(base)
	rec.Values = map[string]string{"user": "alice", "cart": "3"}
	rec.Realm = "shop"
	rec.Remembered = true
	rec.UserAgent = "curl/8.5.0"
	rec.Flash = map[string]string{"notice": "Saved.", "user": "a flash value"}
	return rec
}

// previousValues is what the decoder of the previous version (main at
// c069f78, layout 1) makes the values of a session of: every field that
// does not start with ':'. It refused only a hash whose ":v" is not 1.
func previousValues(fields map[string]string) (map[string]string, bool) {
	values := map[string]string{}
	for k, v := range fields {
		if !strings.HasPrefix(k, ":") {
			values[k] = v
		}
	}
	return values, fields[":v"] == "1"
}

// TestMetaFields pins the fields of the metadata, which stored sessions
// keep, and shows that the previous version reads a session that has
// them as one without: no flash value among its keys.
func TestMetaFields(t *testing.T) {
	plain := metaRecord()
	plain.Remembered, plain.UserAgent, plain.Flash = false, "", nil
	tests := []struct {
		name string
		rec  *session.Record
		meta map[string]string
	}{
		{"none", plain, map[string]string{}},
		{"all", metaRecord(), map[string]string{
			":remembered": "1", ":user-agent": "curl/8.5.0", ":flash:notice": "Saved.", ":flash:user": "a flash value",
		}},
	}
	// The reserved fields of the previous version, which the metadata
	// must not reuse.
	previous := []string{":v", ":created", ":seen", ":idle", ":absolute", ":identity", ":rev", ":realm", ":next"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fields := hashOf(encode(tc.rec, "user"))
			meta := map[string]string{}
			for k, v := range fields {
				if strings.HasPrefix(k, ":") && !slices.Contains(previous, k) {
					meta[k] = v
				}
			}
			if !maps.Equal(meta, tc.meta) {
				t.Fatalf("metadata fields %v, want %v", meta, tc.meta)
			}
			got, _, err := decode(fields)
			if err != nil || got.Remembered != tc.rec.Remembered || got.UserAgent != tc.rec.UserAgent || !maps.Equal(got.Flash, tc.rec.Flash) {
				t.Fatalf("decode = %+v, %v; want the metadata of %+v", got, err, tc.rec)
			}
			if tc.rec.Flash == nil && got.Flash != nil {
				t.Fatalf("decode of a session without flash values: Flash %#v, want nil", got.Flash)
			}
			values, ok := previousValues(fields)
			if !ok || !maps.Equal(values, tc.rec.Values) {
				t.Fatalf("the previous version reads %v (layout accepted: %v), want %v", values, ok, tc.rec.Values)
			}
		})
	}
}

func TestMetaChanges(t *testing.T) {
	stored := metaRecord()
	tests := []struct {
		name     string
		change   func(r *session.Record)
		set, del []string
	}{
		{"none", func(*session.Record) {}, nil, nil},
		{"keys and times only", func(r *session.Record) { r.Values["cart"] = "4"; r.LastSeen = r.LastSeen.Add(time.Minute) }, nil, nil},
		{"forgotten", func(r *session.Record) { r.Remembered = false }, nil, []string{":remembered"}},
		{"user agent", func(r *session.Record) { r.UserAgent = "other" }, []string{":user-agent", "other"}, nil},
		{"user agent dropped", func(r *session.Record) { r.UserAgent = "" }, nil, []string{":user-agent"}},
		{"a flash value consumed, another set", func(r *session.Record) {
			delete(r.Flash, "notice")
			r.Flash["new"] = "x"
		}, []string{":flash:new", "x"}, []string{":flash:notice"}},
		{"a flash value changed", func(r *session.Record) { r.Flash["user"] = "y" }, []string{":flash:user", "y"}, nil},
		{"all flash values consumed", func(r *session.Record) { r.Flash = nil }, nil, []string{":flash:notice", ":flash:user"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := stored.Clone()
			tc.change(rec)
			set, del := metaChanges(stored, rec)
			if !slices.Equal(set, tc.set) || !slices.Equal(del, tc.del) {
				t.Fatalf("metaChanges = %q, %q; want %q, %q", set, del, tc.set, tc.del)
			}
		})
	}
	// Remembered again, from a session that was not.
	plain := stored.Clone()
	plain.Remembered = false
	if set, del := metaChanges(plain, stored); !slices.Equal(set, []string{":remembered", "1"}) || del != nil {
		t.Fatalf("metaChanges to remembered = %q, %q", set, del)
	}
}

// TestMetaWrittenInPlace: an outcome in place that changes the metadata
// (as consuming a flash value will) writes just that, under the guard of
// the session's read, and leaves the rest of the hash as it was.
func TestMetaWrittenInPlace(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, b backend) {
		s := b.open(t)
		h := session.HashID("meta")
		st := checkedStore{Store: s, inspector: s, t: t}
		putRecord(t, st, h, metaRecord(), "user", base)
		u := store.Update{Hash: h, HasHash: true, Identity: "user", Seen: "alice", Realm: "shop",
			Now: base.Add(time.Minute), Timeouts: timeouts, Limits: limits}
		c, err := s.modify(t.Context(), h, func(fields map[string]string) (*change, error) {
			stored, identity, err := decode(fields)
			if err != nil {
				return nil, err
			}
			o := store.Decide(u, h, stored, 0)
			if !o.InPlace {
				t.Fatalf("a touch is not in place: %+v", o)
			}
			delete(o.Write.Flash, "notice")
			o.Write.Remembered = false
			return s.plan(u, o, stored, identity), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.metaSet, nil) || !slices.Equal(c.metaDel, []string{":remembered", ":flash:notice"}) {
			t.Fatalf("the change sets %q and deletes %q of the metadata", c.metaSet, c.metaDel)
		}
		fields := hgetall(t, s, s.SessionKey(h))
		if _, ok := fields[":remembered"]; ok {
			t.Errorf(":remembered is still there: %v", fields)
		}
		if _, ok := fields[":flash:notice"]; ok {
			t.Errorf(":flash:notice is still there: %v", fields)
		}
		if fields[":flash:user"] != "a flash value" || fields[":user-agent"] != "curl/8.5.0" || fields["cart"] != "3" || fields[":rev"] != "2" {
			t.Errorf("the rest of the session changed: %v", fields)
		}
		rec, err := s.Load(t.Context(), h, base.Add(time.Minute), timeouts)
		if err != nil || rec.Remembered || !maps.Equal(rec.Flash, map[string]string{"user": "a flash value"}) {
			t.Fatalf("Load after the write: %+v, %v", rec, err)
		}
		checkConsistent(t, s)
	})
}

func TestMetaCorrupt(t *testing.T) {
	fields := hashOf(encode(metaRecord(), "user"))
	fields[":remembered"] = "yes"
	if _, _, err := decode(fields); err == nil {
		t.Fatal("decode of :remembered yes succeeded, want an error")
	}
}
