package main

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// The report's section on Redis: the numbers of cases 6 and 7, the
// memory measured around the login storm, and the Redis ratios of cases 1
// and 3 beside them.

func (r *report) hasRedisSection() bool {
	return !r.env.redisPending && (r.calls != nil || r.lag != nil || r.redisMemory != nil)
}

func (r *report) redisSection() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n### 6. Redis: commands per read, memory per session, invalidation between two Caddys\n\n")
	b.WriteString("| measure | result | target |\n|---|---|---|\n")
	if bolt, redis := findBackend(r.read, "bolt"), findBackend(r.read, "redis"); bolt != nil && redis != nil {
		fmt.Fprintf(&b, "| read path, throughput ratio (case 1), Redis beside bolt | Redis %.3f, bolt %.3f | |\n",
			redis.rate()/baseline(r.read, redis).rate(), bolt.rate()/baseline(r.read, bolt).rate())
	}
	if redis := findBackend(r.login, "redis"); redis != nil {
		fmt.Fprintf(&b, "| login storm, throughput ratio (case 3), Redis | %.3f (%s sessions/s) | |\n",
			redis.rate()/baseline(r.login, redis).rate(), thousands(int(redis.created/redis.total.elapsed.Seconds())))
	}
	var notes []string
	if c := r.calls; c != nil {
		if c.err != nil {
			fmt.Fprintf(&b, "| Redis commands per read request | failed: %v | ≤ 0.05 |\n", c.err)
		} else {
			notes = append(notes, c.rows(&b, r.cfg.conns))
		}
	}
	if m := r.redisMemory; m != nil {
		switch {
		case m.err != nil:
			fmt.Fprintf(&b, "| Redis memory per session after the login storm | failed: %v | ≤ 450 B |\n", m.err)
		case m.sessions == 0:
			fmt.Fprintf(&b, "| Redis memory per session after the login storm | no sessions created | ≤ 450 B |\n")
		default:
			per := m.perSession()
			fmt.Fprintf(&b, "| Redis memory per session after the login storm (case 3: one key, a distinct short user, never read) | %s B (%s sessions, %.2f Redis keys each; used_memory %s → %s) | %s |\n",
				thousands(int(math.Round(per))), thousands(int(m.sessions)), float64(m.keys)/m.sessions, mib(m.before), mib(m.after), verdict("≤ 450 B", per <= 450))
		}
	}
	for _, n := range notes {
		b.WriteString("\n" + n + "\n")
	}
	if r.lag != nil {
		b.WriteString(r.lag.table())
	}
	return b.String()
}

// rows writes the calls case's rows, and returns its note on commands.
func (c *redisCallsOutcome) rows(b *strings.Builder, conns int) string {
	per := c.perRead()
	spans := c.intervals()
	readsPer := float64(c.res.requests) / float64(c.sessions) / spans
	fmt.Fprintf(b, "| Redis commands per read request (case 6: %d sessions read again and again for %s, %.1f touch_intervals of %s, %d clients; keep-alive writes included) | %.3f (%s calls for %s requests; %s reads per session per touch_interval) | %s |\n",
		c.sessions, c.res.elapsed.Round(100*time.Millisecond), spans, c.touch, conns,
		per, thousands(int(c.calls.total())), thousands(c.res.requests), thousands(int(readsPer)), verdict("≤ 0.05", per <= 0.05))
	writes := c.updates / float64(c.sessions)
	// As in case 5: a session's first write may come at once, so a run of
	// d allows floor(d/interval)+1 writes per session.
	allowed := math.Floor(spans) + 1
	fmt.Fprintf(b, "| keep-alive writes per session per touch_interval (case 6) | %.2f (%.2f writes per session in %.1f intervals; %.0f allowed) | %s |\n",
		writes/spans, writes, spans, allowed, verdict("at most one write per session per touch_interval", writes <= allowed))
	note := "Redis commands per read request in case 6, by command: " + c.calls.perRequest(c.res.requests) + "."
	if c.counted > 0 {
		note += fmt.Sprintf(" Not among them: the count behind the live_sessions gauge, which a scrape of /metrics starts at most once a minute for each store, whatever the traffic: %s ZCOUNTs (4,096 for each Redis store), let end before the run.", thousands(int(c.counted)))
	}
	if c.res.errors > 0 || c.res.bad > 0 {
		note += fmt.Sprintf(" Errors: %d connection errors, %d responses other than 200 (of %d).", c.res.errors, c.res.bad, c.res.requests)
	}
	return note
}

// perRequest lists the commands, most called first, each per request.
func (c commandCalls) perRequest(requests int) string {
	names := make([]string, 0, len(c))
	for name := range c {
		names = append(names, name)
	}
	slices.SortFunc(names, func(x, y string) int { return cmp.Or(cmp.Compare(c[y], c[x]), cmp.Compare(x, y)) })
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s %.4f", strings.ToUpper(name), float64(c[name])/float64(max(requests, 1)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func (o *lagOutcome) table() string {
	var b strings.Builder
	b.WriteString("\nInvalidation (case 7): two Caddys, A and B, on one Redis with one key_prefix and realm. Each try logs in on A, reads the session twice on B, ends it on A, then asks B with the old cookie, again and again, until B refuses it. ")
	if o.err != nil {
		fmt.Fprintf(&b, "**Failed**: %v.\n", o.err)
		return b.String()
	}
	fmt.Fprintf(&b, "The lag is from the end of A's response to the end of B's first refusal, so it includes that request to B: %s at the median.\n\n", ms(o.pollMedian()))
	fmt.Fprintf(&b, "| A ends the session by | tries | refused at B's first request | lag p50 | lag p99 | lag max | still accepted after %s | errors |\n", o.timeout)
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	var errs []string
	for _, k := range o.kinds {
		measured := len(k.lags) + k.failures
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %d |\n",
			lagKindText[k.name], thousands(k.tries), thousands(measured-k.staleTries),
			ms(k.percentile(50)), ms(k.percentile(99)), ms(k.percentile(100)), thousands(k.failures), k.errors)
		if k.firstErr != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", k.name, k.firstErr))
		}
	}
	if len(errs) > 0 {
		b.WriteString("\nFirst error of each kind: " + strings.Join(errs, "; ") + ".\n")
	}
	return b.String()
}

// findBackend returns the outcome of the session variant on backend.
func findBackend(all []*outcome, backend string) *outcome {
	for _, o := range all {
		if o.backend == backend && !o.pending {
			return o
		}
	}
	return nil
}
