package main

import (
	"fmt"
	"time"
)

// redisCallsOutcome is case 6: what a read request costs Redis, counted
// by Redis itself, over a hot set of sessions on a site whose
// touch_interval is short, so that the run spans several keep-alive
// writes of every session and they are counted with the reads.
type redisCallsOutcome struct {
	sessions int
	touch    time.Duration
	res      result
	calls    commandCalls // made during the run, by command
	counted  int64        // ZCOUNTs of the live-session counts settled before the run (settleLiveCounts)
	updates  float64      // the store's writes, from Caddy's metrics
	err      error
}

func caseRedisCalls(cfg config, e *env) *redisCallsOutcome {
	logf("case 6, Redis calls per read: %d sessions, touch_interval %s, %s of reads, %d clients", cfg.hot, cfg.callsTouch, cfg.callsTime, cfg.conns)
	o := &redisCallsOutcome{sessions: cfg.hot, touch: cfg.callsTouch}
	ids, err := loginMany(e.redisCalls, "sid", cfg.hot)
	if err != nil {
		o.err = fmt.Errorf("logging in through the calls site: %w", err)
		return o
	}
	if user, err := whoami(httpClient, e.redisCalls, ids[0]); err != nil || user == "" {
		o.err = fmt.Errorf("the calls site did not forward its session (user %q): %v", user, err)
		return o
	}
	t := target{e.redisCalls, requestTo(e.redisCalls, "/read", "sid", ids, false)}
	// The warm-up's reads fill whatever cache the store keeps; the
	// measurement is of the steady state that follows.
	run(t, cfg.conns, cfg.warmup)
	if o.counted, err = settleLiveCounts(e); err != nil {
		o.err = err
		return o
	}
	before, err := redisCommandCalls(e.redisAddr)
	if err != nil {
		o.err = err
		return o
	}
	metricsBefore := mustScrape(e.admin)
	o.res = run(t, cfg.conns, cfg.callsTime)
	// Redis's counters before the scrape: a run longer than a minute
	// would have the scrape start the next live-session counts.
	after, err := redisCommandCalls(e.redisAddr)
	if err != nil {
		o.err = err
		return o
	}
	metricsAfter := mustScrape(e.admin)
	o.calls = after.since(before)
	o.updates = delta(metricsBefore, metricsAfter, opSeries("update", "redis"))
	if o.res.errors > 0 || o.res.bad > 0 {
		logf("redis-calls: %d connection errors, %d responses not 200", o.res.errors, o.res.bad)
	}
	logf("redis-calls: %d requests, %d Redis calls, %.0f store writes", o.res.requests, o.calls.total(), o.updates)
	return o
}

// perRead is the Redis calls per read request.
func (o *redisCallsOutcome) perRead() float64 {
	return float64(o.calls.total()) / float64(max(o.res.requests, 1))
}

// intervals is how many touch intervals the run spanned.
func (o *redisCallsOutcome) intervals() float64 {
	return o.res.elapsed.Seconds() / o.touch.Seconds()
}

// settleLiveCounts scrapes Caddy's /metrics, which starts the count of
// the live_sessions gauge for every store not counted in the last minute
// (4,096 ZCOUNTs for a Redis store, one per index bucket), and waits for
// those counts to end, returning the ZCOUNTs they made. They are the
// gauge's, once a minute while something scrapes, whatever the traffic,
// and not the reads': started by the run's own first scrape, they fell
// inside its window, and were most of its calls.
func settleLiveCounts(e *env) (int64, error) {
	start, err := redisCommandCalls(e.redisAddr)
	if err != nil {
		return 0, err
	}
	mustScrape(e.admin)
	last, still := start["zcount"], 0
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		now, err := redisCommandCalls(e.redisAddr)
		if err != nil {
			return 0, err
		}
		if now["zcount"] != last {
			last, still = now["zcount"], 0
		} else if still++; still == 5 {
			return last - start["zcount"], nil
		}
	}
	return 0, fmt.Errorf("the live-session counts that a scrape of /metrics started were still running after 30s")
}
