package integration_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/redistest"
)

// An operator upgrades a running deployment from the build of the previous
// main (commit upgradeOldCommit) to this one: the old cmd/caddy is built
// from that commit, logs users in on a bolt file and on a real
// redis-server (plain, remembered, sealed with seal_values, with realms,
// flash values, the cap and devices, on_store_error stale), is stopped,
// and this build runs on the same data and config: each session opens
// with its values and deadlines, and the user's index finds it. On Redis,
// both builds also run at once (a rolling upgrade), each reading,
// renewing and ending the sessions the other wrote.
//
// CADDY_SESSION_OLD_CADDY may name a binary built from that commit, to
// skip the build; the test is skipped when the commit is not in the
// repository (a shallow clone).
const upgradeOldCommit = "ee2e7e3"

var (
	upgradeOnce sync.Once
	upgradeBin  string
	upgradeErr  error
)

func upgradeOldBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("CADDY_SESSION_OLD_CADDY"); bin != "" {
		return bin
	}
	if err := exec.Command("git", "-C", "..", "cat-file", "-e", upgradeOldCommit+"^{commit}").Run(); err != nil {
		t.Skipf("commit %s is not in this repository: %v", upgradeOldCommit, err)
	}
	upgradeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "caddy-session-old-")
		if err != nil {
			upgradeErr = err
			return
		}
		// git archive, not a worktree: the repository's worktrees stay
		// as they are.
		extract := exec.Command("sh", "-c", `git archive --format=tar "$1" | tar -x -C "$2"`, "sh", upgradeOldCommit, dir)
		extract.Dir = ".."
		if out, err := extract.CombinedOutput(); err != nil {
			upgradeErr = fmt.Errorf("extracting %s: %v\n%s", upgradeOldCommit, err, out)
			return
		}
		defer os.RemoveAll(dir) // the sources; the binary goes beside caddyBinary's
		bin, err := os.MkdirTemp("", "caddy-session-bin-")
		if err != nil {
			upgradeErr = err
			return
		}
		upgradeBin = filepath.Join(bin, "caddy-"+upgradeOldCommit)
		build := exec.Command("go", "build", "-o", upgradeBin, "./cmd/caddy")
		build.Dir = dir
		if out, err := build.CombinedOutput(); err != nil {
			upgradeErr = fmt.Errorf("building cmd/caddy at %s: %v\n%s", upgradeOldCommit, err, out)
		}
	})
	if upgradeErr != nil {
		t.Fatal(upgradeErr)
	}
	return upgradeBin
}

// upgradeCaddy is one Caddy process of a given binary.
type upgradeCaddy struct {
	t           *testing.T
	name        string
	bin, config string
	admin, port int // port: the site (the plain one of upgradeConfig)
	sealedPort  int
	cmd         *exec.Cmd
	exited      chan struct{}
	logs        *bytes.Buffer
}

