package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// env is everything the cases run against.
type env struct {
	dir      string
	caddyBin string
	upstream string // the upstream's address; in the one-CPU mode, the main Caddy's site that serves it

	caddy      *proc  // the main Caddy: plain, bolt, login, Redis sites
	admin      string // its admin address
	scaleCaddy *proc  // the Caddy of the scale case, alone with its two stores
	scaleAdmin string

	plain, bolt, login, redis string // site addresses on the main Caddy; redis "" when there is no Redis store
	adding                    string // the plain proxy that adds the session's headers itself (the read case's second diagnostic row)
	redisCalls                string // the Redis site of the calls case, with a short touch_interval
	redisAddr                 string // redis-server's address; "" when there is no Redis store
	scaleSmall, scaleLarge    string // site addresses on the scale Caddy

	apache                     *proc // nil when no case compares with Apache
	apacheUpstream             *proc // Apache's upstream in the one-CPU mode
	apachePlain, apacheSession string
	apacheDB                   string

	boltIDs, redisIDs, apacheIDs []string // sessions for the read clients
	smallIDs, largeIDs           []string // the sessions of the scale stores

	largeDB, smallDB string // paths of the scale stores
	populateTime     time.Duration
	redisPending     bool // the Caddy binary has no Redis store

	largeDensity *density // the bbolt page statistics of the large store, as populated

	// The one-CPU mode (onecpu.go): the servers and their upstreams are
	// pinned to serverCPU, the bench runs on loadCPU.
	oneCPU             bool
	serverCPU, loadCPU int
	placement          placement // what was checked of it
}

