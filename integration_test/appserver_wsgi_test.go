package integration_test

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// The WSGI servers run testdata/appservers/wsgi_app.py under Debian's
// python3, with the server modules of Debian's packages (a python3 found
// first on PATH, such as pyenv's, has neither).
const debianPython = "/usr/bin/python3"

// gunicornServer is gunicorn, one worker with threads (the streaming
// test holds a response open while other requests come in), keeping idle
// connections longer than Caddy keeps its idle upstream connections (2
// minutes), as behind any proxy: with gunicorn's default of 2 seconds it
// may close one just as Caddy sends a request on it.
//
// gunicorn 20 turns every request header into HTTP_<NAME> with '-'
// replaced by '_', after uppercasing: X-Session-User, X_Session_User and
// x-session_user are one key of the environ, and a repeated key gets its
// values joined with ','. It keeps '.' as it is (HTTP_X.SESSION.USER),
// a name no WSGI app reads, but an app that walks the environ sees it.
var gunicornServer = appServerKind{
	name: "gunicorn",
	command: func(t *testing.T, addr string) *exec.Cmd {
		wsgiServerModule(t, "gunicorn", "apt-get install gunicorn")
		return wsgiCommand(t, "-m", "gunicorn", "--bind", addr, "--workers", "1",
			"--worker-class", "gthread", "--threads", "8", "--graceful-timeout", "2", "--keep-alive", "300",
			"--chdir", appServersDir(t), "wsgi_app:app")
	},
	headerViews: []string{"environ"},
	probes: map[string]string{
		"X_UNDER_PROBE": "u", "X.DOT.PROBE": "d", "X_MIXED_PROBE": "m", "X_DASH_PROBE": "h,h2",
	},
}

// waitressServer is waitress with threads for the streaming test, and,
// as gunicorn, idle connections kept longer than Caddy keeps its own
// (waitress's default is Caddy's 2 minutes).
//
// waitress drops every request header whose name holds '_' (so the '-'
// spelling, the one the plugin forwards, is the only one an app behind it
// sees), keeps '.' (HTTP_X.DOT.PROBE), and joins a repeated header's
// values with ", ". In responses it rewrites each name's case, a capital
// after each '-' (x-SESSION-set-CART is sent as X-Session-Set-Cart), and
// it refuses an app's hop-by-hop header, as PEP 3333 says, with a 500.
var waitressServer = appServerKind{
	name: "waitress",
	command: func(t *testing.T, addr string) *exec.Cmd {
		wsgiServerModule(t, "waitress", "apt-get install python3-waitress")
		cmd := wsgiCommand(t, "-m", "waitress", "--listen="+addr, "--threads=8", "--channel-timeout=300", "wsgi_app:app")
		cmd.Dir = appServersDir(t) // python -m puts it first on sys.path
		return cmd
	},
	headerViews:          []string{"environ"},
	dropsUnderscoreNames: true,
	probes:               map[string]string{"X.DOT.PROBE": "d", "X_DASH_PROBE": "h, h2"},
}

// wsgiServerModule ends the test unless Debian's python3 imports module.
func wsgiServerModule(t *testing.T, module, install string) {
	t.Helper()
	if out, err := exec.Command(debianPython, "-c", "import "+module).CombinedOutput(); err != nil {
		needAppServer(t, fmt.Sprintf("%s cannot import %s (install it with %s): %v: %s", debianPython, module, install, err, out))
	}
}

// wsgiCommand runs Debian's python3 with args; it writes no bytecode
// into testdata.
func wsgiCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(debianPython, args...)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	return cmd
}
