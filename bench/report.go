package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

type report struct {
	cfg       config
	env       *env
	machine   machine
	read      []*outcome
	anon      []*outcome
	login     []*outcome
	scale     *scaleOutcome
	keepAlive *keepAliveOutcome
	took      time.Duration

	redisMemory *redisMemory       // around the login storm
	calls       *redisCallsOutcome // case 6
	lag         *lagOutcome        // case 7
	density     *densityOutcome    // case 8
}

const (
	beginMarker = "<!-- bench:begin -->"
	endMarker   = "<!-- bench:end -->"

	// The one-CPU mode's results have a block of their own, so that a run
	// of one mode leaves the other's tables alone.
	oneCPUBeginMarker = "<!-- bench:onecpu:begin -->"
	oneCPUEndMarker   = "<!-- bench:onecpu:end -->"
)

// writeResults puts text between the markers of the file at path (those
// of the one-CPU mode's block with oneCPU), or at its end when it has
// none.
func writeResults(path, text string, oneCPU bool) error {
	beginMarker, endMarker := beginMarker, endMarker
	if oneCPU {
		beginMarker, endMarker = oneCPUBeginMarker, oneCPUEndMarker
	}
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	block := beginMarker + "\n" + text + "\n" + endMarker
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i >= 0 && j > i {
		s = s[:i] + block + s[j+len(endMarker):]
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func (r *report) markdown() string {
	var b strings.Builder
	m := r.machine
	if r.cfg.oneCPU() {
		fmt.Fprintf(&b, "## Latest results on one CPU\n\n")
	} else {
		fmt.Fprintf(&b, "## Latest results\n\n")
	}
	fmt.Fprintf(&b, "`%s`, %s, commit %s, in %s.\n",
		commandLine(), time.Now().UTC().Format("2006-01-02 15:04 UTC"), m.Commit, r.took.Round(time.Second))
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), %s memory, Linux %s; %s, Caddy %s, %s, Redis %s.\n",
		m.CPUs, m.CPUModel, m.Memory, m.Kernel, m.Go, m.Caddy, orText(m.Apache, "no Apache"), orDash(m.Redis))
	if r.cfg.oneCPU() {
		fmt.Fprintf(&b, "Mode: **one CPU** (`-cpus 1`): %s. Redis is not part of this mode.\n", r.env.placement)
	} else {
		fmt.Fprintf(&b, "Mode: every CPU, nothing pinned; the upstream is a process of its own.\n")
	}
	fmt.Fprintf(&b, "Each case: %d rounds, each variant %s per round, in turns; %d keep-alive clients (%d in the login storm).\n",
		r.cfg.rounds, r.cfg.round, r.cfg.conns, r.cfg.logins)
	fmt.Fprintf(&b, "Ratios are against the plain proxy of the same server. A throughput ratio is over the whole case, then the median, lowest and highest of its rounds' ratios.\n")
	if r.env.redisPending {
		fmt.Fprintf(&b, "\nRedis: **pending**. The Caddy built from this commit has no Redis store (`http.handlers.session.stores.redis`), so its rows could not be measured.\n")
	}

	if r.read != nil {
		fmt.Fprintf(&b, "\n### 1. Read path: a valid session of 3 keys (~100 bytes)\n\n")
		b.WriteString(r.latencyTable(r.read, func(o *outcome, ratio float64) string {
			if o.diagnostic && o.target.addr == r.env.adding {
				return "none: it shows what Caddy's own directives pay to add what the session adds"
			}
			if o.diagnostic {
				return "none: it shows what carrying the session's data costs the proxy"
			}
			switch o.name {
			case "Caddy session (bolt) + reverse_proxy":
				if r.cfg.oneCPU() {
					return verdict("throughput ≥ 0.90", ratio >= 0.90)
				}
				p99 := ratioOf(o, r.read[0], 99)
				return verdict("throughput ≥ 0.97, p99 ≤ 1.05", ratio >= 0.97 && p99 <= 1.05)
			case "Caddy session (Redis) + reverse_proxy":
				bolt := r.throughputRatio(r.read, "bolt")
				return verdict("throughput ≥ 0.88 and at most 0.03 below bolt's", ratio >= 0.88 && ratio >= bolt-0.03)
			case "Apache mod_session_dbd + mod_proxy":
				return "the peer"
			}
			return ""
		}))
	}
	if r.anon != nil {
		fmt.Fprintf(&b, "\n### 2. Anonymous traffic: no session cookie\n\n")
		b.WriteString(r.latencyTable(r.anon, func(o *outcome, ratio float64) string {
			if o.backend == "" {
				return ""
			}
			want := 0.99
			if r.cfg.oneCPU() {
				want = 0.97
			}
			return verdict(fmt.Sprintf("throughput ≥ %.2f", want), ratio >= want) + "; " + verdict("0 store writes", o.updates == 0)
		}))
	}
	if r.login != nil {
		fmt.Fprintf(&b, "\n### 3. Login storm: %d clients, each request a new session with one key, durable commits\n\n", r.cfg.logins)
		b.WriteString(r.loginTable())
	}
	if r.scale != nil {
		fmt.Fprintf(&b, "\n### 4. Scale: the read path with 1,000 and with %s stored sessions\n\n", thousands(r.cfg.scale))
		fmt.Fprintf(&b, "Both read 1,000 sessions, drawn at random per request: all of the small store, a random 1,000 scattered over the large one.\n\n")
		b.WriteString(r.scaleTable())
	}
	if r.keepAlive != nil {
		fmt.Fprintf(&b, "\n### 5. Keep-alive writes: %s of steady reads, default touch_interval (1m)\n\n", r.keepAlive.duration)
		b.WriteString(r.keepAliveTable())
	}
	if r.hasRedisSection() {
		b.WriteString(r.redisSection())
	}
	if r.density != nil {
		fmt.Fprintf(&b, "\n### 8. Density: bytes of bbolt pages per session\n\n")
		b.WriteString(r.densityTable())
	}
	return b.String()
}