func startEnvironment(cfg config, root, dir string) (*env, error) {
	e := &env{dir: dir, oneCPU: cfg.oneCPU()}
	logf("building cmd/caddy")
	var err error
	if e.caddyBin, err = buildCaddy(root, dir); err != nil {
		return nil, err
	}
	// From here on, in the one-CPU mode, this process and what it starts
	// run on the load generator's CPU, the servers on theirs.
	if e.oneCPU {
		if err := e.pin(); err != nil {
			return nil, err
		}
	}
	ports, err := freePorts(15)
	if err != nil {
		return nil, err
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }

	// The upstream: a process of its own, or in the one-CPU mode a site
	// of the main Caddy (started below).
	e.upstream = addr(0)
	if !e.oneCPU {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		up, err := start(dir, "upstream", nil, self, "upstream", e.upstream)
		if err != nil {
			return nil, err
		}
		if err := waitHTTP(up, "http://"+e.upstream+"/read"); err != nil {
			return nil, err
		}
	}

	// Redis, when the Caddy has a Redis store; not in the one-CPU mode,
	// whose cases compare bolt with Apache.
	e.redisPending = !e.oneCPU && !hasModule(e.caddyBin, "http.handlers.session.stores.redis")
	var redisURL string
	switch {
	case e.oneCPU:
	case e.redisPending:
		logf("this Caddy has no Redis store (http.handlers.session.stores.redis): its rows stay pending")
	default:
		rp, err := start(dir, "redis", nil, "redis-server", "--port", strconv.Itoa(ports[1]), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir)
		if err != nil {
			return nil, err
		}
		if err := waitTCP(rp, addr(1)); err != nil {
			return nil, err
		}
		e.redisAddr = addr(1)
		redisURL = "redis://" + e.redisAddr + "/0"
	}

	// The stores that are populated directly.
	scale := cfg.runs("scale") || cfg.profile == "scale-large"
	large := scale || cfg.runs("density")
	switch {
	case scale:
		logf("populating the bolt stores: %d sessions to read, %d and %d for the scale case", cfg.sessions, 1000, cfg.scale)
	case large:
		logf("populating the bolt stores: %d sessions to read, %d for the density case", cfg.sessions, cfg.scale)
	default:
		logf("populating the bolt store: %d sessions to read", cfg.sessions)
	}
	began := time.Now()
	if e.boltIDs, err = populate(filepath.Join(dir, "read.db"), cfg.sessions); err != nil {
		return nil, err
	}
	e.smallDB, e.largeDB = filepath.Join(dir, "scale-small.db"), filepath.Join(dir, "scale-large.db")
	if scale {
		if e.smallIDs, err = populate(e.smallDB, 1000); err != nil {
			return nil, err
		}
	}
	if large {
		all, err := populate(e.largeDB, cfg.scale)
		if err != nil {
			return nil, err
		}
		// The clients read as many sessions of the large store as of the
		// small one: a hot set as large as the small store, scattered over
		// the large one. The stores then differ in size alone, and not in
		// how many sessions fall due for a keep-alive write (case 5).
		if scale {
			e.largeIDs = make([]string, len(e.smallIDs))
			for i, j := range rand.Perm(len(all))[:len(e.smallIDs)] {
				e.largeIDs[i] = all[j]
			}
		}
	}
	e.populateTime = time.Since(began)
	logf("populated in %s", e.populateTime.Round(100*time.Millisecond))
	// The density of the large file, as populated: before a Caddy holds
	// its lock.
	if cfg.runs("density") {
		began := time.Now()
		if e.largeDensity, err = measureDensity(e.largeDB); err != nil {
			return nil, err
		}
		logf("bbolt page statistics of the %s-session file in %s", thousands(cfg.scale), time.Since(began).Round(100*time.Millisecond))
	}

	// The main Caddy.
	e.admin, e.plain, e.bolt, e.login, e.adding = addr(2), addr(3), addr(4), addr(5), addr(14)
	sites := []site{
		{Name: "plain reverse_proxy", Port: ports[3]},
		{Name: "plain reverse_proxy, Caddy adding the session's headers itself", Port: ports[14], Adds: true},
		{Name: "session on bolt, the read store", Store: "bolt " + filepath.Join(dir, "read.db"), Port: ports[4]},
		{Name: "session on bolt, the login store", Store: "bolt " + filepath.Join(dir, "login.db"), Port: ports[5]},
	}
	if redisURL != "" {
		e.redis, e.redisCalls = addr(6), addr(12)
		sites = append(sites,
			site{Name: "session on Redis", Store: "redis " + redisURL, Port: ports[6]},
			site{Name: "session on Redis for the calls case, touch_interval " + cfg.callsTouch.String(),
				Store: "redis " + redisURL, KeyPrefix: "bench-calls:", TouchInterval: cfg.callsTouch, Port: ports[12]})
	}
	if e.caddy, err = e.startCaddy("caddy", ports[2], ports[0], sites); err != nil {
		return nil, err
	}
	// The scale Caddy, with its two stores only, so that its memory is
	// theirs.
	if e.smallIDs != nil {
		e.scaleAdmin, e.scaleSmall, e.scaleLarge = addr(7), addr(8), addr(9)
		scaleSites := []site{
			{Name: "session on bolt, 1,000 sessions", Store: "bolt " + e.smallDB, Port: ports[8]},
			{Name: fmt.Sprintf("session on bolt, %d sessions", cfg.scale), Store: "bolt " + e.largeDB, Port: ports[9]},
		}
		if e.scaleCaddy, err = e.startCaddy("caddy-scale", ports[7], 0, scaleSites); err != nil {
			return nil, err
		}
	}

	// Apache httpd, for the cases that compare with it.
	if cfg.needsApache() {
		e.apachePlain, e.apacheSession = addr(10), addr(11)
		if err := e.startApache(ports[10], ports[11], ports[13]); err != nil {
			return nil, err
		}
	}
	if e.oneCPU {
		if err := e.checkPlacement(); err != nil {
			return nil, err
		}
	}

	// Sessions made by logging in, where the store is not ours to fill.
	if e.redis != "" {
		if e.redisIDs, err = loginMany(e.redis, "sid", cfg.sessions); err != nil {
			return nil, fmt.Errorf("logging in through the Redis site: %w", err)
		}
	}
	if e.apache != nil {
		if e.apacheIDs, err = loginMany(e.apacheSession, "session", cfg.sessions); err != nil {
			return nil, fmt.Errorf("logging in through Apache: %w", err)
		}
	}
	return e, e.check()
}

