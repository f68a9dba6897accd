package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// variant is one way of serving a case's requests.
type variant struct {
	name    string
	target  target
	admin   string // the admin address of the Caddy serving it, for its store counters
	backend string // the store's metrics label; "" for none
	pending bool   // not measurable in this run (no Redis store yet)
	// sessions, if set, counts the sessions of a store without metrics.
	sessions func() (int, error)
	// diagnostic marks a variant that explains another one's ratio and
	// has no target of its own.
	diagnostic bool
}

// outcome is what a variant measured over all the rounds of a case.
type outcome struct {
	variant
	total   result
	rates   []float64 // requests per second, per round
	updates float64   // store writes (update operations)
	loads   float64   // store reads
	created float64   // sessions created
	cpu     cpuTime   // the servers' CPU during the turns, in the one-CPU mode (steal.go)
}

func (o *outcome) rate() float64 { return o.total.rate() }

// interleave runs the variants of a case in turns: every round gives each
// variant one turn of cfg.round, in an order rotated from round to round,
// so that a disturbance of the shared machine is spread over the variants
// instead of falling on one. The store counters of each turn are read
// before and after it, so they are the turn's own, and so is the time of
// CPU cpu (the servers' CPU in the one-CPU mode; -1: none).
func interleave(cfg config, name string, vs []variant, conns, cpu int) []*outcome {
	out := make([]*outcome, len(vs))
	for i, v := range vs {
		out[i] = &outcome{variant: v}
	}
	for _, v := range vs {
		if !v.pending {
			run(v.target, conns, cfg.warmup)
		}
	}
	for r := range cfg.rounds {
		for j := range vs {
			o := out[(j+r)%len(vs)]
			if o.pending {
				continue
			}
			before := mustScrape(o.admin)
			n0 := o.countSessions()
			t0, timed := readCPUTime(cpu)
			res := run(o.target, conns, cfg.round)
			if t1, ok := readCPUTime(cpu); ok && timed {
				t := t1.minus(t0)
				o.cpu.total += t.total
				o.cpu.stolen += t.stolen
				o.cpu.idle += t.idle
			}
			after := mustScrape(o.admin)
			o.created += float64(o.countSessions() - n0)
			o.total.merge(res)
			o.rates = append(o.rates, res.rate())
			if o.backend != "" {
				o.updates += delta(before, after, opSeries("update", o.backend))
				o.loads += delta(before, after, opSeries("load", o.backend))
				o.created += delta(before, after, createdSeries(o.backend))
			}
		}
		logf("%s: round %d of %d done", name, r+1, cfg.rounds)
	}
	for _, o := range out {
		if o.total.errors > 0 || o.total.bad > 0 {
			logf("%s, %s: %d connection errors, %d responses not 200", name, o.name, o.total.errors, o.total.bad)
		}
	}
	return out
}

func (v variant) countSessions() int {
	if v.sessions == nil {
		return 0
	}
	n, err := v.sessions()
	if err != nil {
		logf("counting the sessions of %s: %v", v.name, err)
	}
	return n
}

func mustScrape(admin string) counters {
	if admin == "" {
		return counters{}
	}
	c, err := scrape(admin)
	if err != nil {
		logf("reading metrics from %s: %v", admin, err)
		return counters{}
	}
	return c
}

func caseRead(cfg config, e *env) []*outcome {
	logf("case 1, read path: %d rounds of %s per variant, %d clients", cfg.rounds, cfg.round, cfg.conns)
	return interleave(cfg, "read", e.ofMode(readVariants(e)), cfg.conns, e.timedCPU())
}

// ofMode keeps the variants the mode measures: in the one-CPU mode, the
// plain proxies, the diagnostic row, bolt and Apache (no Redis, which is
// not pinned).
func (e *env) ofMode(vs []variant) []variant {
	if !e.oneCPU {
		return vs
	}
	var out []variant
	for _, v := range vs {
		if v.backend != "redis" {
			out = append(out, v)
		}
	}
	return out
}

// readVariantNamed picks a read variant by a part of its name, so that a
// row added to the case cannot make a profile measure its neighbour (the
// diagnostic rows once shifted "read-bolt" onto Caddy's own directives).
func readVariantNamed(e *env, part string) variant {
	for _, v := range readVariants(e) {
		if strings.Contains(v.name, part) {
			return v
		}
	}
	panic("no read variant named " + part)
}

