package caddysession

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/store"
)

// heldCount is a store whose Count waits until release is closed, and
// counts its calls.
type heldCount struct {
	store.Store
	calls   atomic.Int32
	release chan struct{}
}

func (s *heldCount) Count(ctx context.Context, now time.Time) (int, error) {
	s.calls.Add(1)
	<-s.release
	return s.Store.Count(ctx, now)
}

// TestLiveSessions: a scrape starts one count of the store in the
// background, however many scrapes come while it runs or within the
// interval after, and the gauge shows what it counted.
func TestLiveSessions(t *testing.T) {
	h, _ := benchHandlerWith(t, &Handler{})
	t.Cleanup(func() { _ = h.Cleanup() })
	v, ok := liveCounters.References(h.storeName)
	if !ok || v != 1 {
		t.Fatalf("the store is not registered for counting: %d, %v", v, ok)
	}
	held := &heldCount{Store: h.store, release: make(chan struct{})}
	c := counterOf(t, h.storeName)
	c.mu.Lock()
	c.holders[len(c.holders)-1].store = held
	c.mu.Unlock()
	gauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_live"}, []string{"store", "name"})

	counted := make(chan struct{})
	c.mu.Lock()
	c.onCounted = func() { close(counted) }
	c.mu.Unlock()

	c.refreshIfOld(gauge) // starts a count, which waits
	c.refreshIfOld(gauge) // one is under way: no other
	close(held.release)
	<-counted
	c.refreshIfOld(gauge) // within the interval: no other
	if n := held.calls.Load(); n != 1 {
		t.Fatalf("%d counts, want 1", n)
	}
	var m dto.Metric
	if err := gauge.WithLabelValues("bolt", h.storeName).Write(&m); err != nil || m.GetGauge().GetValue() != 1 {
		t.Fatalf("the gauge shows %v live sessions (%v), want 1", m.GetGauge().GetValue(), err)
	}
}

// counterOf is the liveCounter of the store named name.
func counterOf(t *testing.T, name string) *liveCounter {
	t.Helper()
	var found *liveCounter
	liveCounters.Range(func(k, v any) bool {
		if k == name {
			found = v.(*liveCounter)
		}
		return true
	})
	if found == nil {
		t.Fatalf("no counter for %s", name)
	}
	return found
}

// liveCountStore is a store whose Count says which it is.
type liveCountStore struct {
	store.Store
	n int
}

func (s liveCountStore) Count(context.Context, time.Time) (int, error) { return s.n, nil }

// TestLiveCounterCountsThroughTheLatestHolder: the counter of a store
// outlives the config that made it, across reloads. Each count goes
// through the store as the latest handler still holding it has it: the
// new config's once it is provisioned, the old one's again if the new
// one is cleaned up (a reload that failed after provisioning), never a
// released one's.
func TestLiveCounterCountsThroughTheLatestHolder(t *testing.T) {
	name := "test:" + t.Name()
	handlers := map[string]*Handler{}
	for i, id := range []string{"a", "b", "c"} {
		handlers[id] = &Handler{storeName: name, backend: "test", store: liveCountStore{n: i + 1}, logger: zap.NewNop()}
	}
	steps := []struct {
		hold, release string
		want          float64 // what the count shows afterwards
	}{
		{hold: "a", want: 1},
		{hold: "b", want: 2},
		{release: "b", want: 1},
		{hold: "c", want: 3},
		{release: "a", want: 3},
	}
	gauge := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_live"}, []string{"store", "name"})
	for i, st := range steps {
		if st.hold != "" {
			if err := handlers[st.hold].holdLiveCounter(); err != nil {
				t.Fatal(err)
			}
		}
		if st.release != "" {
			handlers[st.release].releaseLiveCounter()
		}
		counterOf(t, name).refresh(gauge)
		var m dto.Metric
		if err := gauge.WithLabelValues("test", name).Write(&m); err != nil || m.GetGauge().GetValue() != st.want {
			t.Fatalf("step %d: the count shows %v (%v), want %v", i, m.GetGauge().GetValue(), err, st.want)
		}
	}
	handlers["c"].releaseLiveCounter()
	if _, ok := liveCounters.References(name); ok {
		t.Fatal("the counter outlived its last holder")
	}
}
