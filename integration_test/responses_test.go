package integration_test

// Responses that reach the client by ways other than the app's own final
// response: rewritten by intercept or reverse_proxy's handle_response,
// started by a flush or an io.Copy, and the caching headers of a response
// that carries the session cookie.

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/internal/redistest"
)

// eachStore runs test once on bolt and once on a fresh Redis, giving it
// the store line of the session block.
func eachStore(t *testing.T, test func(t *testing.T, store string)) {
	t.Run("bolt", func(t *testing.T) { test(t, "store bolt "+filepath.Join(t.TempDir(), "sessions.db")) })
	t.Run("redis", func(t *testing.T) { test(t, "store redis "+redistest.Start(t).URL()) })
}

// newSiteFrom starts Caddy with the Caddyfile sites in config, in front of
// a hostileApp. In config, $PORT is the site's port, $PORT2 another free
// port, $STORE the store line and $APP the app's address.
func newSiteFrom(t *testing.T, store, config string) (*site, *hostileApp) {
	t.Helper()
	s, app := newBareSite(t, store)
	s.tester.InitServer(s.expand(config), "caddyfile")
	return s, app
}

// newBareSite is newSiteFrom without loading a config.
func newBareSite(t *testing.T, store string) (*site, *hostileApp) {
	t.Helper()
	app := new(hostileApp)
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), store: store, up: &upstream{srv}}
	s.tester.Client.Jar = nil
	return s, app
}

