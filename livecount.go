package caddysession

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/store"
)

// liveSessions is the number of live sessions of each store, as the
// dashboard shows it. A scrape reads the gauge and never waits for the
// store: a scrape that finds a store's count older than liveCountInterval
// starts one new count in the background, whose result the next scrape
// shows. So each store is counted at most once a minute, and not at all
// when nothing scrapes.
//
// It is a count rather than a tally of creations and ends kept on the
// side: Redis expires sessions silently (by TTL), and other instances
// create and end sessions in a shared store, so only the store knows how
// many there are.
var liveSessions = &liveCollector{gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Namespace: "caddy", Subsystem: "session", Name: "live_sessions",
	Help: "Live sessions in the store, counted in the background at most once a minute, by backend (store) and the store's name.",
}, []string{"store", "name"})}

// liveCountInterval is how old a count may be before a scrape asks for
// another.
const liveCountInterval = time.Minute

// liveCountTimeout bounds one count.
const liveCountTimeout = 30 * time.Second

// liveCounters holds one liveCounter per store name, shared by the
// handlers of every config of the process, so that reloads neither lose
// the count nor double the counting.
var liveCounters = caddy.NewUsagePool()

// liveCollector is liveSessions: the gauge, and the counts it starts.
type liveCollector struct{ gauge *prometheus.GaugeVec }

func (l *liveCollector) Describe(ch chan<- *prometheus.Desc) { l.gauge.Describe(ch) }

func (l *liveCollector) Collect(ch chan<- prometheus.Metric) {
	liveCounters.Range(func(_, v any) bool {
		v.(*liveCounter).refreshIfOld(l.gauge)
		return true
	})
	l.gauge.Collect(ch)
}

// liveCounter counts one store.
type liveCounter struct {
	backend, name string

	ctx  context.Context
	stop context.CancelFunc // ends a count under way

	mu sync.Mutex
	// holders are the handlers that hold the counter, in the order they
	// did. A count goes through the store of the latest one still held:
	// the counter outlives the config that made it (a reload provisions
	// the new config before it cleans the old one up), and that config's
	// store may be one a later config no longer has, such as a
	// fallback_store that has been removed and the store deleted.
	holders  []liveHolder
	counted  time.Time // when the last count started
	counting bool
	// counted, for tests: called when a count started by refreshIfOld is
	// over.
	onCounted func()
}

func (c *liveCounter) Destruct() error {
	c.stop()
	liveSessions.gauge.DeleteLabelValues(c.backend, c.name)
	return nil
}

// liveHolder is one handler's hold on a liveCounter: the store as the
// handler has it, and its logger.
type liveHolder struct {
	handler *Handler
	store   store.Store
	logger  *zap.Logger
}

// holdLiveCounter registers the handler's store for counting, unless a
// handler of the process has, and makes the counter count through it;
// releaseLiveCounter forgets it when the last one goes.
func (h *Handler) holdLiveCounter() error {
	val, _, err := liveCounters.LoadOrNew(h.storeName, func() (caddy.Destructor, error) {
		ctx, cancel := context.WithCancel(context.Background())
		return &liveCounter{backend: h.backend, name: h.storeName, ctx: ctx, stop: cancel}, nil
	})
	if err != nil {
		return err
	}
	c := val.(*liveCounter)
	c.mu.Lock()
	c.holders = append(c.holders, liveHolder{handler: h, store: h.store, logger: h.logger})
	c.mu.Unlock()
	h.liveCounter = c
	return nil
}

func (h *Handler) releaseLiveCounter() {
	c := h.liveCounter
	if c == nil {
		return
	}
	h.liveCounter = nil
	c.mu.Lock()
	c.holders = slices.DeleteFunc(c.holders, func(l liveHolder) bool { return l.handler == h })
	c.mu.Unlock()
	_, _ = liveCounters.Delete(h.storeName)
}

// latest returns the holder whose store a count goes through: the
// latest; ok is false once none holds the counter. c.mu is held.
func (c *liveCounter) latest() (l liveHolder, ok bool) {
	if len(c.holders) == 0 {
		return liveHolder{}, false
	}
	return c.holders[len(c.holders)-1], true
}

// refreshIfOld starts a count in the background if the last one started
// more than liveCountInterval ago and none is under way.
func (c *liveCounter) refreshIfOld(gauge *prometheus.GaugeVec) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counting || now.Sub(c.counted) < liveCountInterval {
		return
	}
	c.counting, c.counted = true, now
	go func() {
		c.refresh(gauge)
		c.mu.Lock()
		c.counting = false
		done := c.onCounted
		c.mu.Unlock()
		if done != nil {
			done()
		}
	}()
}

// refresh counts the store and sets the gauge; a failed count leaves the
// gauge as it was (the store's error is counted with the others).
func (c *liveCounter) refresh(gauge *prometheus.GaugeVec) {
	c.mu.Lock()
	l, ok := c.latest()
	c.mu.Unlock()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, liveCountTimeout)
	defer cancel()
	n, err := l.store.Count(ctx, clock.Now())
	if err != nil {
		if c.ctx.Err() == nil {
			l.logger.Warn("counting the live sessions of the store", zap.String("store", c.name), zap.Error(err))
		}
		return
	}
	gauge.WithLabelValues(c.backend, c.name).Set(float64(n))
}
