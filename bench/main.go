// Command bench is caddy-session's benchmark suite. From the root of the
// repository:
//
//	go run ./bench
//
// It installs what it needs from Debian packages when missing (apache2,
// libaprutil1-dbd-sqlite3, sqlite3, redis-server), builds cmd/caddy, starts
// a small upstream, Caddy, Redis and Apache httpd on loopback ports, runs
// every case with its variants interleaved, and writes the tables into
// BENCHMARKS.md between its markers. Everything it starts, it stops.
//
// The cases, each compared with plain reverse_proxy on the same Caddy:
//
//  1. read: requests with a valid session (3 keys, ~100 bytes), bolt and
//     Redis, and the same for Apache's mod_session over its own plain proxy;
//  2. anonymous: requests without a session cookie, and the store writes
//     they cause (none);
//  3. login storm: 64 clients creating sessions, durable commits;
//  4. scale: reads over 1,000 and 1,000,000 stored sessions;
//  5. keep-alive: the store writes of a steady read load over 75 s, with the
//     default touch_interval of 1 minute;
//  6. redis-calls: the Redis commands per read request over a hot set of
//     sessions, on a site whose touch_interval is short enough for the run
//     to span several; and, in the login storm, Redis's memory per session;
//  7. invalidation: how long a second Caddy on the same Redis keeps
//     accepting a session that the first one ended (logout, admin revoke,
//     rotation);
//  8. density: the bytes of bbolt pages per session, after 50,000 logins
//     through HTTP and in the scale case's file of 1,000,000 sessions.
//
// `go run ./bench -cpus 1` is the one-CPU mode: Caddy, with its upstream
// served inside it, and Apache httpd with its upstream, pinned to one CPU,
// the load generator on another, for the read, anonymous and login cases
// (see onecpu.go).
//
// `go run ./bench -profile read-bolt` instead runs one variant for a while
// and saves Caddy's CPU and allocation profiles.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