func readVariants(e *env) []variant {
	return []variant{
		{name: "Caddy reverse_proxy", target: target{e.plain, requestTo(e.plain, "/read", "sid", e.boltIDs, false)}},
		{name: "Caddy reverse_proxy, the client sending 3 headers as large as the session's", diagnostic: true,
			target: target{e.plain, requestWith(e.plain, "/read", "sid", e.boltIDs, false, carried)}},
		{name: "Caddy reverse_proxy, Caddy adding headers as large as the session's (request_header, header)", diagnostic: true,
			target: target{e.adding, requestTo(e.adding, "/read", "sid", e.boltIDs, false)}},
		{name: "Caddy session (bolt) + reverse_proxy", target: target{e.bolt, requestTo(e.bolt, "/read", "sid", e.boltIDs, false)}, admin: e.admin, backend: "bolt"},
		{name: "Caddy session (Redis) + reverse_proxy", target: target{e.redis, requestTo(e.redis, "/read", "sid", e.redisIDs, false)}, admin: e.admin, backend: "redis", pending: e.redis == ""},
		{name: "Apache mod_proxy", target: target{e.apachePlain, requestTo(e.apachePlain, "/read", "session", e.apacheIDs, false)}},
		{name: "Apache mod_session_dbd + mod_proxy", target: target{e.apacheSession, requestTo(e.apacheSession, "/read", "session", e.apacheIDs, false)}},
	}
}

func caseAnonymous(cfg config, e *env) []*outcome {
	logf("case 2, anonymous: %d rounds of %s per variant, %d clients", cfg.rounds, cfg.round, cfg.conns)
	return interleave(cfg, "anonymous", []variant{
		{name: "Caddy reverse_proxy", target: target{e.plain, requestTo(e.plain, "/read", "", nil, false)}},
		{name: "Caddy session (bolt) + reverse_proxy", target: target{e.bolt, requestTo(e.bolt, "/read", "", nil, false)}, admin: e.admin, backend: "bolt"},
	}, cfg.conns, e.timedCPU())
}

// caseLogin runs the login storm, and measures Redis's memory around it
// when there is a Redis store.
func caseLogin(cfg config, e *env) ([]*outcome, *redisMemory) {
	logf("case 3, login storm: %d rounds of %s per variant, %d clients", cfg.rounds, cfg.round, cfg.logins)
	var out []*outcome
	storm := func() { out = interleave(cfg, "login", e.ofMode(loginVariants(e)), cfg.logins, e.timedCPU()) }
	if e.redisAddr == "" {
		storm()
		return out, nil
	}
	mem := measureRedisMemory(e, storm)
	return out, mem
}

func loginVariants(e *env) []variant {
	to := func(addr string) target {
		if e.oneCPU {
			// The upstreams inside the servers name the user after the
			// request's number.
			return target{addr, requestLogin(addr, "/login")}
		}
		return target{addr, requestTo(addr, "/login", "", nil, false)}
	}
	return []variant{
		{name: "Caddy reverse_proxy", target: to(e.plain)},
		{name: "Caddy session (bolt, fsync) + reverse_proxy", target: to(e.login), admin: e.admin, backend: "bolt"},
		{name: "Caddy session (Redis) + reverse_proxy", target: to(e.redis), admin: e.admin, backend: "redis", pending: e.redis == ""},
		{name: "Apache mod_proxy", target: to(e.apachePlain)},
		{name: "Apache mod_session_dbd + mod_proxy", target: to(e.apacheSession),
			sessions: func() (int, error) { return apacheSessions(e) }},
	}
}

// apacheSessions counts the sessions in Apache's database.
func apacheSessions(e *env) (int, error) {
	out, err := command("sqlite3", e.apacheDB, "SELECT count(*) FROM session")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(out)
}

// scaleOutcome is case 4: the read path over a small and a large store.
type scaleOutcome struct {
	outcomes          []*outcome
	smallSize         int64
	largeSize         int64
	memIdle, memAfter memory
}

func caseScale(cfg config, e *env) *scaleOutcome {
	logf("case 4, scale: %d rounds of %s per variant, %d clients, sessions drawn at random from a hot set of %d", cfg.rounds, cfg.round, cfg.conns, len(e.smallIDs))
	s := &scaleOutcome{}
	s.memIdle, _ = processMemory(e.scaleCaddy.cmd.Process.Pid)
	s.outcomes = interleave(cfg, "scale", scaleVariants(cfg, e), cfg.conns, e.timedCPU())
	s.memAfter, _ = processMemory(e.scaleCaddy.cmd.Process.Pid)
	if fi, err := os.Stat(e.smallDB); err == nil {
		s.smallSize = fi.Size()
	}
	if fi, err := os.Stat(e.largeDB); err == nil {
		s.largeSize = fi.Size()
	}
	return s
}

