package integration_test

// The header protocol through the app servers users put behind the
// plugin: gunicorn and waitress serving a WSGI app, and Node serving an
// Express app (testdata/appservers). The other tests talk to a Go
// upstream; a real server reads and writes headers in ways of its own
// (it folds '_' into '-', drops names, merges repeated headers, rewrites
// the case of names, refuses hop-by-hop headers from the app, sends
// 103s and trailers), and what the README and SECURITY.md promise must
// hold through each of them. Each app reports what it saw in its own
// representation of the request (the WSGI environ; Node's req.headers,
// req.rawHeaders and req.trailers), so the tests check what an app
// would read, not what went over the wire.

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// appServerKind is a real app server, serving its test app.
type appServerKind struct {
	name string
	// command returns the command that serves the test app on addr
	// (host:port), or ends the test if the server is missing.
	command func(t *testing.T, addr string) *exec.Cmd
	// headerViews are the app's representations of the request headers,
	// each of which must show the session: the WSGI environ; Node's
	// req.headers and req.rawHeaders.
	headerViews []string
	// trailerViews are its representations of the request trailers, if
	// the app sees them at all (WSGI has none).
	trailerViews []string
	// dropsUnderscoreNames: the server itself drops request headers whose
	// names hold '_'.
	dropsUnderscoreNames bool
	// probes is what the app sees, in headerViews[0], of the names with
	// '_' and '.' that TestAppServerNamesWithUnderscoresAndDots sends.
	probes map[string]string
}

// appServerKinds are the servers every test here runs against, each
// defined in its own file: appserver_wsgi_test.go, appserver_express_test.go.
func appServerKinds() []appServerKind {
	return []appServerKind{gunicornServer, waitressServer, expressServer}
}

// appServerStartTimeout bounds how long a server may take to answer its
// first request: Python imports and Node's startup on a busy machine.
const appServerStartTimeout = 30 * time.Second

// appServer is a running app server of the test's own.
type appServer struct {
	kind    appServerKind
	addr    string // host:port
	version string // what its /healthz says, e.g. gunicorn/20.1.0
}

// onEachAppServer runs test once per kind of app server, each with a
// server of its own.
func onEachAppServer(t *testing.T, test func(t *testing.T, app *appServer)) {
	for _, kind := range appServerKinds() {
		t.Run(kind.name, func(t *testing.T) {
			test(t, startAppServer(t, kind))
		})
	}
}

// appServersDir is the absolute path of testdata/appservers, where the
// apps' sources are.
func appServersDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "appservers"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// needAppServer ends the test because something an app server needs is
// missing: a skip that says how to install it, or a failure under
// CI=true, where .ci/run installs it.
func needAppServer(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// startAppServer starts the server on a free loopback port and stops it
// when the test ends. The port is free when freePort returns but may be
// taken before the server binds it; a server that exits at startup is
// tried again on another port.
func startAppServer(t *testing.T, kind appServerKind) *appServer {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), kind.name+".log")
	var err error
	for range 3 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		var version string
		if version, err = runAppServer(t, kind.command(t, addr), addr, logPath); err == nil {
			if !strings.HasPrefix(version, kind.name) {
				t.Fatalf("the app on %s says it runs under %q, not %s", addr, version, kind.name)
			}
			t.Logf("%s on %s", version, addr)
			return &appServer{kind: kind, addr: addr, version: version}
		}
	}
	t.Fatalf("starting %s: %v\n%s", kind.name, err, readAppServerLog(logPath))
	return nil
}

// runAppServer starts cmd, with its output in logPath, and waits until it
// answers /healthz on addr: a readiness check with a deadline, not a
// sleep over a race. It returns the server and version the app reports.
func runAppServer(t *testing.T, cmd *exec.Cmd, addr, logPath string) (string, error) {
	t.Helper()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so that its workers end with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		stopAppServer(cmd.Process, exited)
		if t.Failed() {
			t.Logf("%s:\n%s", cmd, readAppServerLog(logPath))
		}
	})

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(appServerStartTimeout)
	for {
		select {
		case err := <-exited:
			exited <- err // for stopAppServer
			return "", fmt.Errorf("%s exited at startup: %v", cmd, err)
		default:
		}
		version, err := appServerHealth(client, addr)
		if err == nil {
			return version, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s did not answer on %s within %s: %v", cmd, addr, appServerStartTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// appServerHealth asks the app on addr which server runs it.
func appServerHealth(client *http.Client, addr string) (string, error) {
	res, err := client.Get("http://" + addr + "/healthz")
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var health struct {
		Server string `json:"server"`
	}
	if err := json.NewDecoder(res.Body).Decode(&health); err != nil || res.StatusCode != http.StatusOK || health.Server == "" {
		return "", fmt.Errorf("/healthz answered %d, %+v, %v", res.StatusCode, health, err)
	}
	return health.Server, nil
}

// stopAppServer ends the server's process group: politely, then, after
// ten seconds, not.
func stopAppServer(p *os.Process, exited chan error) {
	// The group is signalled while its leader is not yet reaped, so its
	// ID names no other process.
	_ = syscall.Kill(-p.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
		<-exited
	}
}

func readAppServerLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err.Error()
	}
	return string(b)
}