// upgradeConfig is the deployment: a site of realm shop with remember,
// the cap, devices and on_store_error stale, and a site of realm vault
// that seals its values, on one store.
func upgradeConfig(admin, port, sealedPort int, store, up string) string {
	return fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	session {
		%s
		realm shop
		remember
		max_sessions_per_identity 2
		record_user_agent
		devices /devices
		on_store_error stale 1m
	}
	reverse_proxy %s
}
http://127.0.0.1:%d {
	session {
		%s
		realm vault
		cookie vid
		seal_values {
			index_key upgrade3-index-key-of-thirty-two-bytes-or-more
		}
	}
	reverse_proxy %s
}
`, admin, port, store, up, sealedPort, store, up)
}

func startUpgradeCaddy(t *testing.T, name, bin, store string, up *upstream) *upgradeCaddy {
	t.Helper()
	admin, port, sealedPort := freePort(t), freePort(t), freePort(t)
	c := startUpgradeWith(t, name, bin, upgradeConfig(admin, port, sealedPort, store, up.addr()), admin, port)
	c.sealedPort = sealedPort
	waitPort(t, sealedPort)
	return c
}

// startUpgradeWith runs bin on the Caddyfile text config, which sets
// `admin localhost:<admin>` and serves port.
func startUpgradeWith(t *testing.T, name, bin, config string, admin, port int) *upgradeCaddy {
	t.Helper()
	c := &upgradeCaddy{t: t, name: name, bin: bin, admin: admin, port: port, logs: new(bytes.Buffer)}
	c.config = filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(c.config, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("%s caddy logs:\n%s", c.name, c.logs)
		}
	})
	c.start()
	return c
}

// as runs the same config, ports and data with another binary.
func (c *upgradeCaddy) as(name, bin string) {
	c.t.Helper()
	c.stop()
	c.name, c.bin = name, bin
	c.start()
}

func (c *upgradeCaddy) start() {
	c.t.Helper()
	c.cmd = exec.Command(c.bin, "run", "--config", c.config, "--adapter", "caddyfile")
	c.cmd.Stdout, c.cmd.Stderr = c.logs, c.logs
	c.cmd.Env = append(os.Environ(), "HOME="+c.t.TempDir(), "XDG_DATA_HOME="+c.t.TempDir())
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	exited := make(chan struct{})
	cmd := c.cmd
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	c.exited = exited
	// Poll the admin endpoint: a readiness check, not a sleep over a race.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			c.cmd = nil
			c.t.Fatalf("%s caddy refused the config (its logs follow)", c.name)
		default:
		}
		res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/config/", c.admin))
		if err == nil {
			res.Body.Close()
			waitPort(c.t, c.port)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("%s caddy did not start; logs:\n%s", c.name, c.logs)
}

func (c *upgradeCaddy) stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	<-c.exited
	c.cmd = nil
}

func (c *upgradeCaddy) site(sealed bool) *site {
	port := c.port
	if sealed {
		port = c.sealedPort
	}
	s := &site{t: c.t, tester: caddytest.NewTester(c.t), port: port}
	s.tester.Client.Jar = nil
	return s
}

// upgradeListed is a session of the admin API's listing.
type upgradeListed struct {
	Hash       string   `json:"hash"`
	Realm      string   `json:"realm"`
	Idle       string   `json:"idle_deadline"`
	Absolute   string   `json:"absolute_deadline"`
	Remembered bool     `json:"remembered"`
	Keys       []string `json:"keys"`
}

func (c *upgradeCaddy) listing() map[string]upgradeListed {
	c.t.Helper()
	res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/session/sessions?limit=1000", c.admin))
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		c.t.Fatalf("%s: listing: %d %s", c.name, res.StatusCode, body)
	}
	var page struct {
		Sessions []upgradeListed `json:"sessions"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		c.t.Fatalf("%s: listing: %v: %s", c.name, err, body)
	}
	out := map[string]upgradeListed{}
	for _, s := range page.Sessions {
		out[s.Hash] = s
	}
	return out
}

func (c *upgradeCaddy) revoke(user, realm string) int {
	c.t.Helper()
	body := fmt.Sprintf(`{"value": %q, "realm": %q}`, user, realm)
	res, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/session/revoke", c.admin), "application/json", strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	var got struct {
		Revoked int `json:"revoked"`
	}
	if res.StatusCode != http.StatusOK || json.Unmarshal(out, &got) != nil {
		c.t.Fatalf("%s: revoke %s: %d %s", c.name, user, res.StatusCode, out)
	}
	return got.Revoked
}

// upgradeVault is a visitor of the sealed site, whose cookie is vid.
type upgradeVault struct {
	s   *site
	vid string
}

func (v *upgradeVault) get(path string, commands ...string) *response {
	v.s.t.Helper()
	var h []string
	for _, c := range commands {
		h = append(h, "Test-Header", c)
	}
	vis := &visitor{site: v.s}
	if v.vid != "" {
		vis.cookies = "vid=" + v.vid
	}
	r := vis.do(http.MethodGet, path, h...)
	for _, c := range r.Cookies() {
		if c.Name == "vid" {
			if c.MaxAge < 0 {
				v.vid = ""
			} else {
				v.vid = c.Value
			}
		}
	}
	return r
}

