package main

import (
	"bufio"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/template"
)

// Tools: the peer (Apache httpd with mod_session_dbd over SQLite) and
// Redis come from Debian packages, installed when missing.
const (
	apacheBin     = "/usr/sbin/apache2"
	apacheModules = "/usr/lib/apache2/modules"
	sqliteDriver  = "/usr/lib/x86_64-linux-gnu/apr-util-1/apr_dbd_sqlite3-1.so"
)

// ensureTools installs what is missing with apt-get, or reports what is
// missing when install is false. Apache and its SQLite session database
// are needed only when a case compares with Apache; Redis outside the
// one-CPU mode, taskset in it.
func ensureTools(install, apache, oneCPU bool) error {
	var missing []string
	redis := !oneCPU
	if _, err := exec.LookPath("taskset"); oneCPU && err != nil {
		missing = append(missing, "util-linux")
	}
	if apache && !exists(apacheBin) {
		missing = append(missing, "apache2")
	}
	if apache && !exists(sqliteDriverPath()) {
		missing = append(missing, "libaprutil1-dbd-sqlite3")
	}
	if _, err := exec.LookPath("sqlite3"); apache && err != nil {
		missing = append(missing, "sqlite3")
	}
	if _, err := exec.LookPath("redis-server"); redis && err != nil {
		missing = append(missing, "redis-server")
	}
	if len(missing) == 0 {
		return nil
	}
	if !install {
		return fmt.Errorf("missing Debian packages %s; run without -install=false or apt-get install them", strings.Join(missing, " "))
	}
	logf("installing %s with apt-get", strings.Join(missing, " "))
	os.Setenv("DEBIAN_FRONTEND", "noninteractive")
	if _, err := command("apt-get", "update", "-qq"); err != nil {
		return err
	}
	args := append([]string{"apt-get", "install", "-y", "-qq", "--no-install-recommends"}, missing...)
	if _, err := command(args...); err != nil {
		return err
	}
	// The package starts Apache on systems with an init; the bench runs its
	// own on other ports and leaves a system one alone.
	return nil
}

// sqliteDriverPath finds APR's SQLite driver for this architecture.
func sqliteDriverPath() string {
	if m, _ := filepath.Glob("/usr/lib/*/apr-util-1/apr_dbd_sqlite3-1.so"); len(m) > 0 {
		return m[0]
	}
	return sqliteDriver
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// buildCaddy builds cmd/caddy from the repository at root into dir.
func buildCaddy(root, dir string) (string, error) {
	bin := filepath.Join(dir, "caddy")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/caddy")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building cmd/caddy: %v\n%s", err, out)
	}
	return bin, nil
}

// repoRoot finds the module's root from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 64 {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/caddy-session/caddy-session\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", fmt.Errorf("run the bench from inside the caddy-session repository")
}

// machine describes where the bench ran.
type machine struct {
	CPUs     int
	CPUModel string
	Memory   string
	Kernel   string
	Go       string
	Caddy    string
	Apache   string
	Redis    string
	Commit   string
}

func describeMachine(root, caddyBin string) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if name, value, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(name) == "model name" {
				m.CPUModel = strings.TrimSpace(value)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if name, value, ok := strings.Cut(sc.Text(), ":"); ok && name == "MemTotal" {
				var kb int64
				fmt.Sscan(value, &kb)
				m.Memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				break
			}
		}
		f.Close()
	}
	m.Kernel, _ = command("uname", "-r")
	if v, err := command(caddyBin, "version"); err == nil {
		m.Caddy = strings.Fields(v)[0]
	}
	if v, err := command(apacheBin, "-v"); err == nil {
		m.Apache = strings.TrimPrefix(strings.SplitN(v, "\n", 2)[0], "Server version: ")
	}
	if v, err := command("redis-server", "--version"); err == nil {
		for _, f := range strings.Fields(v) {
			if strings.HasPrefix(f, "v=") {
				m.Redis = strings.TrimPrefix(f, "v=")
			}
		}
	}
	if c, err := command("git", "-C", root, "rev-parse", "--short", "HEAD"); err == nil {
		m.Commit = c
		if st, err := command("git", "-C", root, "status", "--porcelain", "--untracked-files=no"); err == nil && st != "" {
			m.Commit += " (with uncommitted changes)"
		}
	}
	return m
}

// hasModule reports whether the Caddy binary has a module.
func hasModule(caddyBin, id string) bool {
	out, err := command(caddyBin, "list-modules")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == id {
			return true
		}
	}
	return false
}

//go:embed Caddyfile.tmpl
var caddyfileTemplate string

//go:embed apache.conf.tmpl
var apacheTemplate string

// writeTemplate renders text with data into path.
func writeTemplate(path, text string, data any) error {
	t, err := template.New(filepath.Base(path)).Option("missingkey=error").Parse(text)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := t.Execute(f, data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