// letUnderscoresAndDotsThrough are server options under which Caddy
// passes request headers whose names hold '_' or '.' (it drops them by
// default), for the spellings of the session namespace the tests send
// and for the probes of TestAppServerNamesWithUnderscoresAndDots. Under
// them only the plugin stands between such a name and the app; under
// Caddy's defaults only the plugin stands between the '-' spellings and
// the app, since with these options Caddy drops the '-' spelling of each
// name it lets through.
const letUnderscoresAndDotsThrough = `servers {
		expected_underscore_headers X_Session_* X-Session_* X_Session-* X.Session_User X_Under_Probe X-Mixed_Probe
		expected_dot_headers X.Session.* X-Session.* X_Session.User X.Dot.Probe
	}`

// appSite is Caddy with the session handler in front of an app server.
type appSite struct {
	*site
	app *appServer
}

// newAppSite loads a site with `session { store bolt <tmp> }` and a
// reverse_proxy to the app, with these global options besides the
// harness's (such as letUnderscoresAndDotsThrough). Its client follows no
// redirect.
func newAppSite(t *testing.T, app *appServer, globals string) *appSite {
	t.Helper()
	return loadAppSite(t, app, globals, true)
}

// newAppSiteWithoutSessions is newAppSite with no session handler: the
// app as it would be without the plugin.
func newAppSiteWithoutSessions(t *testing.T, app *appServer, globals string) *appSite {
	t.Helper()
	return loadAppSite(t, app, globals, false)
}

