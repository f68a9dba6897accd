package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/bbolt"
)

// Case 8: how many bytes of bbolt pages a session takes, as `bbolt stats`
// counts them: the branch and leaf pages allocated to every bucket (and
// the buckets nested in them), summed over the top-level buckets, over the
// sessions of the file. Free pages, the meta pages and the freelist are
// not counted; the file's size is reported beside.
//
// Two files: one made through HTTP by a Caddy of its own (-density-logins
// logins of one short key, then every session read once after its
// touch_interval, so that each has had its keep-alive write, as on a
// site in use), measured after that Caddy has stopped and released the
// file; and the scale case's large file of three-key sessions, measured
// as populated, before a Caddy opens it.

// density is the page statistics of one file.
type density struct {
	stats    bbolt.BucketStats // summed over the top-level buckets
	buckets  []bucketDensity
	fileSize int64
}

// bucketDensity is one top-level bucket's share.
type bucketDensity struct {
	name  string
	alloc int // bytes of branch and leaf pages
}

func (d *density) alloc() int { return d.stats.BranchAlloc + d.stats.LeafAlloc }
func (d *density) inuse() int { return d.stats.BranchInuse + d.stats.LeafInuse }

// measureDensity opens the bolt file at path read-only, which needs the
// file's lock: no Caddy may hold it.
func measureDensity(path string) (*density, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("opening %s for its page statistics: %w", path, err)
	}
	defer db.Close()
	d := &density{}
	err = db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			s := b.Stats()
			d.stats.Add(s)
			d.buckets = append(d.buckets, bucketDensity{name: string(name), alloc: s.BranchAlloc + s.LeafAlloc})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	d.fileSize = fi.Size()
	return d, nil
}

// densityOutcome is case 8.
type densityOutcome struct {
	touch    time.Duration
	sessions int      // made through HTTP
	http     *density // their file
	touches  float64  // store writes while each was read once
	loginFor time.Duration
	readFor  time.Duration
	err      error

	largeSessions int
	large         *density // the scale case's file, as populated
}

func caseDensity(cfg config, e *env) *densityOutcome {
	logf("case 8, density: %d logins through HTTP, %d clients, then each session read once after touch_interval %s", cfg.densityLogins, cfg.logins, cfg.densityTouch)
	o := &densityOutcome{touch: cfg.densityTouch, largeSessions: cfg.scale, large: e.largeDensity}
	if o.err = o.measureHTTP(cfg, e); o.err != nil {
		logf("density: %v", o.err)
	}
	return o
}

// measureHTTP makes the sessions through a Caddy of its own, with one site
// whose touch_interval is short, stops it and measures its file.
func (o *densityOutcome) measureHTTP(cfg config, e *env) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	path := filepath.Join(e.dir, "density.db")
	addr, admin := fmt.Sprintf("127.0.0.1:%d", ports[1]), fmt.Sprintf("127.0.0.1:%d", ports[0])
	p, err := e.startCaddy("caddy-density", ports[0], ports[2], []site{{
		Name:  "session on bolt, the density store, touch_interval " + cfg.densityTouch.String(),
		Store: "bolt " + path, TouchInterval: cfg.densityTouch, Port: ports[1],
	}})
	if err != nil {
		return err
	}
	defer p.stop()
	workers := cfg.logins

	// The logins, with the load generator's client: each request a new
	// session, its user named by loginName (in bench/upstream.go, or in
	// the one-CPU mode after the X-Login header).
	began := time.Now()
	ids := make([]string, cfg.densityLogins)
	login := requestLogin(addr, "/login")
	err = sequence(addr, len(ids), workers, func(_ int, buf []byte) []byte { return login(nil, buf) },
		"sid", func(i int, v []byte) { ids[i] = string(v) })
	if err != nil {
		return fmt.Errorf("logging in: %w", err)
	}
	for _, id := range ids {
		if id == "" {
			return fmt.Errorf("a login on %s set no session cookie", addr)
		}
	}
	o.sessions, o.loginFor = len(ids), time.Since(began)

	// Every session is read once, all of them after their touch_interval
	// has passed: each read is a keep-alive write.
	time.Sleep(cfg.densityTouch + 200*time.Millisecond)
	before := mustScrape(admin)
	began = time.Now()
	read := browserHead(addr, "/read", "") + "Cookie: theme=dark; sid="
	err = sequence(addr, len(ids), workers, func(i int, buf []byte) []byte {
		buf = append(buf, read...)
		buf = append(buf, ids[i]...)
		return append(buf, "; lang=en\r\n\r\n"...)
	}, "", nil)
	if err != nil {
		return fmt.Errorf("reading the sessions: %w", err)
	}
	o.readFor = time.Since(began)
	o.touches = delta(before, mustScrape(admin), opSeries("update", "bolt"))
	logf("density: %d logins in %s, %d reads in %s (%.0f store writes)", o.sessions, o.loginFor.Round(100*time.Millisecond),
		len(ids), o.readFor.Round(100*time.Millisecond), o.touches)

	// Caddy closes the store when it stops and releases the file's lock.
	p.stop()
	o.http, err = measureDensity(path)
	return err
}

