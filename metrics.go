package caddysession

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// The metrics exist once per process and are registered in the registry of
// every config that has a session handler, so their values survive reloads
// and several handlers share them. No label carries a session ID, a key's
// value or a user name: only the store's backend, an operation, a reason.
var sessionMetrics = struct {
	created, renewed, destroyed, expired, rejected, dropped, unbound, csrfRefused, storeErrors, storeErrorDecisions *prometheus.CounterVec
	storeTime                                                                                                       *prometheus.HistogramVec
}{
	created:             newCounter("created_total", "Sessions created.", "store"),
	renewed:             newCounter("renewed_total", "Sessions given a new ID, on request or by a change of a renew_on key.", "store"),
	destroyed:           newCounter("destroyed_total", "Sessions ended before their expiry, by cause: logout (X-Session-Destroy), logout_all (X-Session-Destroy-All), admin, evicted (max_sessions_per_identity), revoked (X-Session-Revoke).", "store", "cause"),
	expired:             newCounter("expired_total", "Expired sessions removed by the store's sweep (bolt; Redis expires them silently by TTL), or ended by X-Session-Remember: false past the normal timeouts.", "store"),
	rejected:            newCounter("commands_rejected_total", "Upstream responses whose session commands were refused, by reason.", "reason"),
	dropped:             newCounter("commands_dropped_total", "Upstream responses whose session commands were dropped because the session ended or moved on while the request was in flight, by reason: ended, identity_changed, rotated_away.", "reason"),
	unbound:             newCounter("bind_mismatches_total", "Requests that presented a session bound (bind) to another client, and were served as anonymous, by binding: user_agent, ip.", "binding"),
	csrfRefused:         newCounter("csrf_refused_total", "Requests refused as cross-site request forgery (csrf), by reason: cross_site, same_site, other_origin, null_origin, other_referer, no_headers, token_missing, token_wrong, token_twice, token_beyond_max_body.", "reason"),
	storeErrors:         newCounter("store_errors_total", "Store operations that failed.", "store", "operation"),
	storeErrorDecisions: newCounter("store_error_decisions_total", "What on_store_error made of a store failure, by policy (503, anonymous, stale) and decision: unavailable (a 503 for a session that could not be read), anonymous, stale (served from the copy), write_refused (a 503 for commands), touch_skipped, flash_skipped, devices_skipped.", "policy", "decision"),
	storeTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "session", Name: "store_operation_duration_seconds",
		Help:    "Time taken by store operations.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"store", "operation"}),
}

func newCounter(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "caddy", Subsystem: "session", Name: name, Help: help}, labels)
}

// registerMetrics adds the session metrics to a config's registry; a
// second handler in the same config finds them there already.
func registerMetrics(registry *prometheus.Registry) error {
	for _, c := range metricCollectors() {
		err := registry.Register(c)
		var already prometheus.AlreadyRegisteredError
		if err != nil && !errors.As(err, &already) {
			return err
		}
	}
	return nil
}

// metricCollectors are the session metrics, as registerMetrics registers
// them.
func metricCollectors() []prometheus.Collector {
	m := &sessionMetrics
	return []prometheus.Collector{m.created, m.renewed, m.destroyed, m.expired, m.rejected, m.dropped, m.unbound, m.csrfRefused, m.storeErrorDecisions, m.storeTime, m.storeErrors, liveSessions}
}

// instrumented times every operation of a store and counts its failures.
// ErrNotFound and rule errors are answers, not failures.
type instrumented struct {
	store.Store
	backend string
	// The histograms of the operations of every request, looked up once
	// (newInstrumented) rather than per request by their labels; nil ones
	// are looked up when used.
	loadTime, updateTime prometheus.Observer
}

func newInstrumented(s store.Store, backend string) instrumented {
	return instrumented{
		Store: s, backend: backend,
		loadTime:   sessionMetrics.storeTime.WithLabelValues(backend, "load"),
		updateTime: sessionMetrics.storeTime.WithLabelValues(backend, "update"),
	}
}

func (s instrumented) observe(op string, start time.Time, err error) {
	s.observeWith(sessionMetrics.storeTime.WithLabelValues(s.backend, op), op, start, err)
}

func (s instrumented) observeWith(o prometheus.Observer, op string, start time.Time, err error) {
	if o == nil {
		o = sessionMetrics.storeTime.WithLabelValues(s.backend, op)
	}
	o.Observe(time.Since(start).Seconds())
	if err != nil && isFailure(err) {
		sessionMetrics.storeErrors.WithLabelValues(s.backend, op).Inc()
	}
}

// isFailure tells a store's failure from its answers: those of refused
// (stale.go), and a bad cursor.
func isFailure(err error) bool {
	return !refused(err) && !errors.Is(err, store.ErrBadCursor)
}

func (s instrumented) Load(ctx context.Context, h session.Hash, now time.Time, t session.Timeouts) (*session.Record, error) {
	start := time.Now()
	rec, err := s.Store.Load(ctx, h, now, t)
	s.observeWith(s.loadTime, "load", start, err)
	return rec, err
}

func (s instrumented) Update(ctx context.Context, u store.Update) (store.Result, error) {
	start := time.Now()
	res, err := s.Store.Update(ctx, u)
	s.observeWith(s.updateTime, "update", start, err)
	return res, err
}

func (s instrumented) Delete(ctx context.Context, h session.Hash) error {
	start := time.Now()
	err := s.Store.Delete(ctx, h)
	s.observe("delete", start, err)
	return err
}

func (s instrumented) DeleteByIdentity(ctx context.Context, realm, key, value string) (int, error) {
	start := time.Now()
	n, err := s.Store.DeleteByIdentity(ctx, realm, key, value)
	s.observe("delete_by_identity", start, err)
	return n, err
}

func (s instrumented) ListByIdentity(ctx context.Context, realm, key, value string, now time.Time) ([]store.Entry, error) {
	start := time.Now()
	entries, err := s.Store.ListByIdentity(ctx, realm, key, value, now)
	s.observe("list_by_identity", start, err)
	return entries, err
}

func (s instrumented) List(ctx context.Context, cursor string, limit int, now time.Time) ([]store.Entry, string, error) {
	start := time.Now()
	entries, next, err := s.Store.List(ctx, cursor, limit, now)
	s.observe("list", start, err)
	return entries, next, err
}

func (s instrumented) Count(ctx context.Context, now time.Time) (int, error) {
	start := time.Now()
	n, err := s.Store.Count(ctx, now)
	s.observe("count", start, err)
	return n, err
}
