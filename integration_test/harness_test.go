// Package integration_test drives a real Caddy, with the session module,
// through the whole life of a session. Caddy runs in this test process
// (the caddytest package), so the tests move the session clock with
// internal/clock instead of sleeping.
package integration_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/freeport"
	"github.com/caddy-session/caddy-session/internal/redistest"

	_ "github.com/caddy-session/caddy-session"
)

// adminPort is the admin endpoint of the Caddy that runs in this process.
// It is a free port, not caddytest's fixed 2999: two test processes on one
// machine (two checkouts, or a run beside a developer's) would otherwise
// find each other's Caddy and load their configs into it.
var adminPort int

// short is the -short flag as given: it skips the slow suites (see slow).
// caddytest skips every test that loads a config under -short, which would
// leave a -short run, such as CI's -race pass, with no integration test at
// all; so the flag is read here and then turned off for caddytest.
var short bool

func TestMain(m *testing.M) {
	flag.Parse()
	short = testing.Short()
	if err := flag.Set("test.short", "false"); err != nil {
		panic(err)
	}
	port, err := freeport.Pick()
	if err != nil {
		panic(err)
	}
	adminPort = port
	caddytest.Default.AdminPort = adminPort
	useAdminTransport()

	// Keep Caddy's data (the default bolt file of the examples) out of the
	// home directory.
	data, err := os.MkdirTemp("", "caddy-session-data-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_DATA_HOME", data)
	os.Setenv("XDG_CONFIG_HOME", data)
	code := m.Run()
	os.RemoveAll(data)
	os.Exit(code)
}

// upstream is the app behind Caddy in the tests. It answers every request
// with a JSON dump of the request URI and headers it received, and takes its
// orders from the test in request headers outside the namespace:
//
//	Test-Header: Name: value   (repeatable) a response header to send
//	Test-Status: 503           the status to answer with
//	Test-Flush: 1              flush after the header and the first chunk
//	Test-Early-Hints: Name: v  send a 103 with this header first
type upstream struct {
	*httptest.Server
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(serveUpstream))
	t.Cleanup(srv.Close)
	return &upstream{srv}
}

func serveUpstream(w http.ResponseWriter, r *http.Request) {
	status := obeyOrders(w, r)
	body, _ := json.Marshal(map[string]any{"uri": r.RequestURI, "headers": r.Header})
	writeJSON(w, r, status, body)
}

// obeyOrders sends the 103s of Test-Early-Hints, sets the response headers
// of Test-Header, and returns the status of Test-Status (default 200).
func obeyOrders(w http.ResponseWriter, r *http.Request) int {
	for _, hint := range r.Header.Values("Test-Early-Hints") {
		name, value, _ := strings.Cut(hint, ":")
		w.Header().Set(name, strings.TrimSpace(value))
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del(name)
	}
	for _, order := range r.Header.Values("Test-Header") {
		name, value, _ := strings.Cut(order, ":")
		w.Header().Add(name, strings.TrimSpace(value))
	}
	status := http.StatusOK
	if s := r.Header.Get("Test-Status"); s != "" {
		fmt.Sscan(s, &status)
	}
	return status
}

// writeJSON answers with body, flushing after its first byte when the
// request says Test-Flush.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if r.Header.Get("Test-Flush") != "" {
		w.Write(body[:1])
		http.NewResponseController(w).Flush()
		body = body[1:]
	}
	w.Write(body)
}

func (u *upstream) addr() string { return u.Listener.Addr().String() }

// seen is what the upstream received.
type seen struct {
	URI     string      `json:"uri"`
	Headers http.Header `json:"headers"`
}

// slow skips a slow suite under -short. CI runs the whole suite once, then
// again under -race with -short: a suite whose cost is in waiting (for
// processes to start, a cluster to form, a server to time out) or whose
// Caddy runs in another process, which -race does not instrument, runs
// once.
func slow(t *testing.T, why string) {
	t.Helper()
	if short {
		t.Skipf("skipped under -short: %s", why)
	}
}