// expand fills the $-variables of newSiteFrom in config and prepends the
// global options.
func (s *site) expand(config string) string {
	s.options = strings.NewReplacer(
		"$PORT2", fmt.Sprint(freePort(s.t)),
		"$PORT", fmt.Sprint(s.port),
		"$STORE", s.store,
		"$APP", s.up.addr(),
	).Replace(config)
	return fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	skip_install_trust
}
%s`, adminPort, freePort(s.t), freePort(s.t), s.options)
}

// orders turns "Name: value" commands into Test-Header orders for do,
// after the extra name, value pairs given first.
func orders(extra []string, commands ...string) []string {
	out := append([]string(nil), extra...)
	for _, c := range commands {
		out = append(out, "Test-Header", c)
	}
	return out
}

// TestCommandsOnARewrittenErrorAreIgnored: the app answers 500 with
// commands, and intercept or reverse_proxy's handle_response turns the
// answer into a 200. The commands came with an error, so they are
// ignored whatever status the client gets; and none of them reaches the
// client. The same configs apply commands on the app's successes.
func TestCommandsOnARewrittenErrorAreIgnored(t *testing.T) {
	configs := []struct{ name, handlers, body string }{
		{"intercept handle_response respond", `
	intercept {
		@err status 5xx
		handle_response @err {
			respond "sorry" 200
		}
	}
	reverse_proxy $APP`, "sorry"},
		{"intercept replace_status", `
	intercept {
		@err status 5xx
		replace_status @err 200
	}
	reverse_proxy $APP`, ""},
		{"reverse_proxy replace_status", `
	reverse_proxy $APP {
		@e status 500
		replace_status @e 200
	}`, ""},
		{"reverse_proxy handle_response respond", `
	reverse_proxy $APP {
		@e status 500
		handle_response @e {
			respond "x" 200
		}
	}`, "x"},
		{"reverse_proxy handle_response copy_response_headers and respond", `
	reverse_proxy $APP {
		@e status 500
		handle_response @e {
			copy_response_headers
			respond "x" 200
		}
	}`, "x"},
		{"reverse_proxy handle_response copy_response 200", `
	reverse_proxy $APP {
		@e status 500
		handle_response @e {
			copy_response 200
		}
	}`, ""},
	}
	eachStore(t, func(t *testing.T, store string) {
		for _, c := range configs {
			t.Run(c.name, func(t *testing.T) {
				s, _ := newSiteFrom(t, store, `http://127.0.0.1:$PORT {
	session {
		$STORE
	}`+c.handlers+`
}
`)
				// The app streams its 500, so that it has no Content-Length
				// that Caddy would keep on the shorter replacement body.
				fail := []string{"Test-Status", "500", "Test-Flush", "1"}

				// An anonymous visitor: the app's login on its 500 opens
				// no session.
				anon := s.visitor()
				r := anon.do(http.MethodGet, "/login", orders(fail, "X-Session-Set-User: eve")...)
				expectStatus(t, r, http.StatusOK)
				if c.body != "" && string(r.body) != c.body {
					t.Fatalf("body %q, want the handler's %q", r.body, c.body)
				}
				if got := r.Header.Values("Set-Cookie"); len(got) != 0 {
					t.Fatalf("a 500 turned into a 200 set cookies %q", got)
				}

				// A logged-in visitor: neither a change of user nor a
				// logout on the 500 takes effect; the ID stays valid.
				alice := login(t, s, "alice")
				r = alice.do(http.MethodGet, "/", orders(fail, "X-Session-Set-User: eve", "X-Session-Set-Role: admin")...)
				expectStatus(t, r, http.StatusOK)
				if got := r.Header.Values("Set-Cookie"); len(got) != 0 {
					t.Fatalf("a 500 turned into a 200 set cookies %q", got)
				}
				r = alice.do(http.MethodGet, "/logout", orders(fail, "X-Session-Destroy: true")...)
				expectStatus(t, r, http.StatusOK)
				want := map[string]string{"user": "alice", "cart": "apple"}
				if got := sessionOf(t, s, "sid="+alice.sid); !maps.Equal(got, want) {
					t.Fatalf("session afterwards = %v, want %v", got, want)
				}

				// The app's success goes through the same handlers, and its
				// commands apply.
				bob := s.visitor()
				expectStatus(t, bob.get("/login", "X-Session-Set-User: bob"), http.StatusOK)
				if got := sessionOf(t, s, "sid="+bob.sid); !maps.Equal(got, map[string]string{"user": "bob"}) {
					t.Fatalf("a login on a 200 gave session %v", got)
				}
			})
		}
	})
}

// streamFirst is a handler for the tests, placed after the session
// handler: it sets the response headers of its Test-Header orders and
// starts the response without WriteHeader, by the way its Test-Start order
// names: "flush" (http.Flusher), "controller" (http.ResponseController),
// "copy" (io.Copy, which uses io.ReaderFrom) or "readfrom" (a direct call).
type streamFirst struct{}

func init() {
	caddy.RegisterModule(streamFirst{})
}

func (streamFirst) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.test_stream_first",
		New: func() caddy.Module { return new(streamFirst) },
	}
}

func (streamFirst) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	for _, order := range r.Header.Values("Test-Header") {
		name, value, _ := strings.Cut(order, ":")
		w.Header().Add(name, strings.TrimSpace(value))
	}
	body, _ := json.Marshal(map[string]any{"headers": r.Header})
	w.Header().Set("Content-Type", "application/json")
	// Hide strings.Reader's WriteTo, so that io.Copy asks the writer.
	src := struct{ io.Reader }{strings.NewReader(string(body))}
	var err error
	switch how := r.Header.Get("Test-Start"); how {
	case "flush":
		w.(http.Flusher).Flush()
		_, err = w.Write(body)
	case "controller":
		if err = http.NewResponseController(w).Flush(); err == nil {
			_, err = w.Write(body)
		}
	case "copy":
		_, err = io.Copy(w, src)
	case "readfrom":
		_, err = w.(io.ReaderFrom).ReadFrom(src)
	default:
		return fmt.Errorf("unknown Test-Start %q", how)
	}
	return err
}

var _ caddyhttp.MiddlewareHandler = streamFirst{}

// TestResponseStartedWithoutWriteHeader: a handler after the session
// handler starts its response with a flush or a copy, never calling
// WriteHeader. The commands are still applied before the header leaves
// (the login issues its cookie, a logout expires it), and none of them
// reaches the client.
func TestResponseStartedWithoutWriteHeader(t *testing.T) {
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
		"routes": [
			{"match": [{"path": ["/stream/*"]}], "handle": [
				{"handler": "session", "store": %s},
				{"handler": "test_stream_first"}
			]},
			{"handle": [
				{"handler": "session", "store": %[3]s},
				{"handler": "reverse_proxy", "upstreams": [{"dial": %[4]q}]}
			]}
		]
	}}}}
}`, adminPort, s.port, storeJSON, s.up.addr()), "json")
		for _, how := range []string{"flush", "controller", "copy", "readfrom"} {
			t.Run(how, func(t *testing.T) {
				start := []string{"Test-Start", how}
				v := s.visitor()
				r := v.do(http.MethodGet, "/stream/login", orders(start, "X-Session-Set-User: alice", "X-Session-Set-Cart: apple")...)
				expectStatus(t, r, http.StatusOK)
				if v.sid == "" {
					t.Fatalf("the login issued no cookie: %q", r.Header.Values("Set-Cookie"))
				}
				if got := r.Header.Get("Cache-Control"); got != "no-store" {
					t.Fatalf("Cache-Control %q on the login, want no-store", got)
				}
				want := map[string]string{"user": "alice", "cart": "apple"}
				if got := sessionOf(t, s, "sid="+v.sid); !maps.Equal(got, want) {
					t.Fatalf("the session holds %v, want %v", got, want)
				}
				// The response body came through whole.
				if got := r.seen.Headers.Get("Test-Start"); got != how {
					t.Fatalf("the body was cut: %q", r.body)
				}

				id := v.sid
				r = v.do(http.MethodGet, "/stream/logout", orders(start, "X-Session-Destroy: true")...)
				expectStatus(t, r, http.StatusOK)
				if c := r.sessionCookie(); c == nil || c.MaxAge >= 0 {
					t.Fatalf("the logout did not expire the cookie: %q", r.Header.Values("Set-Cookie"))
				}
				if got := sessionOf(t, s, "sid="+id); len(got) != 0 {
					t.Fatalf("the session lives on after the logout: %v", got)
				}
			})
		}
	})
}

// TestHeaderDirectiveSetsCommands: Caddy's header directive runs before
// the session handler, so a response field it sets at once is a command,
// as README says: `header /logout X-Session-Destroy true` logs out
// whatever the app answers, and the command reaches no client.
func TestHeaderDirectiveSetsCommands(t *testing.T) {
	s := newSiteWith(t, "", "header /logout X-Session-Destroy true", "")
	v := s.visitor()
	v.get("/login", "X-Session-Set-User: alice")
	id := v.sid
	expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice"})
	r := v.get("/logout")
	expectStatus(t, r, http.StatusOK)
	if c := r.sessionCookie(); c == nil || c.MaxAge >= 0 {
		t.Fatalf("the logout did not expire the cookie: %q", r.Header.Values("Set-Cookie"))
	}
	v.sid = id
	expectSession(t, v.get("/"), map[string]string{})
}
