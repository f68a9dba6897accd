package integration_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// phpFPMNames are the names php-fpm goes by: Debian installs it as
// php-fpm<version>, other systems as php-fpm. Each is looked for on PATH,
// then in /usr/sbin, where Debian puts it and which a user's PATH may
// lack.
var phpFPMNames = []string{"php-fpm", "php-fpm8.4", "php-fpm8.3", "php-fpm8.2"}

// phpFPMStartTimeout bounds how long php-fpm may take to accept FastCGI
// connections.
const phpFPMStartTimeout = 10 * time.Second

// phpFPM is a php-fpm master of the test's own, on a free loopback port,
// with its config and logs in the test's temporary directory. It runs the
// PHP files that Caddy's php_fastcgi names, as Debian's PHP runs them
// (its php.ini and extensions), except that every error, warning, notice
// and deprecation is logged, and one logged fails the test: a README
// snippet that PHP warns about is a finding.
type phpFPM struct {
	addr      string // host:port of its FastCGI listener
	log       string // the master's log
	phpErrors string // where PHP logs what the scripts did wrong
}

// phpFPMBinary returns the path of php-fpm, or ends the test: a skip that
// says how to install it, or a failure under CI=true, where .ci/run
// installs it.
func phpFPMBinary(t *testing.T) string {
	t.Helper()
	for _, dir := range []string{"", "/usr/sbin/"} {
		for _, name := range phpFPMNames {
			if path, err := exec.LookPath(dir + name); err == nil {
				return path
			}
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("php-fpm is missing, and CI needs it: .ci/run installs it with apt-get install php-fpm")
	}
	t.Skip("php-fpm is missing; install it with apt-get install php-fpm to run the README's PHP snippets")
	return ""
}

// startPHPFPM starts php-fpm in the foreground and stops it when the test
// ends. The port is free when freePort returns but may be taken before
// php-fpm binds it; a php-fpm that exits at startup is tried again on
// another port.
func startPHPFPM(t *testing.T) *phpFPM {
	t.Helper()
	bin := phpFPMBinary(t)
	dir := t.TempDir()
	fpm := &phpFPM{log: filepath.Join(dir, "php-fpm.log"), phpErrors: filepath.Join(dir, "php-errors.log")}
	var err error
	for range 3 {
		fpm.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		if err = fpm.start(t, bin, dir); err == nil {
			return fpm
		}
	}
	t.Fatalf("starting %s: %v\n%s", bin, err, readPHPFPMLog(fpm.log))
	return nil
}

// start runs php-fpm on fpm.addr and waits until it accepts connections:
// a readiness check with a deadline, not a sleep over a race.
func (fpm *phpFPM) start(t *testing.T, bin, dir string) error {
	t.Helper()
	// Run as root, php-fpm wants its workers' user named, and -R to accept
	// root; as anyone else, it runs them as itself.
	var user string
	args := []string{"--nodaemonize", "--fpm-config", filepath.Join(dir, "php-fpm.conf")}
	if os.Geteuid() == 0 {
		user = "user = root\ngroup = root\n"
		args = append(args, "--allow-to-run-as-root")
	}
	conf := fmt.Sprintf(`[global]
pid = %s
error_log = %s

[app]
%slisten = %s
pm = static
pm.max_children = 4
php_admin_flag[log_errors] = on
php_admin_value[error_log] = %s
php_admin_flag[display_errors] = off
; E_ALL
php_admin_value[error_reporting] = 32767
`, filepath.Join(dir, "php-fpm.pid"), fpm.log, user, fpm.addr, fpm.phpErrors)
	if err := os.WriteFile(filepath.Join(dir, "php-fpm.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	// Its own process group, so that its workers can be ended with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { fpm.stop(t, cmd.Process, exited) })

	deadline := time.Now().Add(phpFPMStartTimeout)
	for {
		select {
		case err := <-exited:
			exited <- err // for stop
			return fmt.Errorf("php-fpm exited at startup: %v", err)
		default:
		}
		conn, err := net.DialTimeout("tcp", fpm.addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("php-fpm did not accept connections on %s within %s: %v", fpm.addr, phpFPMStartTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends php-fpm and its workers, then fails the test if PHP logged
// anything, and shows the master's log if the test failed.
func (fpm *phpFPM) stop(t *testing.T, p *os.Process, exited chan error) {
	stopAppServer(p, exited)
	if logged := readPHPFPMLog(fpm.phpErrors); logged != "" {
		t.Errorf("PHP logged, running the snippets:\n%s", logged)
	}
	if t.Failed() {
		t.Logf("php-fpm on %s:\n%s", fpm.addr, readPHPFPMLog(fpm.log))
	}
}

// readPHPFPMLog returns the contents of a log file, "" if it was never written.
func readPHPFPMLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err.Error()
	}
	return string(b)
}