func scaleVariants(cfg config, e *env) []variant {
	return []variant{
		{name: "1,000 sessions stored", target: target{e.scaleSmall, requestTo(e.scaleSmall, "/read", "sid", e.smallIDs, true)}, admin: e.scaleAdmin, backend: "bolt"},
		{name: fmt.Sprintf("%s sessions stored", thousands(cfg.scale)), target: target{e.scaleLarge, requestTo(e.scaleLarge, "/read", "sid", e.largeIDs, true)}, admin: e.scaleAdmin, backend: "bolt"},
	}
}

// keepAliveOutcome is case 5: the store writes of a steady read load.
type keepAliveOutcome struct {
	duration time.Duration
	stores   []keepAliveStore
}

type keepAliveStore struct {
	name     string
	sessions int
	requests int
	writes   float64
	pending  bool
}

func caseKeepAlive(cfg config, e *env) *keepAliveOutcome {
	conns := max(cfg.conns/4, 2)
	logf("case 5, keep-alive: %s of steady reads, %d clients per store", cfg.keepAlive, conns)
	k := &keepAliveOutcome{duration: cfg.keepAlive}
	vs := []variant{readVariants(e)[2], readVariants(e)[3]}
	sessions := []int{len(e.boltIDs), len(e.redisIDs)}
	before := mustScrape(e.admin)
	results := make([]result, len(vs))
	var wg sync.WaitGroup
	for i, v := range vs {
		if v.pending {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = run(v.target, conns, cfg.keepAlive)
		}()
	}
	wg.Wait()
	after := mustScrape(e.admin)
	for i, v := range vs {
		k.stores = append(k.stores, keepAliveStore{
			name: v.name, sessions: sessions[i], requests: results[i].requests,
			writes: delta(before, after, opSeries("update", v.backend)), pending: v.pending,
		})
	}
	return k
}

var profileNames = []string{"plain", "plain-carrying", "plain-adding", "read-bolt", "read-redis", "anonymous", "login-bolt", "login-redis", "scale-large"}

// profile runs one variant for cfg.profTime plus a margin and saves the
// CPU and allocation profiles of its Caddy into bench/out.
func profile(cfg config, e *env, root string) error {
	var v variant
	conns := cfg.conns
	switch cfg.profile {
	case "plain":
		v = readVariants(e)[0]
	case "plain-carrying":
		v = readVariantNamed(e, "the client sending")
	case "plain-adding":
		v = readVariantNamed(e, "Caddy adding headers")
	case "read-bolt":
		v = readVariantNamed(e, "session (bolt)")
	case "read-redis":
		v = readVariantNamed(e, "session (Redis)")
	case "anonymous":
		v = variant{name: "anonymous", target: target{e.bolt, requestTo(e.bolt, "/read", "", nil, false)}, admin: e.admin}
	case "login-bolt":
		v, conns = loginVariants(e)[1], cfg.logins
	case "login-redis":
		v, conns = loginVariants(e)[2], cfg.logins
	case "scale-large":
		v = scaleVariants(cfg, e)[1]
	default:
		return fmt.Errorf("-profile takes one of %v", profileNames)
	}
	if v.pending {
		return fmt.Errorf("%s cannot run: no Redis store in this Caddy", cfg.profile)
	}
	admin := e.admin
	if v.admin != "" {
		admin = v.admin
	}
	outDir := filepath.Join(root, "bench", "out")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	logf("profiling %s for %s", v.name, cfg.profTime)
	var res result
	done := make(chan struct{})
	go func() {
		res = run(v.target, conns, cfg.profTime+2*time.Second)
		close(done)
	}()
	time.Sleep(time.Second)
	base := filepath.Join(outDir, cfg.profile)
	secs := int(cfg.profTime.Seconds())
	err := fetch(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, secs), base+".cpu.pprof")
	<-done
	if err != nil {
		return err
	}
	if err := fetch("http://"+admin+"/debug/pprof/allocs", base+".allocs.pprof"); err != nil {
		return err
	}
	logf("%.0f req/s, p50 %s, p99 %s; profiles in %s.{cpu,allocs}.pprof; read them with\n\tgo tool pprof -top %s %s.cpu.pprof",
		res.rate(), res.percentile(50), res.percentile(99), base, e.caddyBin, base)
	if cfg.keep {
		logf("the Caddy binary stays at %s", e.caddyBin)
	} else {
		bin := filepath.Join(outDir, "caddy")
		if b, err := os.ReadFile(e.caddyBin); err == nil {
			os.WriteFile(bin, b, 0o755)
			logf("the Caddy binary is copied to %s for pprof", bin)
		}
	}
	return nil
}

func fetch(url, path string) error {
	res, err := (&http.Client{Timeout: 5 * time.Minute}).Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, res.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
