package integration_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

// caddyBinary builds cmd/caddy once per test run and returns its path: the
// same Caddy a user runs, for tests that need separate processes (restarts,
// several instances, crashes).
func caddyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "caddy-session-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "caddy")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/caddy")
		cmd.Dir = ".."
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("building cmd/caddy: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

// process is a Caddy started from the binary.
type process struct {
	t      *testing.T
	cmd    *exec.Cmd
	config string
	admin  int
	logs   *bytes.Buffer
}

// startCaddy runs the binary with a Caddyfile whose text is config; the
// config must set `admin localhost:<admin>`. It waits until the admin
// endpoint answers and stops the process at the end of the test.
func startCaddy(t *testing.T, config string, admin int) *process {
	t.Helper()
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, config: path, admin: admin, logs: new(bytes.Buffer)}
	p.start()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("caddy logs:\n%s", p.logs)
		}
	})
	return p
}

func (p *process) start() {
	p.t.Helper()
	p.cmd = exec.Command(caddyBinary(p.t), "run", "--config", p.config, "--adapter", "caddyfile")
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.Env = append(os.Environ(), "HOME="+p.t.TempDir())
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	// Poll the admin endpoint: a readiness check, not a sleep over a race.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/config/", p.admin))
		if err == nil {
			res.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("caddy did not start; logs:\n%s", p.logs)
}

// stop ends the process gracefully, as `caddy stop` or a service manager
// would, and waits for it.
func (p *process) stop() {
	p.t.Helper()
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
	p.cmd = nil
}

// kill ends the process at once, as a crash would.
func (p *process) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.cmd = nil
}

// startBoltCaddy runs the binary with one site that has the session handler
// on a bolt file in a temporary folder, in front of up, and waits until the
// site answers. It returns the process, the site's port and the file.
func startBoltCaddy(t *testing.T, up *upstream) (p *process, port int, db string) {
	t.Helper()
	port, admin := freePort(t), freePort(t)
	db = filepath.Join(t.TempDir(), "sessions.db")
	p = startCaddy(t, fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	session {
		store bolt %s
	}
	reverse_proxy %s
}
`, admin, port, db, up.addr()), admin)
	waitPort(t, port)
	return p, port, db
}

// waitPort waits until something listens on the loopback port.
func waitPort(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d", port)
}