// freePort returns a loopback port that was free a moment ago and that
// no other caller in this process got.
func freePort(t *testing.T) int {
	t.Helper()
	return freeport.Must(t)
}

// site is a running Caddy with the session handler in front of an upstream.
type site struct {
	t       *testing.T
	tester  *caddytest.Tester
	port    int
	db      string
	store   string // the store line; default: store bolt <db>
	globals string // more global options, such as an events block
	defs    string // lines of the site before the session directive, such as named matchers
	options string
	up      *upstream
}

// newSite starts Caddy with `session { store bolt <tmp> <options> }` in
// front of a test upstream.
func newSite(t *testing.T, options string) *site {
	t.Helper()
	return newSiteOn(t, "", options)
}

// newSiteOn is newSite with another store line, e.g. `store redis <url>`.
func newSiteOn(t *testing.T, store, options string) *site {
	t.Helper()
	return newSiteWith(t, store, "", options)
}

// newSiteWith is newSiteOn ("" for the default store) with lines of the
// site before the session directive, such as named matchers.
func newSiteWith(t *testing.T, store, defs, options string) *site {
	t.Helper()
	s := &site{
		t:       t,
		tester:  caddytest.NewTester(t),
		port:    freePort(t),
		db:      filepath.Join(t.TempDir(), "sessions.db"),
		store:   store,
		defs:    defs,
		options: options,
		up:      startUpstream(t),
	}
	if s.store == "" {
		s.store = "store bolt " + s.db
	}
	s.tester.Client.Jar = nil
	s.load()
	return s
}

// onEachStore runs a test once on bolt and once on a fresh Redis, giving
// it the site maker to use.
func onEachStore(t *testing.T, test func(t *testing.T, newSite func(t *testing.T, options string) *site)) {
	onEachStoreWith(t, "", test)
}

// onEachStoreWith is onEachStore for sites with lines before their session
// directive, such as named matchers.
func onEachStoreWith(t *testing.T, defs string, test func(t *testing.T, newSite func(t *testing.T, options string) *site)) {
	t.Run("bolt", func(t *testing.T) {
		test(t, func(t *testing.T, options string) *site { return newSiteWith(t, "", defs, options) })
	})
	t.Run("redis", func(t *testing.T) {
		url := redistest.Start(t).URL()
		test(t, func(t *testing.T, options string) *site { return newSiteWith(t, "store redis "+url, defs, options) })
	})
}