// commandLine is how the bench was run, for the report.
func commandLine() string {
	s := "go run ./bench"
	for _, a := range os.Args[1:] {
		if a == "" || strings.ContainsAny(a, " '\"") {
			a = "'" + a + "'"
		}
		s += " " + a
	}
	return s
}

// baseline returns the plain proxy a variant is compared with: the first
// variant of its server.
func baseline(all []*outcome, o *outcome) *outcome {
	server := strings.Fields(o.name)[0]
	for _, c := range all {
		if strings.Fields(c.name)[0] == server {
			return c
		}
	}
	return all[0]
}

// throughputRatio is the throughput ratio of the variant of a case on
// backend to its plain proxy, NaN if there is none.
func (r *report) throughputRatio(all []*outcome, backend string) float64 {
	for _, o := range all {
		if o.backend == backend && !o.pending && !o.diagnostic {
			return o.rate() / baseline(all, o).rate()
		}
	}
	return math.NaN()
}

func ratioOf(o, base *outcome, p float64) float64 {
	b := base.total.percentile(p)
	if b == 0 {
		return math.NaN()
	}
	return float64(o.total.percentile(p)) / float64(b)
}

// roundRatios are the throughput ratios of o to base in each round, in
// which the two ran next to each other, sorted.
func roundRatios(o, base *outcome) []float64 {
	var r []float64
	for i := range min(len(o.rates), len(base.rates)) {
		r = append(r, o.rates[i]/base.rates[i])
	}
	slices.Sort(r)
	return r
}

// ratioText is the throughput ratio of o to base over the whole case, then
// the median, lowest and highest of the rounds' ratios.
func ratioText(o, base *outcome) string {
	if o == base {
		return "1"
	}
	r := roundRatios(o, base)
	if len(r) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f (median %.2f, %.2f–%.2f)", o.rate()/base.rate(), r[len(r)/2], r[0], r[len(r)-1])
}

func (r *report) latencyTable(all []*outcome, target func(o *outcome, ratio float64) string) string {
	var b strings.Builder
	b.WriteString("| variant | req/s | p50 | p99 | throughput ratio | p50 ratio | p99 ratio | store reads | store writes | target |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, o := range all {
		if o.pending {
			fmt.Fprintf(&b, "| %s | pending | | | | | | | | %s |\n", o.name, "pending")
			continue
		}
		base := baseline(all, o)
		ratio := o.rate() / base.rate()
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %.3f | %.3f | %s | %s | %s |\n",
			o.name, thousands(int(o.rate())), ms(o.total.percentile(50)), ms(o.total.percentile(99)),
			ratioText(o, base), ratioOf(o, base, 50), ratioOf(o, base, 99),
			storeCount(o, o.loads), storeCount(o, o.updates), target(o, ratio))
	}
	if errs := errorNote(all); errs != "" {
		b.WriteString("\n" + errs + "\n")
	}
	if steal := stealNote(all); steal != "" {
		b.WriteString("\n" + steal)
	}
	return b.String()
}