func loadAppSite(t *testing.T, app *appServer, globals string, sessions bool) *appSite {
	t.Helper()
	s := &site{
		t:       t,
		tester:  caddytest.NewTester(t),
		port:    freePort(t),
		db:      filepath.Join(t.TempDir(), "sessions.db"),
		globals: globals,
	}
	s.tester.Client.Jar = nil
	s.tester.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	handler := fmt.Sprintf("session {\n\t\tstore bolt %s\n\t}", s.db)
	if !sessions {
		handler = "# no session handler"
	}
	s.reload(fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	skip_install_trust
	%s
}
http://127.0.0.1:%d {
	%s
	reverse_proxy %s
}
`, adminPort, s.port, freePort(t), s.globals, s.port, handler, app.addr))
	return &appSite{site: s, app: app}
}

// in returns the site for the (sub)test t: its helpers then fail t, not
// the test that made the site.
func (a *appSite) in(t *testing.T) *appSite {
	s := *a.site
	s.t = t
	return &appSite{site: &s, app: a.app}
}

// appView is what an app reports it saw, in its server's own
// representations of the request.
type appView struct {
	Server string `json:"server"`
	// WSGI: every HTTP_* key of the environ.
	Environ map[string]string `json:"environ"`
	// Node: req.headers (a value is a string, or a list for Set-Cookie),
	// req.rawHeaders (name, value, name, value...), and the same of the
	// request's trailers.
	Headers     map[string]any    `json:"headers"`
	RawHeaders  []string          `json:"rawHeaders"`
	Trailers    map[string]string `json:"trailers"`
	RawTrailers []string          `json:"rawTrailers"`
}

// names returns the entries of one representation, by the name the app
// reads them under: environ keys without HTTP_, header names as Node
// gives them; repeated entries of rawHeaders and rawTrailers are joined
// with " | ".
func (v appView) names(view string) map[string]string {
	out := map[string]string{}
	add := func(name, value string) {
		if prev, ok := out[name]; ok {
			value = prev + " | " + value
		}
		out[name] = value
	}
	pairs := func(raw []string) {
		for i := 0; i+1 < len(raw); i += 2 {
			add(raw[i], raw[i+1])
		}
	}
	switch view {
	case "environ":
		for k, val := range v.Environ {
			if name, ok := strings.CutPrefix(k, "HTTP_"); ok {
				add(name, val)
			}
		}
	case "headers":
		for k, val := range v.Headers {
			if list, ok := val.([]any); ok { // Set-Cookie
				for _, item := range list {
					add(k, fmt.Sprint(item))
				}
				continue
			}
			add(k, fmt.Sprint(val))
		}
	case "rawHeaders":
		pairs(v.RawHeaders)
	case "trailers":
		for k, val := range v.Trailers {
			add(k, val)
		}
	case "rawTrailers":
		pairs(v.RawTrailers)
	}
	return out
}

// appViews are all the representations an app may report.
var appViews = []string{"environ", "headers", "rawHeaders", "trailers", "rawTrailers"}

// namespace returns, for each representation that holds any, the entries
// in the session's namespace, each under its name as the plugin reads
// request names (lowercase, '_' and '.' as '-') less X-Session-: what a
// CGI-minded app could take for a session header, in any spelling.
func (v appView) namespace() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, view := range appViews {
		for name, value := range v.names(view) {
			folded := strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(name))
			key, ok := strings.CutPrefix(folded, "x-session-")
			if !ok {
				continue
			}
			if out[view] == nil {
				out[view] = map[string]string{}
			}
			if prev, ok := out[view][key]; ok {
				value = prev + " | " + value
			}
			out[view][key] = value
		}
	}
	return out
}

// expectNamespace fails the test unless the app saw exactly the session
// want (key → value) in each of its representations of the headers, and
// nothing of the namespace anywhere else (its trailers).
func expectNamespace(t *testing.T, kind appServerKind, v appView, want map[string]string) {
	t.Helper()
	expected := map[string]map[string]string{}
	if len(want) > 0 {
		for _, view := range kind.headerViews {
			expected[view] = want
		}
	}
	if got := v.namespace(); !maps.EqualFunc(got, expected, maps.Equal) {
		t.Fatalf("the app saw %v in the namespace, want %v", got, expected)
	}
}

// appExchange is one request through Caddy to the app: the final
// response, its body, the 1xx responses before it, and what the app saw
// if it answered with its report.
type appExchange struct {
	res   *http.Response
	body  []byte
	hints []http.Header
	view  appView
}

// send sends method path for the visitor, with its cookie and more
// request headers as name, value pairs, and reads the whole response. It
// fails the test if a namespace header reached the client anywhere (1xx,
// headers, trailers, Trailer announcements); the visitor keeps the
// cookie it is given.
func (a *appSite) send(v *visitor, method, path string, headers ...string) appExchange {
	a.t.Helper()
	var ex appExchange
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		ex.hints = append(ex.hints, http.Header(h).Clone())
		return nil
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, a.url(path), nil)
	if err != nil {
		a.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	if v.sid != "" {
		req.Header.Set("Cookie", "sid="+v.sid)
	}
	res, err := a.tester.Client.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	ex.res = res
	ex.body, err = io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		a.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	assertNoneLeaked(a.t, res)
	for _, h := range ex.hints {
		assertNoNamespace(a.t, h)
	}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") && len(ex.body) > 0 {
		if err := json.Unmarshal(ex.body, &ex.view); err != nil {
			a.t.Fatalf("%s %s: the app's report %q: %v", method, path, ex.body, err)
		}
	}
	for _, c := range res.Cookies() {
		if c.Name == "sid" {
			v.sid = c.Value
			if c.MaxAge < 0 {
				v.sid = ""
			}
		}
	}
	return ex
}

// session returns the session the app saw in ex (key → value, flash
// values as flash-<key>), which must be the same in each representation
// of the request headers and absent from the others.
func (a *appSite) session(ex appExchange) map[string]string {
	a.t.Helper()
	if ex.res.StatusCode != http.StatusOK || ex.view.Server == "" {
		a.t.Fatalf("the app answered %d %q, not its report", ex.res.StatusCode, ex.body)
	}
	ns := ex.view.namespace()
	got := ns[a.app.kind.headerViews[0]]
	if got == nil {
		got = map[string]string{}
	}
	expectNamespace(a.t, a.app.kind, ex.view, got)
	return got
}

// sessionOf returns the session the app sees for a request of the
// visitor, as session does; navigate makes it a top-level navigation,
// which takes the session's flash values.
func (a *appSite) sessionOf(v *visitor, navigate bool) map[string]string {
	a.t.Helper()
	var headers []string
	if navigate {
		headers = []string{"Sec-Fetch-Mode", "navigate", "Accept", "text/html"}
	}
	return a.session(a.send(v, http.MethodGet, "/emit", headers...))
}

// appPath is the app's route with a query of name, value pairs.
func appPath(route string, params ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		q.Add(params[i], params[i+1])
	}
	return route + "?" + q.Encode()
}

// emitPath is /emit answering with these headers ("Name:value"), sent by via
// (see app.js; the WSGI app has one way only, its list).
func emitPath(via string, headers ...string) string {
	params := []string{"via", via}
	for _, h := range headers {
		params = append(params, "h", h)
	}
	return appPath("/emit", params...)
}

// aliceSession is the session of a visitor logged in by appLogin.
var aliceSession = map[string]string{"user": "alice", "cart": "apple", "theme": "dark"}

// appLogin logs a new visitor in through the app, which answers with its
// commands in the default form of its framework.
func (a *appSite) appLogin() *visitor {
	a.t.Helper()
	v := a.visitor()
	ex := a.send(v, http.MethodGet, emitPath("", "X-Session-Set-User:alice", "X-Session-Set-Cart:apple", "X-Session-Set-Theme:dark"))
	if ex.res.StatusCode != http.StatusOK || v.sid == "" {
		a.t.Fatalf("the login through the app answered %d with cookies %q", ex.res.StatusCode, ex.res.Header.Values("Set-Cookie"))
	}
	if got := a.sessionOf(v, false); !maps.Equal(got, aliceSession) {
		a.t.Fatalf("after the login the app sees %v, want %v", got, aliceSession)
	}
	return v
}

// spoofRow is a session header a client makes up: header lines as sent
// (each "\n" a CRLF), and a chunked body with its trailers if the row
// needs one.
type spoofRow struct {
	name string
	raw  string
	body string
	// underscores: every name the row spoofs holds '_'.
	underscores bool
	// inTrailers: the row spoofs in request trailers only.
	inTrailers bool
	// spoofsNothing: the row attacks the session's own headers and
	// brings no value of its own.
	spoofsNothing bool
}

// spoofedSpellings are the rows of TestAppServerSpoofedSessionHeaders.
// Every spelling is one that some server reads as a session header:
// gunicorn maps '-' and '_' to the same '_' of the environ, PHP and CGI
// fold '.' too, Node lowercases, and the plugin's own rules read '_' and
// '.' as '-'. A trailer row's body also ends with X-Note: kept, which an
// app that sees trailers must see, so that the row shows that trailers
// reach it at all.
var spoofedSpellings = []spoofRow{
	{name: "X-Session-User", raw: "X-Session-User: admin\n"},
	{name: "lowercase", raw: "x-session-user: admin\n"},
	{name: "uppercase", raw: "X-SESSION-USER: admin\n"},
	{name: "mixed case", raw: "x-SeSsIoN-uSeR: admin\n"},
	{name: "X_Session_User", raw: "X_Session_User: admin\n", underscores: true},
	{name: "x_session_user", raw: "x_session_user: admin\n", underscores: true},
	{name: "X-Session_User", raw: "X-Session_User: admin\n", underscores: true},
	{name: "X_SESSION-USER", raw: "X_SESSION-USER: admin\n", underscores: true},
	{name: "X.Session.User", raw: "X.Session.User: admin\n"},
	{name: "X-Session.User", raw: "X-Session.User: admin\n"},
	{name: "X.Session_User", raw: "X.Session_User: admin\n", underscores: true},
	{name: "a key the session does not have", raw: "X-Session-Role: admin\nX_Session_Role: admin\n"},
	{name: "a flash value", raw: "X-Session-Flash-Notice: forged\nX_Session_Flash_Notice: forged\n"},
	{name: "the plugin's own meta header", raw: "X-Session-Meta-Remembered: true\n"},
	{name: "duplicates in every spelling", raw: "X-Session-User: admin\nX-Session-User: root\nx_session_user: trudy\nX_Session_User: eve\nX.Session.User: mallory\n"},
	{name: "the session's headers named in Connection", raw: "Connection: X-Session-User, x_session_cart, X.Session.Theme\n", spoofsNothing: true},
	{name: "in an announced trailer of a chunked body", raw: "Transfer-Encoding: chunked\nTrailer: X-Session-User\n",
		body: "5\r\nhello\r\n0\r\nX-Session-User: admin\r\nX-Note: kept\r\n\r\n", inTrailers: true},
	{name: "in unannounced trailers, in every spelling", raw: "Transfer-Encoding: chunked\nTrailer: X-Note\n",
		body: "5\r\nhello\r\n0\r\nX_Session_User: admin\r\nx-session-role: admin\r\nX.Session.Cart: free\r\nX-Note: kept\r\n\r\n", inTrailers: true},
}

// spoofConfigs are the two ways the tests run Caddy for the spoofs:
// under its defaults only the plugin stands between the '-' spellings and
// the app; with letUnderscoresAndDotsThrough, only the plugin stands
// between the others and the app.
var spoofConfigs = []struct{ name, globals string }{
	{"caddy's defaults", ""},
	{"underscores and dots let through", letUnderscoresAndDotsThrough},
}

// TestAppServerSpoofedSessionHeaders: a client sends session headers of
// its own, in every spelling that a server reads as one, with and without
// a session of its own, under Caddy's defaults (which drop request
// headers with '_' or '.') and with such names let through. The app,
// reading the request as its server gives it, sees the visitor's real
// session and nothing else of the namespace, and the session is
// unchanged.
func TestAppServerSpoofedSessionHeaders(t *testing.T) {
	onEachAppServer(t, func(t *testing.T, app *appServer) {
		for _, caddy := range spoofConfigs {
			t.Run(caddy.name, func(t *testing.T) {
				site := newAppSite(t, app, caddy.globals)
				for _, loggedIn := range []bool{false, true} {
					for _, row := range spoofedSpellings {
						t.Run(fmt.Sprintf("%s (session %v)", row.name, loggedIn), func(t *testing.T) {
							a := site.in(t)
							v, want := a.visitor(), map[string]string{}
							if loggedIn {
								v, want = a.appLogin(), aliceSession
							}
							view := a.sendRaw(v, row.raw, row.body)
							expectNamespace(t, app.kind, view, want)
							if row.inTrailers && len(app.kind.trailerViews) > 0 {
								if got := view.names(app.kind.trailerViews[0]); !maps.Equal(got, map[string]string{"x-note": "kept"}) {
									t.Fatalf("the app saw the trailers %v, want x-note: kept only", got)
								}
							}
							if got := a.sessionOf(v, false); !maps.Equal(got, want) {
								t.Fatalf("the session afterwards is %v, want %v", got, want)
							}
						})
					}
				}
			})
		}
	})
}

// TestAppServerSpoofsReachTheAppWithoutThePlugin is the control of
// TestAppServerSpoofedSessionHeaders: without the session handler, each
// of its spoofs reaches the app, under one of the two configurations of
// Caddy, unless the server itself drops it (waitress drops names with
// '_'; WSGI has no request trailers); so each row there shows the
// plugin at work, not Caddy or the server.
func TestAppServerSpoofsReachTheAppWithoutThePlugin(t *testing.T) {
	onEachAppServer(t, func(t *testing.T, app *appServer) {
		reached := map[string][]string{} // row → the configurations it reached the app under
		for _, caddy := range spoofConfigs {
			a := newAppSiteWithoutSessions(t, app, caddy.globals)
			for _, row := range spoofedSpellings {
				if len(a.sendRaw(a.visitor(), row.raw, row.body).namespace()) > 0 {
					reached[row.name] = append(reached[row.name], caddy.name)
				}
			}
		}
		for _, row := range spoofedSpellings {
			want := !row.spoofsNothing &&
				!(row.underscores && app.kind.dropsUnderscoreNames) &&
				!(row.inTrailers && len(app.kind.trailerViews) == 0)
			if got := len(reached[row.name]) > 0; got != want {
				t.Errorf("%s: without the plugin, the spoof reached the app under %q; want it to reach it: %v", row.name, reached[row.name], want)
			}
		}
	})
}

// sendRaw sends GET /emit (POST with a chunked body, if any) with these
// header lines, as given, and the visitor's cookie, and returns what the
// app saw. The app must answer 200 and nothing of the namespace may
// reach the client.
func (a *appSite) sendRaw(v *visitor, lines, body string) appView {
	a.t.Helper()
	method := http.MethodGet
	if body != "" {
		method = http.MethodPost
	}
	raw := method + " /emit HTTP/1.1\r\n" + strings.ReplaceAll(lines, "\n", "\r\n") + "Host: 127.0.0.1\r\n"
	if v.sid != "" {
		raw += "Cookie: sid=" + v.sid + "\r\n"
	}
	res, resBody, err := rawExchange(a.t, a.site, raw+"Connection: close\r\n\r\n"+body)
	if err != nil {
		a.t.Fatal(err)
	}
	assertNoneLeaked(a.t, res)
	var view appView
	if res.StatusCode != http.StatusOK {
		a.t.Fatalf("status %d, want 200; body %s", res.StatusCode, resBody)
	}
	if err := json.Unmarshal(resBody, &view); err != nil {
		a.t.Fatalf("the app's report %q: %v", resBody, err)
	}
	return view
}

// probeHeaders are names with '_' and '.', outside the namespace, whose
// fate in each server TestAppServerNamesWithUnderscoresAndDots shows:
// exactly what that server does with the namespace's own spellings
// when Caddy lets them through.
const probeHeaders = "X_Under_Probe: u\nX.Dot.Probe: d\nX-Mixed_Probe: m\nX-Dash-Probe: h\nX-Dash-Probe: h2\n"

// TestAppServerNamesWithUnderscoresAndDots: what each server makes of
// request header names with '_' and '.', which Caddy passes when told to
// (letUnderscoresAndDotsThrough): the reason the plugin removes every
// spelling of the namespace. Each server's behaviour is described where
// the server is defined; should an upgrade change it, this test says so.
func TestAppServerNamesWithUnderscoresAndDots(t *testing.T) {
	onEachAppServer(t, func(t *testing.T, app *appServer) {
		a := newAppSite(t, app, letUnderscoresAndDotsThrough)
		view := a.sendRaw(a.visitor(), probeHeaders, "")
		got := map[string]string{}
		for name, value := range view.names(app.kind.headerViews[0]) {
			if strings.Contains(strings.ToLower(name), "probe") {
				got[name] = value
			}
		}
		if !maps.Equal(got, app.kind.probes) {
			t.Fatalf("%s gave the app %q for the headers\n%swant %q", app.version, got, probeHeaders, app.kind.probes)
		}
	})
}

// appCommandRow is one response of the app with session commands, and
// what it must do to the session.
type appCommandRow struct {
	name    string
	servers []string // the kinds the row is for; none: all
	// loggedIn: the request comes from a visitor logged in as alice
	// (aliceSession); else from one with no session.
	loggedIn bool
	method   string // default GET
	path     string
	status   int // the client gets; default 200
	// after is the session that the visitor's cookie opens afterwards,
	// as the app sees it (empty: none).
	after map[string]string
	// rotated: the response gives the visitor a new ID (a login, a
	// renewal); the old one, if any, opens nothing afterwards.
	rotated bool
	// ended: the response expires the cookie and the old ID opens
	// nothing afterwards.
	ended bool
	// flash is what the next navigation gets as flash values.
	flash map[string]string
	// hints is the number of 103s the client gets, each with the app's Link.
	hints int
	// header and trailer, if named, must reach the client with this value.
	header, trailer [2]string
}

// TestAppServerCommands: the app's commands, in the forms each framework
// emits them, through each server: applied as the README says, all or
// nothing, and never seen by the client; a command on a 103 or in a
// trailer is never applied.
func TestAppServerCommands(t *testing.T) {
	const express = "express"
	wsgi := []string{"gunicorn", "waitress"}
	rows := []appCommandRow{
		{name: "a login sets the user and issues a cookie that no cache keeps", path: emitPath("", "X-Session-Set-User:alice", "Cache-Control:public, max-age=600"),
			after: map[string]string{"user": "alice"}, rotated: true, header: [2]string{"Cache-Control", "no-store"}},
		{name: "a login on a 304 (a final response)", path: appPath("/emit", "status", "304", "h", "X-Session-Set-User:alice"),
			status: 304, after: map[string]string{"user": "alice"}, rotated: true},
		{name: "a login answered with a 303 redirect", path: appPath("/emit", "status", "303", "h", "Location:/", "h", "X-Session-Set-User:alice"),
			status: 303, after: map[string]string{"user": "alice"}, rotated: true, header: [2]string{"Location", "/"}},
		{name: "a login answering HEAD", method: http.MethodHead, path: emitPath("", "X-Session-Set-User:alice"),
			after: map[string]string{"user": "alice"}, rotated: true},
		{name: "a set keeps the ID", loggedIn: true, path: emitPath("", "X-Session-Set-Cart:pear"),
			after: withKeys(aliceSession, "cart", "pear")},
		{name: "a delete of two keys on one line", loggedIn: true, path: emitPath("", "X-Session-Delete:cart, theme"),
			after: map[string]string{"user": "alice"}},
		{name: "a delete on two lines (a WSGI list, res.append)", loggedIn: true, path: emitPath("append", "X-Session-Delete:cart", "X-Session-Delete:theme"),
			after: map[string]string{"user": "alice"}},
		{name: "a delete of two keys by res.setHeader with an array", servers: []string{express}, loggedIn: true,
			path: emitPath("setHeader", "X-Session-Delete:cart", "X-Session-Delete:theme"), after: map[string]string{"user": "alice"}},
		{name: "a set emitted twice is refused (a WSGI list, res.append)", loggedIn: true,
			path: emitPath("append", "X-Session-Set-Cart:pear", "X-Session-Set-Cart:pear"), after: aliceSession},
		{name: "a set by res.setHeader with an array of two values is refused", servers: []string{express}, loggedIn: true,
			path: emitPath("setHeader", "X-Session-Set-Cart:pear", "X-Session-Set-Cart:plum"), after: aliceSession},
		{name: "res.set twice sends only the last value", servers: []string{express}, loggedIn: true,
			path: emitPath("set", "X-Session-Set-Cart:plum", "X-Session-Set-Cart:pear"), after: withKeys(aliceSession, "cart", "pear")},
		{name: "res.set with an object", servers: []string{express}, loggedIn: true,
			path: emitPath("object", "X-Session-Set-Cart:pear", "X-Session-Set-Theme:light"), after: withKeys(aliceSession, "cart", "pear", "theme", "light")},
		{name: "names in odd case", loggedIn: true, path: emitPath("", "x-SESSION-set-CART:pear", "X-SESSION-DELETE:theme"),
			after: map[string]string{"user": "alice", "cart": "pear"}},
		{name: "names with underscores are commands too", loggedIn: true, path: emitPath("", "X_Session_Set_Cart:pear", "x_session_delete:theme"),
			after: map[string]string{"user": "alice", "cart": "pear"}},
		{name: "names with dots are no commands, and reach the client", loggedIn: true, path: emitPath("", "X.Session.Set.Cart:pear"),
			after: aliceSession, header: [2]string{"X.Session.Set.Cart", "pear"}},
		{name: "a renewal with Python's True", loggedIn: true, path: emitPath("", "X-Session-Renew:True"),
			after: aliceSession, rotated: true},
		{name: "a flag emitted twice is refused", loggedIn: true, path: emitPath("append", "X-Session-Renew:true", "X-Session-Renew:true"),
			after: aliceSession},
		{name: "a logout", loggedIn: true, path: emitPath("", "X-Session-Destroy:true"), ended: true},
		{name: "a logout that says goodbye with a flash value", loggedIn: true,
			path:   appPath("/emit", "status", "303", "h", "Location:/", "h", "X-Session-Destroy:true", "h", "X-Session-Flash-Notice:Logged out"),
			status: 303, rotated: true, flash: map[string]string{"flash-notice": "Logged out"}},
		{name: "a flash value for the next page after a 303", loggedIn: true,
			path:   appPath("/emit", "status", "303", "h", "Location:/settings", "h", "X-Session-Flash-Notice:Saved"),
			status: 303, after: aliceSession, flash: map[string]string{"flash-notice": "Saved"}},
		{name: "a key set and deleted at once is refused", loggedIn: true, path: emitPath("", "X-Session-Set-Cart:pear", "X-Session-Delete:cart"),
			after: aliceSession},
		{name: "commands on a 500 are ignored", loggedIn: true, path: appPath("/emit", "status", "500", "h", "X-Session-Set-Cart:pear", "h", "X-Session-Destroy:true"),
			status: 500, after: aliceSession},
		{name: "a login on a 503 starts no session", path: appPath("/emit", "status", "503", "h", "X-Session-Set-User:alice"), status: 503},
		// WSGI servers write header values as latin-1 and put them in the
		// environ as latin-1: a value round-trips.
		{name: "a value outside ASCII comes back as the app wrote it", servers: wsgi, loggedIn: true, path: emitPath("", "X-Session-Set-Name:Zoë"),
			after: withKeys(aliceSession, "name", "Zoë")},
		// Node writes the header as UTF-8 when the body that goes out with
		// it is a UTF-8 string (res.json), and reads request headers as
		// latin-1: the app gets back the UTF-8 bytes of its value, as
		// latin-1. Node's doing, not the plugin's, which keeps the bytes.
		{name: "a value outside ASCII comes back in Node's encodings", servers: []string{express}, loggedIn: true, path: emitPath("", "X-Session-Set-Name:Zoë"),
			after: withKeys(aliceSession, "name", "ZoÃ«")},
		// res.writeEarlyHints sends a 103 with the Link and the other
		// headers it is given, as they are.
		{name: "a login on a 103 (res.writeEarlyHints) is not applied", servers: []string{express},
			path: appPath("/early-hints", "e", "X-Session-Set-User:admin"), hints: 1},
		{name: "commands on a 103 are not applied; the final response's are", servers: []string{express}, loggedIn: true,
			path:  appPath("/early-hints", "e", "X-Session-Set-User:admin", "e", "X-Session-Destroy:true", "h", "X-Session-Set-Cart:pear"),
			hints: 1, after: withKeys(aliceSession, "cart", "pear")},
		// res.addTrailers sends trailers after the last chunk, announced
		// in Trailer or not, after the session was committed.
		{name: "a command in an unannounced trailer (res.addTrailers) is not applied", servers: []string{express}, loggedIn: true,
			path: appPath("/trailers", "t", "X-Session-Set-Role:admin", "t", "X-Session-Destroy:true"), after: aliceSession},
		{name: "a command announced as a trailer refuses the whole batch", servers: []string{express}, loggedIn: true,
			path:  appPath("/trailers", "announce", "X-Session-Set-Role", "t", "X-Session-Set-Role:admin", "h", "X-Session-Set-Cart:pear"),
			after: aliceSession},
		{name: "a login with a command announced as a trailer starts no session", servers: []string{express},
			path: appPath("/trailers", "announce", "X-Session-Set-Role", "t", "X-Session-Set-Role:admin", "h", "X-Session-Set-User:bob")},
		{name: "a trailer outside the namespace reaches the client beside applied commands", servers: []string{express}, loggedIn: true,
			path:  appPath("/trailers", "announce", "X-Checksum", "t", "X-Checksum:abc", "h", "X-Session-Set-Cart:pear"),
			after: withKeys(aliceSession, "cart", "pear"), trailer: [2]string{"X-Checksum", "abc"}},
	}
	onEachAppServer(t, func(t *testing.T, app *appServer) {
		a := newAppSite(t, app, "")
		for _, row := range rows {
			if len(row.servers) > 0 && !slices.Contains(row.servers, app.kind.name) {
				continue
			}
			t.Run(row.name, func(t *testing.T) { a.in(t).checkCommand(row) })
		}
	})
}

// checkCommand sends the row's request and checks its outcome.
func (a *appSite) checkCommand(row appCommandRow) {
	t := a.t
	t.Helper()
	v := a.visitor()
	if row.loggedIn {
		v = a.appLogin()
	}
	before := v.sid
	method, status := cmp.Or(row.method, http.MethodGet), cmp.Or(row.status, http.StatusOK)
	ex := a.send(v, method, row.path)
	if ex.res.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", ex.res.StatusCode, status, ex.body)
	}
	if len(ex.hints) != row.hints {
		t.Fatalf("the client got %d 1xx responses, want %d: %v", len(ex.hints), row.hints, ex.hints)
	}
	for _, h := range ex.hints {
		if h.Get("Link") != "</app.css>; rel=preload; as=style" {
			t.Fatalf("the 103 came without the app's Link: %v", h)
		}
	}
	if name := row.header[0]; name != "" && ex.res.Header.Get(name) != row.header[1] {
		t.Fatalf("the client got %s: %q, want %q", name, ex.res.Header.Get(name), row.header[1])
	}
	if name := row.trailer[0]; name != "" && ex.res.Trailer.Get(name) != row.trailer[1] {
		t.Fatalf("the client got the trailer %s: %q, want %q (trailers %v)", name, ex.res.Trailer.Get(name), row.trailer[1], ex.res.Trailer)
	}
	setCookies := ex.res.Header.Values("Set-Cookie")
	switch {
	case row.ended:
		if before == "" || v.sid != "" {
			t.Fatalf("the cookie was not expired: %q", setCookies)
		}
	case row.rotated:
		if v.sid == "" || v.sid == before {
			t.Fatalf("no new ID was issued: %q", setCookies)
		}
	case len(setCookies) != 0:
		t.Fatalf("the response set cookies %q", setCookies)
	}
	if before != "" && (row.ended || row.rotated) {
		if got := a.sessionOf(&visitor{site: a.site, sid: before}, false); len(got) != 0 {
			t.Fatalf("the old ID still opens %v", got)
		}
	}
	after := map[string]string{}
	if v.sid != "" {
		after = a.sessionOf(v, true)
	}
	want := maps.Clone(row.after)
	if want == nil {
		want = map[string]string{}
	}
	maps.Copy(want, row.flash)
	if !maps.Equal(after, want) {
		t.Fatalf("the next navigation sees %v, want %v", after, want)
	}
	if len(row.flash) > 0 {
		// Once only: the navigation after it sees the keys alone.
		want = maps.Clone(row.after)
		if want == nil {
			want = map[string]string{}
		}
		if got := a.sessionOf(v, true); !maps.Equal(got, want) {
			t.Fatalf("the navigation after that sees %v, want %v", got, want)
		}
	}
}

// withKeys returns a copy of m with more keys and values.
func withKeys(m map[string]string, kv ...string) map[string]string {
	out := maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// TestAppServerStreamedResponse: a login on a response the app streams
// is applied when its header is written: while the app still holds the
// response open (it says so when the test releases it), the cookie has
// reached the client and opens the session; the rest of the body follows.
func TestAppServerStreamedResponse(t *testing.T) {
	onEachAppServer(t, func(t *testing.T, app *appServer) {
		a := newAppSite(t, app, "")
		gate := strconv.FormatInt(time.Now().UnixNano(), 36)
		v := a.visitor()
		// The stream outlives caddytest's 5s timeout on a slow machine:
		// waitress sends a small chunk only when its loop next wakes.
		client := *a.tester.Client
		client.Timeout = time.Minute
		res, err := client.Get(a.url(appPath("/stream", "gate", gate, "h", "X-Session-Set-User:alice")))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		// release lets the app end the stream, and returns how many
		// streams were waiting for it.
		release := func() (int, error) {
			res, err := client.Get(a.url(appPath("/release", "gate", gate)))
			if err != nil {
				return 0, err
			}
			defer res.Body.Close()
			var released struct {
				Waiting int `json:"waiting"`
			}
			err = json.NewDecoder(res.Body).Decode(&released)
			return released.Waiting, err
		}
		released := false
		defer func() {
			if !released { // let the app's worker go
				_, _ = release()
			}
		}()
		assertNoneLeaked(t, res)
		for _, c := range res.Cookies() {
			if c.Name == "sid" {
				v.sid = c.Value
			}
		}
		if v.sid == "" {
			t.Fatalf("the streamed response's header set no session cookie: %q", res.Header.Values("Set-Cookie"))
		}
		body := bufio.NewReader(res.Body)
		if first, err := body.ReadString('\n'); first != "first\n" {
			t.Fatalf("the stream began with %q, %v", first, err)
		}
		if got := a.sessionOf(v, false); !maps.Equal(got, map[string]string{"user": "alice"}) {
			t.Fatalf("while the stream is open, the new cookie opens %v", got)
		}
		waiting, err := release()
		if err != nil || waiting != 1 {
			t.Fatalf("the release found %d streams waiting, want 1 (%v): the app did not hold the response open", waiting, err)
		}
		released = true
		if rest, err := io.ReadAll(body); string(rest) != "last\n" || err != nil {
			t.Fatalf("the stream ended with %q, %v", rest, err)
		}
		assertNoNamespace(t, res.Trailer)
	})
}

// TestAppServerConnectionClose: an app that asks for Connection: close.
// Node answers as in HTTP/1.0, with no Content-Length and no chunks: the
// body ends when the connection does. PEP 3333 forbids a WSGI app
// hop-by-hop headers: gunicorn drops the header and answers chunked,
// waitress refuses the app's answer with a 500. Each framing is checked on
// the app server directly, then through Caddy: a login and a set are
// applied where the app's answer reaches the client, ignored on the
// 500, and never seen by the client.
func TestAppServerConnectionClose(t *testing.T) {
	framings := map[string]string{
		"express":  "200, Connection: close, no Content-Length, no Transfer-Encoding",
		"gunicorn": "200, Connection: keep-alive, no Content-Length, Transfer-Encoding: chunked",
		"waitress": "500",
	}
	onEachAppServer(t, func(t *testing.T, app *appServer) {
		if got := appServerFraming(t, app, "/close"); got != framings[app.kind.name] {
			t.Fatalf("%s answered /close with %q, want %q", app.version, got, framings[app.kind.name])
		}
		a := newAppSite(t, app, "")
		answered := !strings.HasPrefix(framings[app.kind.name], "500")
		for _, row := range []appCommandRow{
			{name: "a login", path: appPath("/close", "h", "X-Session-Set-User:alice"), after: map[string]string{"user": "alice"}, rotated: true},
			{name: "a set", loggedIn: true, path: appPath("/close", "h", "X-Session-Set-Cart:pear"), after: withKeys(aliceSession, "cart", "pear")},
		} {
			if !answered {
				row.status, row.after, row.rotated = http.StatusInternalServerError, nil, false
				if row.loggedIn {
					row.after = aliceSession
				}
			}
			t.Run(row.name, func(t *testing.T) { a.in(t).checkCommand(row) })
		}
	})
}

// appServerFraming asks the app server for path directly, on a connection
// that asks to be kept alive, and describes how the response is framed.
func appServerFraming(t *testing.T, app *appServer, path string) string {
	t.Helper()
	conn, err := net.Dial("tcp", app.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, app.addr)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return strconv.Itoa(res.StatusCode)
	}
	describe := func(name string) string {
		if v := strings.Join(res.Header.Values(name), ", "); v != "" {
			return name + ": " + v
		}
		return "no " + name
	}
	// ReadResponse moves Transfer-Encoding out of the header,
	te := "no Transfer-Encoding"
	if len(res.TransferEncoding) > 0 {
		te = "Transfer-Encoding: " + strings.Join(res.TransferEncoding, ", ")
	}
	// and a Connection: close into Close.
	connection := describe("Connection")
	if res.Close {
		connection = "Connection: close"
	}
	return fmt.Sprintf("200, %s, %s, %s", connection, describe("Content-Length"), te)
}
