package caddysession

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// The benchmarks of the whole per-request work of the session handler, in
// process, without a network: ServeHTTP of a provisioned Handler on a bolt
// store, in front of a next handler that answers at once.
//
//	go test -run='^$' -bench=. -benchmem .
//
// Each iteration builds a fresh request, as Caddy does for each request it
// reads (headers, replacer, vars); BenchmarkBaseline does that and calls
// the next handler directly, so the session's own cost is the difference.

// benchValues is a typical small session: 3 keys, about 100 bytes.
var benchValues = map[string]string{
	"user":  "user-000042@example.com",
	"roles": "admin,editor,viewer",
	"cart":  "sku-1001,sku-1002,sku-1003,sku-1004,sku-1005,sku-1006",
}

// benchHandler provisions a session handler on a bolt file of its own
// (without fsync: the read path does not write) and creates one session.
// It returns the handler and the session's ID.
func benchHandler(b testing.TB) (*Handler, string) {
	b.Helper()
	return benchHandlerWith(b, &Handler{})
}

// benchHandlerWith is benchHandler for a handler with more settings.
func benchHandlerWith(b testing.TB, h *Handler) (*Handler, string) {
	b.Helper()
	cfg, _ := json.Marshal(map[string]any{
		"backend": "bolt",
		"path":    filepath.Join(b.TempDir(), "sessions.db"),
		"no_sync": true,
	})
	h.StoreRaw = cfg
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	b.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		b.Fatal(err)
	}
	// The logger of a context with no config logs at debug, and wrote the
	// "session issued" line of every login; Caddy logs at info by default.
	h.logger = h.logger.WithOptions(zap.IncreaseLevel(zapcore.InfoLevel))
	id, hash := newSessionID()
	u := store.Update{
		NewHash:  hash,
		Patch:    &session.Patch{Set: maps.Clone(benchValues)},
		Identity: h.identity, Now: clock.Now(), Timeouts: h.timeouts, Limits: h.limits,
	}
	if h.sealIndex != nil { // seal_values: the session is stored sealed
		u.Seal = &store.Sealing{NewKey: session.DeriveSealKey(id), Index: h.sealIndex}
	}
	if _, err := h.store.Update(ctx, u); err != nil {
		b.Fatal(err)
	}
	return h, id
}

// browserHeader is what a browser sends, with the session cookie among
// others.
func browserHeader(id string) http.Header {
	h := http.Header{
		"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
		"Accept":          {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
		"Accept-Language": {"en-US,en;q=0.5"},
		"Accept-Encoding": {"gzip, deflate, br"},
		"Connection":      {"keep-alive"},
	}
	if id != "" {
		h["Cookie"] = []string{"theme=dark; sid=" + id + "; lang=en"}
	}
	return h
}

// newBenchRequest is the request as Caddy's server hands it to the first
// handler: its own headers, and a replacer and vars in its context, set up
// by caddyhttp.PrepareRequest as the server does.
func newBenchRequest(u *url.URL, tmpl http.Header) *http.Request {
	return newRequestAs(http.MethodGet, u, tmpl)
}

// newRequestAs is newBenchRequest for a request the client sent with
// method: the original request Caddy keeps has it too.
func newRequestAs(method string, u *url.URL, tmpl http.Header) *http.Request {
	r := &http.Request{
		Method: method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: tmpl.Clone(), Host: u.Host, RequestURI: u.RequestURI(), RemoteAddr: "192.0.2.1:50000",
	}
	return caddyhttp.PrepareRequest(r.WithContext(context.Background()), caddy.NewReplacer(), nil, nil)
}

// discard is a ResponseWriter that keeps nothing but its header map,
// which it empties for the next request.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

var benchBody = []byte("hello")

// app is the next handler: a small answer with no session commands.
var app = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
	w.Header()["Content-Type"] = []string{"text/plain"}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(benchBody)
	return err
})