func (r *report) loginTable() string {
	var b strings.Builder
	b.WriteString("| variant | req/s | sessions created/s | p50 | p99 | throughput ratio | p99 ratio | target |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, o := range r.login {
		if o.pending {
			fmt.Fprintf(&b, "| %s | pending | | | | | | pending |\n", o.name)
			continue
		}
		base := baseline(r.login, o)
		created, target := "", ""
		if o != base {
			perSec := o.created / o.total.elapsed.Seconds()
			created = thousands(int(perSec))
			switch {
			case o.backend == "bolt" && r.cfg.oneCPU():
				target = verdict("throughput ≥ 0.50", o.rate()/base.rate() >= 0.50)
			case o.backend == "bolt":
				target = verdict("≥ 5,000 sessions/s", perSec >= 5000)
			case o.backend == "redis":
				target = verdict("throughput ≥ 0.60", o.rate()/base.rate() >= 0.60)
			case o.backend == "":
				target = "the peer"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %.3f | %s |\n",
			o.name, thousands(int(o.rate())), created, ms(o.total.percentile(50)), ms(o.total.percentile(99)),
			ratioText(o, base), ratioOf(o, base, 99), target)
	}
	if errs := errorNote(r.login); errs != "" {
		b.WriteString("\n" + errs + "\n")
	}
	if steal := stealNote(r.login); steal != "" {
		b.WriteString("\n" + steal)
	}
	return b.String()
}

func (r *report) scaleTable() string {
	s := r.scale
	var b strings.Builder
	b.WriteString("| sessions stored | req/s | p50 | p99 | throughput ratio | p50 ratio | p99 ratio | store writes | file size | per session | target |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	small := s.outcomes[0]
	sizes := []int64{s.smallSize, s.largeSize}
	counts := []int{1000, r.cfg.scale}
	for i, o := range s.outcomes {
		target := ""
		p50, p99 := ratioOf(o, small, 50), ratioOf(o, small, 99)
		if o != small {
			target = verdict("p50 and p99 ratio ≤ 1.2", p50 <= 1.2 && p99 <= 1.2)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %.3f | %.3f | %s | %s | %s | %s |\n",
			thousands(counts[i]), thousands(int(o.rate())), ms(o.total.percentile(50)), ms(o.total.percentile(99)),
			ratioText(o, small), p50, p99, thousands(int(o.updates)), mib(sizes[i]), bytesText(sizes[i]/int64(counts[i])), target)
	}
	fmt.Fprintf(&b, "\nCaddy's resident memory with both stores open (the scale case's own Caddy): %s idle before the case "+
		"(%s anonymous, %s file-backed), %s after it (%s anonymous, %s file-backed: the pages of the bolt files it read, "+
		"which the kernel can drop).\n",
		mib(s.memIdle.rss), mib(s.memIdle.anon), mib(s.memIdle.file),
		mib(s.memAfter.rss), mib(s.memAfter.anon), mib(s.memAfter.file))
	fmt.Fprintf(&b, "Populating the bolt stores (%s + 1,000 + %s sessions, directly, without fsync) took %s.\n",
		thousands(r.cfg.sessions), thousands(r.cfg.scale), r.env.populateTime.Round(100*time.Millisecond))
	if errs := errorNote(s.outcomes); errs != "" {
		b.WriteString("\n" + errs + "\n")
	}
	return b.String()
}

func (r *report) keepAliveTable() string {
	k := r.keepAlive
	interval := session.DefaultTouchInterval
	// A session's first touch may come at once and the next one interval
	// later, so a run of d allows floor(d/interval)+1 writes per session.
	// The read store's sessions are all due when the case begins, and the
	// clients visit every session many times a minute, so a store that
	// keeps the rule writes exactly that many.
	allowed := math.Floor(k.duration.Seconds()/interval.Seconds()) + 1
	var b strings.Builder
	b.WriteString("| store | sessions | requests | requests per session | store writes | writes per session | allowed per session | target |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, s := range k.stores {
		if s.pending {
			fmt.Fprintf(&b, "| %s | pending | | | | | | pending |\n", s.name)
			continue
		}
		per := s.writes / float64(max(s.sessions, 1))
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %.2f | %.0f | %s |\n",
			s.name, thousands(s.sessions), thousands(s.requests), thousands(s.requests/max(s.sessions, 1)),
			thousands(int(s.writes)), per, allowed,
			verdict("at most one write per session per touch_interval", per <= allowed))
	}
	return b.String()
}

func errorNote(all []*outcome) string {
	var notes []string
	for _, o := range all {
		if o.total.errors > 0 || o.total.bad > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d connection errors, %d responses other than 200 (of %d)",
				o.name, o.total.errors, o.total.bad, o.total.requests))
		}
	}
	if len(notes) == 0 {
		return ""
	}
	return "Errors: " + strings.Join(notes, "; ") + "."
}

func storeCount(o *outcome, n float64) string {
	if o.backend == "" {
		return ""
	}
	return thousands(int(n))
}

func verdict(target string, ok bool) string {
	if ok {
		return target + ": met"
	}
	return target + ": **missed**"
}

func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 1:
		return fmt.Sprintf("%.3f ms", v)
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.1f ms", v)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func bytesText(n int64) string { return thousands(int(n)) + " B" }

func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func orDash(s string) string { return orText(s, "-") }

func orText(s, instead string) string {
	if s == "" {
		return instead
	}
	return s
}