func (r *report) densityTable() string {
	o := r.density
	var b strings.Builder
	b.WriteString("| file | sessions | branch pages | leaf pages | bytes of pages | in use | per session | in use per session | file size | target |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	row := func(name string, n int, d *density, target string) {
		s := d.stats
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s (%.0f%%; leaf pages %.0f%% full) | %s | %s | %s | %s |\n",
			name, thousands(n), thousands(s.BranchPageN+s.BranchOverflowN), thousands(s.LeafPageN+s.LeafOverflowN),
			mib(int64(d.alloc())), mib(int64(d.inuse())), percent(d.inuse(), d.alloc()), percent(s.LeafInuse, s.LeafAlloc),
			bytesText(int64(d.alloc()/max(n, 1))), bytesText(int64(d.inuse()/max(n, 1))), mib(d.fileSize), target)
	}
	httpName := fmt.Sprintf("logins through HTTP, one key each (`user` a short name of its own, in no order), each session read once after touch_interval %s", o.touch)
	if o.http != nil {
		per := o.http.alloc() / max(o.sessions, 1)
		row(httpName, o.sessions, o.http, verdict("≤ 280 B per session", per <= 280))
	}
	if o.large != nil {
		row("three keys each (~100 bytes), populated directly: the scale case's file, before a Caddy opens it", o.largeSessions, o.large, "")
	}
	b.WriteString("\n")
	if o.err != nil {
		fmt.Fprintf(&b, "The file made through HTTP was **not measured**: %v.\n", o.err)
	} else {
		fmt.Fprintf(&b, "Through HTTP: %s logins in %s (%s sessions/s, %d clients, fsync on), then each session read once in %s: %s store writes, the keep-alive writes.\n",
			thousands(o.sessions), o.loginFor.Round(100*time.Millisecond), thousands(int(float64(o.sessions)/o.loginFor.Seconds())), r.cfg.logins,
			o.readFor.Round(100*time.Millisecond), thousands(int(o.touches)))
	}
	for _, f := range []struct {
		name string
		n    int
		d    *density
	}{{"through HTTP", o.sessions, o.http}, {"populated", o.largeSessions, o.large}} {
		if f.d == nil {
			continue
		}
		var parts []string
		for _, bk := range f.d.buckets {
			parts = append(parts, fmt.Sprintf("%s %s", bk.name, bytesText(int64(bk.alloc/max(f.n, 1)))))
		}
		fmt.Fprintf(&b, "Bytes of pages per session by bucket, %s: %s.\n", f.name, strings.Join(parts, ", "))
	}
	b.WriteString("Pages are counted as `bbolt stats` counts them (branch and leaf pages allocated, overflow included, every bucket), read with bbolt's `Bucket.Stats` once no Caddy holds the file; free pages, the meta pages and the freelist are not counted, the file size is.\n")
	return b.String()
}

func percent(part, whole int) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}