func previousMainExpect(t *testing.T, what string, r *response, want map[string]string) {
	t.Helper()
	expectStatus(t, r, http.StatusOK)
	got := r.session()
	delete(got, "X-Session-Meta-Devices")
	if len(got) != len(want) {
		t.Fatalf("%s: the app saw %v, want %v", what, got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: the app saw %v, want %v", what, got, want)
		}
	}
}

func TestUpgradeSessionsOfThePreviousMainOpen(t *testing.T) {
	slow(t, "builds the previous main's Caddy and runs both binaries")
	old, cur := upgradeOldBinary(t), caddyBinary(t)
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"bolt", func(t *testing.T) string { return "store bolt " + filepath.Join(t.TempDir(), "sessions.db") }},
		{"redis", func(t *testing.T) string { return "store redis " + redistest.Start(t).URL() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := startUpstream(t)
			c := startUpgradeCaddy(t, "old", old, tc.store(t), up)
			shop, vault := c.site(false), c.site(true)

			plain := shop.visitor()
			plain.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Cart: 3")
			remembered := shop.visitor()
			r := remembered.get("/login", "X-Session-Set-User: alice", "X-Session-Remember: true")
			if ck := r.sessionCookie(); ck == nil || ck.MaxAge <= 0 {
				t.Fatalf("old build: the remembered login's cookie has no Max-Age: %v", ck)
			}
			flash := shop.visitor()
			flash.get("/login", "X-Session-Set-User: bob", "X-Session-Flash-Notice: Saved")
			sealed := &upgradeVault{s: vault}
			sealed.get("/login", "X-Session-Set-User: carol", "X-Session-Set-Secret: s3")
			if plain.sid == "" || remembered.sid == "" || flash.sid == "" || sealed.vid == "" {
				t.Fatal("old build: a login issued no session")
			}
			before := c.listing()
			if len(before) != 4 {
				t.Fatalf("old build lists %d sessions, want 4", len(before))
			}

			c.as("new", cur)
			shop, vault = c.site(false), c.site(true)
			plain.site, remembered.site, flash.site, sealed.s = shop, shop, shop, vault

			after := c.listing()
			for hash, b := range before {
				a, ok := after[hash]
				if !ok {
					t.Fatalf("new build does not list session %.16s", hash)
				}
				if a.Idle != b.Idle || a.Absolute != b.Absolute || a.Remembered != b.Remembered || a.Realm != b.Realm {
					t.Errorf("session %.16s: new build lists %+v, old listed %+v", hash, a, b)
				}
			}

			previousMainExpect(t, "plain", plain.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Cart": "3"})
			previousMainExpect(t, "remembered", remembered.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Meta-Remembered": "true"})
			previousMainExpect(t, "flash", flash.navigate(http.MethodGet, "/"), map[string]string{"X-Session-User": "bob", "X-Session-Flash-Notice": "Saved"})
			previousMainExpect(t, "flash, once", flash.navigate(http.MethodGet, "/"), map[string]string{"X-Session-User": "bob"})
			previousMainExpect(t, "sealed", sealed.get("/"), map[string]string{"X-Session-User": "carol", "X-Session-Secret": "s3"})

			// The user's index: devices lists both of alice's sessions.
			if d := plain.get("/devices").devices(t); len(d) != 2 {
				t.Fatalf("devices lists %d of alice's sessions, want 2: %+v", len(d), d)
			}
			// The cap (2): a third login ends one of the two.
			third := shop.visitor()
			third.get("/login", "X-Session-Set-User: alice")
			open := 0
			for _, v := range []*visitor{plain, remembered} {
				if v.get("/").session()["X-Session-User"] == "alice" {
					open++
				}
			}
			if open != 1 {
				t.Fatalf("after a third login of alice, %d of her two earlier sessions open, want 1", open)
			}
			// A logout everywhere ends the rest.
			third.get("/logout", "X-Session-Destroy-All: true")
			for i, v := range []*visitor{plain, remembered, third} {
				if u := v.get("/").session()["X-Session-User"]; u != "" {
					t.Fatalf("session %d of alice opens after her logout everywhere", i)
				}
			}
			// Revoke by user finds the sealed session of the old build.
			if n := c.revoke("carol", "vault"); n != 1 {
				t.Fatalf("revoking carol ended %d sessions, want 1", n)
			}
			if u := sealed.get("/").session()["X-Session-User"]; u != "" {
				t.Fatal("carol's sealed session opens after her revocation")
			}
		})
	}
}

