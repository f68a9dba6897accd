package integration_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"

	caddysession "github.com/caddy-session/caddy-session"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/bolt"
)

// faultyStore is a real bolt store whose reads or writes the test can make
// fail, as a full disk or a dead Redis would. Handlers that name one path
// share its file, as those of the bolt store do.
type faultyStore struct {
	Path string `json:"path"`
	db   *bolt.Store
}

var failReads, failWrites atomic.Bool

// faultyFiles holds the open files of faulty stores, by path.
var faultyFiles = caddy.NewUsagePool()

// faultyFile lets a bolt store live in faultyFiles.
type faultyFile struct{ *bolt.Store }

func (f faultyFile) Destruct() error { return f.Close() }

var errInjected = errors.New("injected store failure")

func init() {
	caddy.RegisterModule(faultyStore{})
}

func (faultyStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.session.stores.faulty",
		New: func() caddy.Module { return new(faultyStore) },
	}
}

func (f *faultyStore) Provision(caddy.Context) error {
	val, _, err := faultyFiles.LoadOrNew(f.Path, func() (caddy.Destructor, error) {
		db, err := bolt.Open(f.Path, bolt.Options{})
		return faultyFile{db}, err
	})
	if err != nil {
		return err
	}
	f.db = val.(faultyFile).Store
	return nil
}

func (f *faultyStore) Cleanup() error {
	_, err := faultyFiles.Delete(f.Path)
	return err
}

func (f *faultyStore) SessionStore() store.Store { return faultyWrapper{f.db} }
func (f *faultyStore) StoreName() string         { return "faulty:" + f.Path }

type faultyWrapper struct{ store.Store }

func (w faultyWrapper) Load(ctx context.Context, h session.Hash, now time.Time, t session.Timeouts) (*session.Record, error) {
	if failReads.Load() {
		return nil, errInjected
	}
	return w.Store.Load(ctx, h, now, t)
}

func (w faultyWrapper) Update(ctx context.Context, u store.Update) (store.Result, error) {
	if failWrites.Load() {
		return store.Result{}, errInjected
	}
	return w.Store.Update(ctx, u)
}

// UnmarshalCaddyfile reads `store faulty <path>`.
func (f *faultyStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "faulty"
	if !d.NextArg() {
		return d.ArgErr()
	}
	f.Path = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

var (
	_ caddysession.StoreProvider = (*faultyStore)(nil)
	_ caddyfile.Unmarshaler      = (*faultyStore)(nil)
)

func TestStoreFailuresAreNeverSilent(t *testing.T) {
	up := startUpstream(t)
	s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), up: up}
	s.tester.Client.Jar = nil
	s.tester.InitServer(fmt.Sprintf(`{
	"admin": {"listen": "localhost:%d"},
	"apps": {"http": {"servers": {"srv": {
		"listen": ["127.0.0.1:%d"],
		"routes": [{"handle": [
			{"handler": "session", "store": {"backend": "faulty", "path": %q}},
			{"handler": "reverse_proxy", "upstreams": [{"dial": %q}]}
		]}]
	}}}}
}`, adminPort, s.port, filepath.Join(t.TempDir(), "sessions.db"), up.addr()), "json")
	t.Cleanup(func() { failReads.Store(false); failWrites.Store(false) })

	v := s.visitor()
	v.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Cart: apple")
	loginID := v.sid

	// A write that cannot be committed is a 503, and none of the
	// upstream's response (its cookies included) is delivered.
	failWrites.Store(true)
	r := v.get("/cart/add", "X-Session-Set-Cart: apple,pear", "Set-Cookie: app=1")
	expectStatus(t, r, http.StatusServiceUnavailable)
	if len(r.Header.Values("Set-Cookie")) != 0 || strings.Contains(string(r.body), "headers") {
		t.Fatalf("the failed response leaked the upstream's answer: %v %s", r.Header, r.body)
	}
	// A first write (a new session) fails the same way.
	anon := s.visitor()
	expectStatus(t, anon.get("/login", "X-Session-Set-User: bob"), http.StatusServiceUnavailable)
	if anon.sid != "" {
		t.Fatal("a session cookie was issued for a session that was never stored")
	}
	// Reads that need no write still work.
	expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"})
	failWrites.Store(false)
	if v.sid != loginID {
		t.Fatal("the session ID changed")
	}
	expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"})

	// A session that cannot be read is a 503, not an anonymous request.
	failReads.Store(true)
	expectStatus(t, v.get("/"), http.StatusServiceUnavailable)
	// Without a session cookie there is nothing to read.
	expectStatus(t, s.visitor().get("/"), http.StatusOK)
	failReads.Store(false)
	expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"})
}

func TestLockedDatabaseFailsClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	holder, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	caddytest.AssertLoadError(t, fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	session {
		store bolt %s {
			lock_timeout 200ms
		}
	}
	respond ok
}`, adminPort, freePort(t), path), "caddyfile", "locked by another process")
}

// withStore puts a bolt store line before the options, unless they name
// a store of their own.
func withStore(t *testing.T, options string) string {
	if strings.HasPrefix(options, "store ") {
		return options
	}
	return "store bolt " + filepath.Join(t.TempDir(), "s.db") + "\n\t\t" + options
}

func TestInvalidConfigIsRefused(t *testing.T) {
	cases := []struct{ name, options, want string }{
		{"unknown subdirective", "colour blue", `unknown session subdirective "colour"`},
		{"bad duration", "idle_timeout soon", `idle_timeout: "soon" is not a positive duration`},
		{"absolute shorter than idle", "idle_timeout 2h\n\t\tabsolute_timeout 1h", "absolute_timeout (1h0m0s) is shorter than idle_timeout (2h0m0s)"},
		{"touch not shorter than idle", "idle_timeout 1m\n\t\ttouch_interval 1m", "touch_interval (1m0s) must be shorter than idle_timeout"},
		{"bad key name", "renew_on us.er", `renew_on: "us.er" is not a session key`},
		{"bad writable key", "writable cart/items", `writable: "cart/items" is not a session key`},
		{"same_site none without secure", "cookie {\n\t\t\tsame_site none\n\t\t}", "same_site none needs secure always"},
		{"__Host- without secure", "cookie __Host-sid", "the __Host- prefix needs secure always"},
		{"bad secure mode", "cookie {\n\t\t\tsecure sometimes\n\t\t}", "secure must be auto, always or never"},
		{"unknown cookie subdirective", "cookie {\n\t\t\tmax_age 1h\n\t\t}", `unknown cookie subdirective "max_age"`},
		{"partitioned without secure", "cookie {\n\t\t\tpartitioned\n\t\t}", "cookie partitioned needs secure always"},
		{"bad priority", "cookie {\n\t\t\tpriority urgent\n\t\t}", `priority must be low, medium or high, not "urgent"`},
		{"bad header prefix", "header_prefix X-Session", "must be a header name ending in '-'"},
		{"unknown store", "store memcached", "memcached"},
		{"repeated subdirective", "idle_timeout 1h\n\t\tidle_timeout 2h", `session subdirective "idle_timeout" is given twice`},
		{"repeated bolt setting", "store bolt /tmp/x.db {\n\t\t\tno_sync\n\t\t\tno_sync\n\t\t}", `bolt store subdirective "no_sync" is given twice`},
		{"identity key not renewed on", "renew_on user\n\t\tidentity_key email", `identity_key "email" must be one of renew_on`},
		{"bad limit", "limits {\n\t\t\tkeys many\n\t\t}", `limits keys: "many" is not a positive whole number`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			caddytest.AssertLoadError(t, fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	session {
		%s
	}
	respond ok
}`, adminPort, freePort(t), withStore(t, c.options)),
				// The admin API answers in JSON, which escapes the quotes.
				"caddyfile", strings.ReplaceAll(c.want, `"`, `\"`))
		})
	}
}

// endlessApp answers with the session commands of its request's
// Test-Header orders and a body that never ends: events flushed one by
// one (Test-Flush), or bytes as fast as they go. It stops when a write
// fails or its request ends, and then closes ended.
type endlessApp struct{ ended chan struct{} }

func (a *endlessApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer close(a.ended)
	status := obeyOrders(w, r)
	flush := r.Header.Get("Test-Flush") != ""
	if flush {
		w.Header().Set("Content-Type", "text/event-stream")
	}
	w.WriteHeader(status)
	chunk := []byte(strings.Repeat("data: more\n\n", 1000))
	for r.Context().Err() == nil {
		if _, err := w.Write(chunk); err != nil {
			return
		}
		if flush {
			http.NewResponseController(w).Flush()
		}
	}
}

// TestFailedCommitOfAnEndlessResponse: the store fails to take the
// commands of a response whose body does not end, an event stream or a
// long download. The client gets its 503 at once, not when (if ever) the
// app stops, and the app's response is cut off rather than read to its
// end for nothing.
func TestFailedCommitOfAnEndlessResponse(t *testing.T) {
	// encode, between the session and the proxy, compresses the body.
	const encode = `{"handler": "encode", "encodings": {"gzip": {}}, "minimum_length": 1, "match": {"headers": {"Content-Type": ["text/*", "application/*"]}}},`
	for _, tc := range []struct {
		name    string
		orders  []string
		between string // handlers between the session and reverse_proxy
	}{
		{"event stream", []string{"Test-Flush", "1"}, ""},
		{"body", nil, ""},
		{"compressed event stream", []string{"Test-Flush", "1"}, encode},
		{"compressed body", []string{"Test-Header", "Content-Type: text/plain"}, encode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := &endlessApp{ended: make(chan struct{})}
			srv := httptest.NewServer(app)
			t.Cleanup(srv.Close)
			s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t)}
			s.tester.Client.Jar = nil
			// The client gives up long after a 503 would have come: a hang
			// fails the test rather than blocking it.
			s.tester.Client.Timeout = 20 * time.Second
			s.tester.InitServer(fmt.Sprintf(`{
	"admin": {"listen": "localhost:%d"},
	"apps": {"http": {"servers": {"srv": {
		"listen": ["127.0.0.1:%d"],
		"routes": [{"handle": [
			{"handler": "session", "store": {"backend": "faulty", "path": %q}},
			%s
			{"handler": "reverse_proxy", "upstreams": [{"dial": %q}]}
		]}]
	}}}}
}`, adminPort, s.port, filepath.Join(t.TempDir(), "sessions.db"), tc.between, srv.Listener.Addr().String()), "json")
			t.Cleanup(func() { failWrites.Store(false) })
			failWrites.Store(true)

			v := s.visitor()
			r := v.do(http.MethodGet, "/events", orders(tc.orders, "X-Session-Set-User: alice")...)
			expectStatus(t, r, http.StatusServiceUnavailable)
			if v.sid != "" || strings.Contains(string(r.body), "data:") {
				t.Fatalf("the failed response leaked the app's answer: %v %.100s", r.Header, r.body)
			}
			select {
			case <-app.ended:
			case <-time.After(20 * time.Second):
				t.Fatal("the app is still sending its response after the client got the 503")
			}
		})
	}
}