func runBench(b *testing.B, serve func(w http.ResponseWriter, r *http.Request) error, tmpl http.Header, check func(r *http.Request)) {
	u, _ := url.Parse("http://app.example.com/page")
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		r := newBenchRequest(u, tmpl)
		if err := serve(w, r); err != nil {
			b.Fatal(err)
		}
		if check != nil {
			check(r)
		}
	}
}

// BenchmarkBaseline is the harness alone: a fresh request and the next
// handler, no session.
func BenchmarkBaseline(b *testing.B) {
	runBench(b, func(w http.ResponseWriter, r *http.Request) error {
		return app.ServeHTTP(w, r)
	}, browserHeader(session.NewID()), nil)
}

// BenchmarkReadPath is a request with a valid session of 3 keys that
// writes nothing: the load, the header rewrite, the placeholders, the
// search of the response for commands.
func BenchmarkReadPath(b *testing.B) {
	h, id := benchHandler(b)
	runBench(b, func(w http.ResponseWriter, r *http.Request) error {
		return h.ServeHTTP(w, r, app)
	}, browserHeader(id), func(r *http.Request) {
		if r.Header.Get("X-Session-User") != benchValues["user"] {
			b.Fatalf("the session was not forwarded: %v", r.Header)
		}
	})
}

// BenchmarkReadPathSigned is BenchmarkReadPath with sign: a token over
// the session's user and roles, for one URL, as a page's requests of a
// session mostly are. Once with the token cache, which signs once per
// quarter of the token's lifetime, and once signing every request (each
// request of another path, or the cache emptied).
func BenchmarkReadPathSigned(b *testing.B) {
	for _, cached := range []bool{true, false} {
		name := "cached"
		if !cached {
			name = "uncached"
		}
		b.Run(name, func(b *testing.B) {
			h, id := benchHandlerWith(b, &Handler{Sign: &SignConfig{Secret: benchSecret, Keys: []string{"user", "roles"}}})
			header := h.protocol.HeaderName(metaToken)
			runBench(b, func(w http.ResponseWriter, r *http.Request) error {
				if !cached {
					h.signer.cache = tokenCache{}
				}
				return h.ServeHTTP(w, r, app)
			}, browserHeader(id), func(r *http.Request) {
				if len(r.Header[header]) != 1 {
					b.Fatalf("no token was forwarded: %v", r.Header)
				}
			})
		})
	}
}

// benchSecret is a secret to derive signing keys from, for tests.
const benchSecret = "a-secret-for-tests-only-0123456789abcdef"

// BenchmarkAnonymous is a request with no session cookie.
func BenchmarkAnonymous(b *testing.B) {
	h, _ := benchHandler(b)
	runBench(b, func(w http.ResponseWriter, r *http.Request) error {
		return h.ServeHTTP(w, r, app)
	}, browserHeader(""), nil)
}

// BenchmarkUnknownSession is a request whose cookie names no session: a
// lookup that finds nothing.
func BenchmarkUnknownSession(b *testing.B) {
	h, _ := benchHandler(b)
	runBench(b, func(w http.ResponseWriter, r *http.Request) error {
		return h.ServeHTTP(w, r, app)
	}, browserHeader(session.NewID()), nil)
}

// BenchmarkLogin is a request with no session whose app logs a user in
// (one short key, a name of its own each time): the commands taken from
// the response, a new ID, the store's write (bolt without fsync, one
// transaction per login, as a login alone makes) and the cookie. Most of
// its time and bytes are bbolt's; what the handler adds shows in the
// allocations it counts.
func BenchmarkLogin(b *testing.B) {
	h, _ := benchHandler(b)
	n := 0
	login := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		n++
		w.Header()["X-Session-Set-User"] = []string{"u" + strconv.Itoa(n*7919)}
		return app.ServeHTTP(w, r)
	})
	var out http.Header
	runBench(b, func(w http.ResponseWriter, r *http.Request) error {
		out = w.Header()
		return h.ServeHTTP(w, r, login)
	}, browserHeader(""), func(*http.Request) {
		if len(out["Set-Cookie"]) != 1 {
			b.Fatalf("the login set no cookie: %v", out)
		}
	})
}