// TestUpgradeRollingOnRedis runs the previous main and this build at once
// on one Redis, as a rolling upgrade does: a session written by either is
// read, changed, renewed and ended by the other.
func TestUpgradeRollingOnRedis(t *testing.T) {
	slow(t, "builds the previous main's Caddy and runs both binaries")
	oldBin, cur := upgradeOldBinary(t), caddyBinary(t)
	store := "store redis " + redistest.Start(t).URL()
	up := startUpstream(t)
	old := startUpgradeCaddy(t, "old", oldBin, store, up)
	cur3 := startUpgradeCaddy(t, "new", cur, store, up)
	builds := []*upgradeCaddy{old, cur3}

	for i, first := range builds {
		other := builds[1-i]
		name := first.name + " then " + other.name
		v := first.site(false).visitor()
		v.get("/login", "X-Session-Set-User: dave", "X-Session-Set-Cart: 1")
		v.site = other.site(false)
		previousMainExpect(t, name+": read", v.get("/"), map[string]string{"X-Session-User": "dave", "X-Session-Cart": "1"})
		v.get("/", "X-Session-Set-Cart: 2", "X-Session-Flash-Notice: Hi")
		v.site = first.site(false)
		previousMainExpect(t, name+": written back", v.navigate(http.MethodGet, "/"), map[string]string{"X-Session-User": "dave", "X-Session-Cart": "2", "X-Session-Flash-Notice": "Hi"})
		v.site = other.site(false)
		sid := v.sid
		v.get("/", "X-Session-Renew: true")
		if v.sid == sid || v.sid == "" {
			t.Fatalf("%s: the renewal gave no new ID", name)
		}
		v.site = first.site(false)
		previousMainExpect(t, name+": renewed", v.get("/"), map[string]string{"X-Session-User": "dave", "X-Session-Cart": "2"})

		// The sealed site: login on one, logout everywhere on the other.
		s := &upgradeVault{s: first.site(true)}
		s.get("/login", "X-Session-Set-User: erin", "X-Session-Set-Secret: x")
		s2 := &upgradeVault{s: other.site(true)}
		s2.get("/login", "X-Session-Set-User: erin")
		s2.get("/logout", "X-Session-Destroy-All: true")
		s.s = other.site(true)
		if u := s.get("/").session()["X-Session-User"]; u != "" {
			t.Fatalf("%s: erin's sealed session opens on %s after her logout everywhere there", name, other.name)
		}
		s.s = first.site(true)
		if u := s.get("/").session()["X-Session-User"]; u != "" {
			t.Fatalf("%s: erin's sealed session opens on %s after her logout everywhere on %s", name, first.name, other.name)
		}

		// Ended by the other.
		v.site = other.site(false)
		v.get("/logout", "X-Session-Destroy: true")
		v.site = first.site(false)
		if u := v.get("/").session()["X-Session-User"]; u != "" {
			t.Fatalf("%s: the session opens on %s after its logout on %s", name, first.name, other.name)
		}
		// Revoked by user through the other's admin API.
		w := first.site(false).visitor()
		w.get("/login", "X-Session-Set-User: fay")
		if n := other.revoke("fay", "shop"); n != 1 {
			t.Fatalf("%s: revoking fay through %s ended %d sessions, want 1", name, other.name, n)
		}
		if u := w.get("/").session()["X-Session-User"]; u != "" {
			t.Fatalf("%s: fay's session opens after her revocation", name)
		}
	}
}
