package integration_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// expressServer is Node serving testdata/appservers/express/app.js with
// the Express of its package-lock.json.
//
// Node lowercases request header names in req.headers and keeps them as
// sent in req.rawHeaders; it treats '_' and '.' as any other character
// (x_session_user and x-session-user are two headers to an Express app,
// though not to a CGI one behind the same Caddy), and joins a repeated
// header's values with ", ". Request trailers are in req.trailers once
// the body is read. It sends response header names in the case the app
// gave them, res.writeEarlyHints's 103 with whatever headers it is given,
// and res.addTrailers's trailers announced or not.
var expressServer = appServerKind{
	name: "express",
	command: func(t *testing.T, addr string) *exec.Cmd {
		node, err := exec.LookPath("node")
		if err != nil {
			needAppServer(t, fmt.Sprintf("node is missing (install it with apt-get install nodejs npm): %v", err))
		}
		modules := expressModules(t)
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(node, "app.js", port)
		cmd.Dir = filepath.Join(appServersDir(t), "express")
		cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
		return cmd
	},
	headerViews:  []string{"headers", "rawHeaders"},
	trailerViews: []string{"trailers", "rawTrailers"},
	probes: map[string]string{
		"x_under_probe": "u", "x.dot.probe": "d", "x-mixed_probe": "m", "x-dash-probe": "h, h2",
	},
}

// expressInstall is the one npm ci of a test binary.
var expressInstall struct {
	once    sync.Once
	modules string
	err     error
}

// expressModules returns the node_modules directory of the Express app,
// installed with npm ci from its package-lock.json, once per test binary,
// into the user's cache directory (never into the repository): one
// directory per lock file, which later runs reuse.
func expressModules(t *testing.T) string {
	t.Helper()
	npm, err := exec.LookPath("npm")
	if err != nil {
		needAppServer(t, fmt.Sprintf("npm is missing (install it with apt-get install nodejs npm): %v", err))
	}
	src := filepath.Join(appServersDir(t), "express")
	expressInstall.once.Do(func() {
		expressInstall.modules, expressInstall.err = installExpress(npm, src)
	})
	if expressInstall.err != nil {
		needAppServer(t, fmt.Sprintf("installing the Express app's packages: %v", expressInstall.err))
	}
	return expressInstall.modules
}

// installExpress runs npm ci for the package.json and package-lock.json
// in src, in a directory of its own named by their hash, unless a
// previous run has. It installs into a temporary directory and renames it
// into place, so that a run interrupted, or another test process at the
// same moment, leaves no half-installed directory to be reused.
func installExpress(npm, src string) (string, error) {
	files := []string{"package.json", "package-lock.json"}
	sum := sha256.New()
	contents := map[string][]byte{}
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return "", err
		}
		contents[name] = b
		sum.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	root := filepath.Join(cache, "caddy-session-tests")
	dir := filepath.Join(root, "express-"+hex.EncodeToString(sum.Sum(nil))[:16])
	modules := filepath.Join(dir, "node_modules")
	installed := func() bool {
		_, err := os.Stat(filepath.Join(modules, "express", "package.json"))
		return err == nil
	}
	if installed() {
		return modules, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(root, "installing-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // nothing is left there once renamed
	for _, name := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), contents[name], 0o644); err != nil {
			return "", err
		}
	}
	// npm ci fetches from the registry: a fresh machine's first run
	// depends on the network, and one failed fetch is tried again (npm ci
	// starts over from the lock file each time).
	var out []byte
	for range 3 {
		cmd := exec.Command(npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
		cmd.Dir = tmp
		if out, err = cmd.CombinedOutput(); err == nil {
			break
		}
	}
	if err != nil {
		return "", fmt.Errorf("npm ci in %s, three times: %v\n%s", tmp, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil && !installed() {
		return "", err
	}
	return modules, nil
}
