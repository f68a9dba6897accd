package integration_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// panicky is a handler for the tests, placed after the session handler:
// on a request with Test-Panic it panics before anything is written,
// with http.ErrAbortHandler for "abort" and with a plain value
// otherwise, as a handler with a bug does; other requests go on.
type panicky struct{}

func init() {
	caddy.RegisterModule(panicky{})
}

func (panicky) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.test_panic",
		New: func() caddy.Module { return new(panicky) },
	}
}

func (panicky) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	switch r.Header.Get("Test-Panic") {
	case "":
		return next.ServeHTTP(w, r)
	case "abort":
		panic(http.ErrAbortHandler)
	default:
		panic("a handler's bug")
	}
}

var _ caddyhttp.MiddlewareHandler = panicky{}

// TestPanicAfterTheFlashWasTaken: a handler inside the session panics
// before it answers (net/http recovers the panic and closes the
// connection; the client gets no response). The request had taken the
// session's flash values for the app, which never showed them: they are
// put back for the next page, as on any failed response (README, "Flash
// values"), and nothing else of the session changes.
func TestPanicAfterTheFlashWasTaken(t *testing.T) {
	for _, how := range []string{"abort", "value"} {
		t.Run(how, func(t *testing.T) {
			eachStore(t, func(t *testing.T, store string) {
				storeJSON := fmt.Sprintf(`{"backend": "bolt", "path": %q}`, strings.TrimPrefix(store, "store bolt "))
				if url, ok := strings.CutPrefix(store, "store redis "); ok {
					storeJSON = fmt.Sprintf(`{"backend": "redis", "url": %q}`, url)
				}
				s, _ := newBareSite(t, store)
				s.tester.InitServer(fmt.Sprintf(`{
	"admin": {"listen": "localhost:%d"},
	"apps": {"http": {"servers": {"srv": {
		"listen": ["127.0.0.1:%d"],
		"routes": [{"handle": [
			{"handler": "session", "store": %s},
			{"handler": "test_panic"},
			{"handler": "reverse_proxy", "upstreams": [{"dial": %q}]}
		]}]
	}}}}
}`, adminPort, s.port, storeJSON, s.up.addr()), "json")
				v := s.visitor()
				v.navigate(http.MethodGet, "/login", "X-Session-Set-User: alice")
				expectStatus(t, v.navigate(http.MethodPost, "/settings", "X-Session-Flash-Notice: Saved"), http.StatusOK)

				req, err := http.NewRequest(http.MethodGet, s.url("/settings"), nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Sec-Fetch-Mode", "navigate")
				req.Header.Set("Accept", "text/html")
				req.Header.Set("Cookie", "sid="+v.sid)
				req.Header.Set("Test-Panic", how)
				if res, err := s.tester.Client.Do(req); err == nil {
					res.Body.Close()
					t.Fatalf("the request whose handler panicked was answered %d", res.StatusCode)
				}

				r := v.navigate(http.MethodGet, "/settings")
				expectFlashes(t, r, saved)
				expectSession(t, r, map[string]string{"X-Session-User": "alice", "X-Session-Flash-Notice": "Saved"})
			})
		})
	}
}