type config struct {
	out       string
	round     time.Duration
	rounds    int
	warmup    time.Duration
	conns     int
	logins    int
	keepAlive time.Duration
	sessions  int
	scale     int
	install   bool
	keep      bool
	cases     []string
	profile   string
	profTime  time.Duration
	cpus      int // 1: the one-CPU mode; 0: every CPU, nothing pinned

	callsTouch time.Duration // touch_interval of the Redis calls case's site
	callsTime  time.Duration // length of its measurement
	hot        int           // sessions of its hot set
	lagTries   int           // tries of each kind in the invalidation case
	lagTimeout time.Duration // when a try gives up

	densityLogins int           // sessions the density case makes through HTTP
	densityTouch  time.Duration // touch_interval of its site
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "upstream" {
		if err := serveUpstream(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	var cfg config
	var cases string
	flag.StringVar(&cfg.out, "out", "BENCHMARKS.md", "write the results between the markers of this file (empty: print only)")
	flag.DurationVar(&cfg.round, "round", 1500*time.Millisecond, "length of one variant's turn in a round")
	flag.IntVar(&cfg.rounds, "rounds", 8, "rounds per case; the variants take turns in each")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured load on each variant before a case")
	flag.IntVar(&cfg.conns, "conns", 32, "concurrent keep-alive clients for the read, anonymous and scale cases")
	flag.IntVar(&cfg.logins, "login-clients", 64, "concurrent clients of the login storm")
	flag.DurationVar(&cfg.keepAlive, "keepalive", 75*time.Second, "length of the keep-alive case (more than one touch_interval)")
	flag.IntVar(&cfg.sessions, "sessions", 1000, "sessions the read clients use, per store")
	flag.IntVar(&cfg.scale, "scale", 1_000_000, "stored sessions of the large store of the scale case")
	flag.BoolVar(&cfg.install, "install", true, "apt-get install missing tools")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the work directory (logs, databases, configs)")
	flag.DurationVar(&cfg.callsTouch, "calls-touch", 5*time.Second, "touch_interval of the Redis site of the redis-calls case")
	flag.DurationVar(&cfg.callsTime, "calls-time", 20*time.Second, "length of the redis-calls measurement (at least 3 × -calls-touch)")
	flag.IntVar(&cfg.hot, "hot", 50, "sessions of the hot set of the redis-calls case")
	flag.IntVar(&cfg.lagTries, "lag-tries", 200, "tries of each kind (logout, revoke, rotation) in the invalidation case")
	flag.DurationVar(&cfg.lagTimeout, "lag-timeout", 5*time.Second, "how long a try of the invalidation case waits for the second Caddy to refuse the session")
	flag.IntVar(&cfg.densityLogins, "density-logins", 50_000, "sessions the density case makes by logging in through HTTP")
	flag.DurationVar(&cfg.densityTouch, "density-touch", time.Second, "touch_interval of the density case's site: each session is read once after it")
	flag.IntVar(&cfg.cpus, "cpus", 0, "1: the one-CPU mode (Caddy with its upstream inside it, and Apache with its upstream, pinned to one CPU; the load generator on another); 0: every CPU, nothing pinned")
	flag.StringVar(&cases, "cases", "", "the cases to run, comma-separated (default: "+strings.Join(caseNames, ",")+"; with -cpus 1: "+strings.Join(oneCPUCases, ",")+")")
	flag.StringVar(&cfg.profile, "profile", "", "profile one variant instead of running the cases: "+strings.Join(profileNames, ", "))
	flag.DurationVar(&cfg.profTime, "profile-time", 20*time.Second, "length of the CPU profile")
	flag.Parse()
	switch {
	case cases != "":
		cfg.cases = strings.Split(cases, ",")
	case cfg.cpus == 1:
		cfg.cases = oneCPUCases
	default:
		cfg.cases = caseNames
	}
	if err := cfg.check(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		logf("interrupted; stopping what the bench started")
		stopAll()
		os.Exit(130)
	}()
	err := suite(cfg)
	stopAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

var began = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
}

var caseNames = []string{"read", "anonymous", "login", "scale", "keepalive", "redis-calls", "invalidation", "density"}

// oneCPUCases are the cases of the one-CPU mode, its default; oneCPUAllowed
// those it can run. The others need Redis or a second Caddy of their own,
// which the mode does not pin.
var (
	oneCPUCases   = []string{"read", "anonymous", "login"}
	oneCPUAllowed = []string{"read", "anonymous", "login", "density"}
)

func (c config) oneCPU() bool { return c.cpus == 1 }

func (c config) runs(name string) bool { return slices.Contains(c.cases, name) }

// needsApache: the read and login cases compare with Apache's
// mod_session; the others run without it.
func (c config) needsApache() bool { return c.runs("read") || c.runs("login") }

func (c config) check() error {
	if c.cpus != 0 && c.cpus != 1 {
		return fmt.Errorf("-cpus takes 0 (every CPU) or 1 (the one-CPU mode), not %d", c.cpus)
	}
	for _, name := range c.cases {
		if !slices.Contains(caseNames, name) {
			return fmt.Errorf("unknown case %q: the cases are %s", name, strings.Join(caseNames, ", "))
		}
		if c.oneCPU() && !slices.Contains(oneCPUAllowed, name) {
			return fmt.Errorf("case %q does not run in the one-CPU mode, which runs %s", name, strings.Join(oneCPUAllowed, ", "))
		}
	}
	if c.densityLogins < 1 || c.densityTouch <= 0 {
		return fmt.Errorf("-density-logins and -density-touch must be positive")
	}
	if c.callsTime < 3*c.callsTouch {
		return fmt.Errorf("-calls-time %s is shorter than 3 × -calls-touch %s: the measurement would not span three keep-alive writes", c.callsTime, c.callsTouch)
	}
	if c.hot < 1 || c.lagTries < 1 {
		return fmt.Errorf("-hot and -lag-tries must be at least 1")
	}
	return nil
}

func suite(cfg config) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if err := ensureTools(cfg.install, cfg.needsApache(), cfg.oneCPU()); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "caddy-session-bench-")
	if err != nil {
		return err
	}
	// Apache's children run as www-data and must reach its database.
	if err := os.Chmod(dir, 0o711); err != nil {
		return err
	}
	if cfg.keep {
		logf("work directory: %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	env, err := startEnvironment(cfg, root, dir)
	if err != nil {
		return err
	}
	if cfg.profile != "" {
		return profile(cfg, env, root)
	}
	rep := &report{cfg: cfg, env: env, machine: describeMachine(root, env.caddyBin)}
	if cfg.runs("read") {
		rep.read = caseRead(cfg, env)
	}
	if cfg.runs("anonymous") {
		rep.anon = caseAnonymous(cfg, env)
	}
	if cfg.runs("login") {
		rep.login, rep.redisMemory = caseLogin(cfg, env)
	}
	if cfg.runs("scale") {
		rep.scale = caseScale(cfg, env)
	}
	if cfg.runs("keepalive") {
		rep.keepAlive = caseKeepAlive(cfg, env)
	}
	if cfg.runs("redis-calls") && !env.redisPending {
		rep.calls = caseRedisCalls(cfg, env)
	}
	if cfg.runs("invalidation") && !env.redisPending {
		rep.lag = caseInvalidation(cfg, env)
	}
	if cfg.runs("density") {
		rep.density = caseDensity(cfg, env)
	}
	rep.took = time.Since(began)
	text := rep.markdown()
	fmt.Println(text)
	if cfg.out != "" {
		path := cfg.out
		if !filepath.IsAbs(path) {
			path = filepath.Join(root, path)
		}
		if err := writeResults(path, text, cfg.oneCPU()); err != nil {
			return err
		}
		logf("wrote the results into %s", path)
	}
	logf("done in %s", time.Since(began).Round(time.Second))
	return nil
}
