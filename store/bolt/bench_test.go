package bolt

import (
	"fmt"
	"maps"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// The benchmarks of the store's share of a request: the lookup of a read,
// the touch of a keep-alive, and the creation of a login, alone and under
// concurrency with durable commits. `go test -run='^$' -bench=. -benchmem ./store/bolt/`

// benchValues is a typical small session: 3 keys, about 100 bytes.
var benchValues = map[string]string{
	"user":  "user-000042@example.com",
	"roles": "admin,editor,viewer",
	"cart":  "sku-1001,sku-1002,sku-1003,sku-1004,sku-1005,sku-1006",
}

// benchStore opens a store holding n sessions and returns their hashes.
// The records are written with NoSync, in one Import; sync sets how the
// store is then opened for the benchmark.
func benchStore(b *testing.B, n int, noSync bool) (*Store, []session.Hash) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "sessions.db")
	s, err := Open(path, Options{SweepInterval: -1, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	hashes := make([]session.Hash, n)
	entries := make([]store.Entry, n)
	for i := range entries {
		hashes[i] = session.HashID(fmt.Sprintf("bench-%d", i))
		rec := timeouts.NewRecord(now)
		rec.Values = maps.Clone(benchValues)
		rec.Values["user"] = fmt.Sprintf("user-%06d@example.com", i)
		entries[i] = store.Entry{Hash: hashes[i], Record: rec}
	}
	if err := s.Put(b.Context(), entries, "user"); err != nil {
		b.Fatal(err)
	}
	if !noSync {
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		if s, err = Open(path, Options{SweepInterval: -1}); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() { s.Close() })
	return s, hashes
}

func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			s, hashes := benchStore(b, n, true)
			now := time.Now()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i = (i + 7919) % len(hashes)
				if _, err := s.Load(b.Context(), hashes[i], now, timeouts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLoadParallel(b *testing.B) {
	s, hashes := benchStore(b, 10_000, true)
	now := time.Now()
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(7919) % int64(len(hashes)))
			if _, err := s.Load(b.Context(), hashes[i], now, timeouts); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkTouch is the keep-alive write: an update with no patch, which
// moves the idle deadline (and so the expiry index entry).
func BenchmarkTouch(b *testing.B) {
	s, hashes := benchStore(b, 10_000, true)
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i = (i + 7919) % len(hashes)
		now = now.Add(time.Millisecond)
		_, err := s.Update(b.Context(), store.Update{
			Hash: hashes[i], HasHash: true, Identity: "user",
			Now: now, Timeouts: timeouts, Limits: limits,
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func createUpdate(i int64, now time.Time) store.Update {
	h := session.HashID(fmt.Sprintf("login-%d", i))
	return store.Update{
		NewHash:  &h,
		Patch:    &session.Patch{Set: map[string]string{"user": fmt.Sprintf("user-%06d@example.com", i)}},
		Identity: "user", Now: now, Timeouts: timeouts, Limits: limits,
	}
}

// BenchmarkCreate is a login: a new session with one key, one at a time,
// without fsync, so it measures the store's own work.
func BenchmarkCreate(b *testing.B) {
	s, _ := benchStore(b, 1_000, true)
	now := time.Now()
	b.ReportAllocs()
	var i int64
	for b.Loop() {
		i++
		if _, err := s.Update(b.Context(), createUpdate(i, now)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateParallelSync is a login storm: 64 goroutines creating
// sessions with durable commits (fsync on), as Caddy does by default. Its
// ns/op is the inverse of the sessions per second the file sustains.
func BenchmarkCreateParallelSync(b *testing.B) {
	s, _ := benchStore(b, 1_000, false)
	now := time.Now()
	var next atomic.Int64
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Update(b.Context(), createUpdate(next.Add(1), now)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	rec := timeouts.NewRecord(time.Now())
	rec.Values = maps.Clone(benchValues)
	b.ReportAllocs()
	for b.Loop() {
		_ = encode(rec, "user")
	}
}

func BenchmarkDecode(b *testing.B) {
	rec := timeouts.NewRecord(time.Now())
	rec.Values = maps.Clone(benchValues)
	v := encode(rec, "user")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := decode(v); err != nil {
			b.Fatal(err)
		}
	}
}