func (s *site) config() string {
	return fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	skip_install_trust
	%s
}
http://127.0.0.1:%d {
	%s
	session {
		%s
		%s
	}
	reverse_proxy %s
}
`, adminPort, s.port, freePort(s.t), s.globals, s.port, s.defs, s.store, s.options, s.up.addr())
}

// load (re)loads the site's config into the running Caddy.
func (s *site) load() {
	s.t.Helper()
	s.reload(s.config())
}

// reload loads config, which serves the site's port, into the running
// Caddy, and returns once the previous config no longer accepts on it.
func (s *site) reload(config string) {
	s.t.Helper()
	s.tester.InitServer(config, "caddyfile")
	waitOneListener(s.t, s.port)
}

// waitOneListener waits until one socket listens on port: after a reload,
// until the previous config's listener has closed.
//
// Caddy binds a new SO_REUSEPORT socket for each config, and /load answers
// before the old config's server has closed its own: Shutdown runs in a
// goroutine. Until then the kernel hands some new connections to the old
// socket, and the old server may leave them unanswered: Go's http.Server
// closes a connection whose request it reads after Shutdown began, and the
// kernel resets those still queued when the socket closes. No handler sees
// such a request, but the client gets EOF or "connection reset by peer"
// on a fresh connection, which it does not retry (it retries only on a
// reused one). Caddy does this without the session handler too. Where
// /proc/net is missing (not Linux), this returns at once.
func waitOneListener(t *testing.T, port int) {
	t.Helper()
	if err := awaitOneListener(port, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// awaitOneListener polls until at most one socket listens on port, for at
// most limit.
func awaitOneListener(port int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for n := listeners(port); n > 1; n = listeners(port) {
		if time.Now().After(deadline) {
			return fmt.Errorf("port %d still has %d listening sockets %s after the reload: the old config's has not closed, or another process listens there too", port, n, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// listeners counts the TCP sockets of this network namespace that listen
// on port, from /proc/net/tcp6 and, if none is there, /proc/net/tcp: every
// config binds the same address, so all of them are in one file, and the
// IPv6 one is the short one where Caddy's dual-stack sockets are.
func listeners(port int) int {
	if n := listenersIn("/proc/net/tcp6", port); n > 0 {
		return n
	}
	return listenersIn("/proc/net/tcp", port)
}

func listenersIn(file string, port int) int {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	n := 0
	// sl local_address rem_address st ...: the port is hex after the
	// colon, and state 0A is LISTEN.
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "0A" {
			continue
		}
		_, hexPort, _ := strings.Cut(f[1], ":")
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
			n++
		}
	}
	return n
}

func (s *site) url(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.port, path)
}

// visitor is a browser: it keeps the session cookie it was given.
type visitor struct {
	site *site
	sid  string
	// extra cookies the browser sends besides the session cookie
	cookies string
}

func (s *site) visitor() *visitor { return &visitor{site: s} }

// response is one answer through Caddy.
type response struct {
	*http.Response
	body []byte
	seen seen
}

// do sends a request with the visitor's cookie and test orders; each order
// is "Test-Header: Name: value"-style pairs given as name, value.
func (v *visitor) do(method, path string, headers ...string) *response {
	v.site.t.Helper()
	return v.doBody(method, path, nil, headers...)
}

// doBody is do with a request body.
func (v *visitor) doBody(method, path string, reqBody io.Reader, headers ...string) *response {
	v.site.t.Helper()
	req, err := http.NewRequest(method, v.site.url(path), reqBody)
	if err != nil {
		v.site.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	cookie := v.cookies
	if v.sid != "" {
		cookie = strings.Trim("sid="+v.sid+"; "+cookie, "; ")
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	res, err := v.site.tester.Client.Do(req)
	if err != nil {
		v.site.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		v.site.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	r := &response{Response: res, body: body}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(body, &r.seen)
	}
	for _, c := range res.Cookies() {
		if c.Name == "sid" {
			if c.MaxAge < 0 {
				v.sid = ""
			} else {
				v.sid = c.Value
			}
		}
	}
	assertNoNamespace(v.site.t, res.Header)
	assertNoNamespace(v.site.t, res.Trailer)
	return r
}

// get is do with GET and upstream commands: each command is "Name: value".
func (v *visitor) get(path string, commands ...string) *response {
	v.site.t.Helper()
	var h []string
	for _, c := range commands {
		h = append(h, "Test-Header", c)
	}
	return v.do(http.MethodGet, path, h...)
}

// session returns the session headers the upstream saw.
func (r *response) session() map[string]string {
	out := map[string]string{}
	for name, values := range r.seen.Headers {
		if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(name, "_", "-")), "x-session-") {
			out[name] = strings.Join(values, ",")
		}
	}
	return out
}

func (r *response) sessionCookie() *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == "sid" {
			return c
		}
	}
	return nil
}

// assertNoNamespace fails if any header of h is in the session namespace.
func assertNoNamespace(t *testing.T, h http.Header) {
	t.Helper()
	for name := range h {
		folded := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		if strings.HasPrefix(strings.TrimPrefix(folded, "trailer:"), "x-session-") {
			t.Errorf("namespace header %q reached the client", name)
		}
	}
}

func expectStatus(t *testing.T, r *response, want int) {
	t.Helper()
	if r.StatusCode != want {
		t.Fatalf("status = %d, want %d; body: %s", r.StatusCode, want, r.body)
	}
}

func expectSession(t *testing.T, r *response, want map[string]string) {
	t.Helper()
	got := r.session()
	if len(got) != len(want) {
		t.Fatalf("upstream saw session headers %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("upstream saw session headers %v, want %v", got, want)
		}
	}
}