// site is one site of a bench Caddyfile (Caddyfile.tmpl): a plain proxy
// when Store is empty, else a session handler on that store before it.
type site struct {
	Name, Store   string
	Port          int
	KeyPrefix     string        // the Redis store's key_prefix; "" for its default
	TouchInterval time.Duration // 0 for the default
	Realm         string        // "" for the default, the site's own address
	// Adds makes a plain proxy add, with Caddy's own header directives,
	// what the session handler adds to a read: three request headers
	// holding a read session's values, and its two cache headers.
	Adds bool
}

// startCaddy starts a Caddy of the bench with these sites, in front of the
// bench's upstream; in the one-CPU mode it is pinned to the servers' CPU
// and serves its own upstream, as a site at port origin (in the other
// mode, origin is not used).
func (e *env) startCaddy(name string, admin, origin int, sites []site) (*proc, error) {
	for i := range sites {
		if sites[i].TouchInterval == 0 {
			sites[i].TouchInterval = session.DefaultTouchInterval
		}
	}
	upstream := strings.TrimPrefix(e.upstream, "127.0.0.1:")
	if e.oneCPU {
		upstream = strconv.Itoa(origin)
	}
	conf := filepath.Join(e.dir, name+".Caddyfile")
	err := writeTemplate(conf, caddyfileTemplate, map[string]any{
		"Admin": admin, "Upstream": upstream, "Sites": sites,
		"Origin": e.oneCPU, "Page": string(page), "Roles": roles, "Cart": cart,
	})
	if err != nil {
		return nil, err
	}
	home := filepath.Join(e.dir, name+"-home")
	env := []string{"HOME=" + home, "XDG_DATA_HOME=" + home, "XDG_CONFIG_HOME=" + home}
	p, err := start(e.dir, name, env, e.server(e.caddyBin, "run", "--config", conf, "--adapter", "caddyfile")...)
	if err != nil {
		return nil, err
	}
	return p, waitHTTP(p, fmt.Sprintf("http://127.0.0.1:%d/config/", admin))
}

// startApache starts httpd with its plain proxy and its session proxy on
// these ports; in the one-CPU mode it is pinned to the servers' CPU, and
// so is an upstream of its own at port origin (see onecpu.go).
func (e *env) startApache(plain, sess, origin int) error {
	adir := filepath.Join(e.dir, "apache")
	if err := os.MkdirAll(adir, 0o755); err != nil {
		return err
	}
	upstream := strings.TrimPrefix(e.upstream, "127.0.0.1:")
	if e.oneCPU {
		upstream = strconv.Itoa(origin)
		self, err := os.Executable()
		if err != nil {
			return err
		}
		addr := "127.0.0.1:" + upstream
		if e.apacheUpstream, err = start(e.dir, "upstream-apache", nil, e.server(self, "upstream", addr)...); err != nil {
			return err
		}
		if err := waitHTTP(e.apacheUpstream, "http://"+addr+"/read"); err != nil {
			return err
		}
	}
	e.apacheDB = filepath.Join(adir, "sessions.sqlite")
	schema := "PRAGMA journal_mode=WAL; CREATE TABLE session (key TEXT PRIMARY KEY, value TEXT, expiry INTEGER);"
	if _, err := command("sqlite3", e.apacheDB, schema); err != nil {
		return err
	}
	// The children run as www-data and write the database, its WAL and
	// its lock files beside it.
	if _, err := command("chown", "-R", "www-data:www-data", adir); err != nil {
		return err
	}
	conf := filepath.Join(adir, "httpd.conf")
	err := writeTemplate(conf, apacheTemplate, map[string]any{
		"Dir": adir, "Modules": apacheModules, "DB": e.apacheDB,
		"Plain": plain, "Session": sess, "Upstream": upstream,
	})
	if err != nil {
		return err
	}
	if out, err := exec.Command(apacheBin, "-f", conf, "-t").CombinedOutput(); err != nil {
		return fmt.Errorf("apache config: %v\n%s", err, out)
	}
	if e.apache, err = start(e.dir, "apache", nil, e.server(apacheBin, "-f", conf, "-DFOREGROUND")...); err != nil {
		return err
	}
	return waitHTTP(e.apache, "http://"+e.apachePlain+"/read")
}

