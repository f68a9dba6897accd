package caddysession

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

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
	c.store = held
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