// loginMany logs in n times through site (/login3, a session of 3 keys),
// with a few clients at once, and returns the session cookies' values.
func loginMany(site, cookie string, n int) ([]string, error) {
	ids := make([]string, n)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				id, err := login(site, cookie)
				if err != nil {
					errs <- err
					return
				}
				ids[i] = id
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return ids, nil
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// login logs in once through site (/login3). The X-Login header numbers
// the login, in seven digits as bench/upstream.go numbers its users: the
// upstream inside Caddy in the one-CPU mode names the user after it;
// bench/upstream.go ignores it.
func login(site, cookie string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+site+"/login3", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Login", fmt.Sprintf("%07d", loginSeq.Add(1)))
	res, err := httpClient.Do(req)
	if err != nil {
		return "", err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	for _, c := range res.Cookies() {
		if c.Name == cookie && c.Value != "" {
			return c.Value, nil
		}
	}
	return "", fmt.Errorf("login on %s: %s with no %s cookie", site, res.Status, cookie)
}

// check makes sure every variant does what it is measured for: the
// session reaches the upstream, and the session's absence too.
func (e *env) check() error {
	echo := func(site, cookie string) (http.Header, error) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+site+"/echo", nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		res, err := httpClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		var h http.Header
		if res.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %s", site, res.Status)
		}
		if len(res.Header["Set-Cookie"]) > 0 {
			return nil, fmt.Errorf("%s set a cookie on a read", site)
		}
		if e.oneCPU && site != e.apacheSession {
			// The upstream inside Caddy answers with the header it was
			// sent in X-Echo-<name>.
			h = http.Header{}
			for name, v := range res.Header {
				if n, ok := strings.CutPrefix(name, "X-Echo-"); ok {
					h[http.CanonicalHeaderKey(n)] = v
				}
			}
			return h, nil
		}
		return h, json.NewDecoder(res.Body).Decode(&h)
	}
	type want struct {
		site, cookie, header, contains string
	}
	wants := []want{
		{e.bolt, "sid=" + e.boltIDs[0], "X-Session-User", "user-"},
		{e.bolt, "", "X-Session-User", ""},
		{e.plain, "sid=" + e.boltIDs[0], "X-Session-User", ""},
	}
	if e.apache != nil {
		wants = append(wants, want{e.apacheSession, "session=" + e.apacheIDs[0], "X-Session", "user=user-"})
	}
	if e.redis != "" {
		wants = append(wants, want{e.redis, "sid=" + e.redisIDs[0], "X-Session-User", "user-"})
	}
	if e.scaleCaddy != nil {
		wants = append(wants,
			want{e.scaleSmall, "sid=" + e.smallIDs[0], "X-Session-User", "user-"},
			want{e.scaleLarge, "sid=" + e.largeIDs[len(e.largeIDs)-1], "X-Session-User", "user-"})
	}
	for _, w := range wants {
		h, err := echo(w.site, w.cookie)
		if err != nil {
			return fmt.Errorf("checking %s: %w", w.site, err)
		}
		got := h.Get(w.header)
		if w.contains == "" && got != "" || !strings.Contains(got, w.contains) {
			return fmt.Errorf("checking %s with cookie %q: the upstream saw %s %q, want it to hold %q", w.site, w.cookie, w.header, got, w.contains)
		}
	}
	return nil
}
