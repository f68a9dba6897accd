package integration_test

// CSRF protection through a real Caddy, in the style of the hostile-input
// suite: one table row per forged request, each stating its status,
// whether the app was called, and what the session holds afterwards.

import (
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/redistest"
)

// csrfApp is the app behind Caddy in the CSRF tests. It follows the
// orders of serveUpstream (Test-Header, Test-Status), counts the unsafe
// requests that reach it, and reports the request's headers and the body
// it read, byte for byte.
type csrfApp struct {
	unsafe atomic.Int64
	mu     sync.Mutex
	body   []byte // the body of the last unsafe request
}

func (a *csrfApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		a.unsafe.Add(1)
		a.mu.Lock()
		a.body = body
		a.mu.Unlock()
	}
	status := obeyOrders(w, r)
	out, _ := json.Marshal(map[string]any{"uri": r.RequestURI, "headers": r.Header})
	writeJSON(w, r, status, out)
}

// lastBody is the body of the last unsafe request the app got.
func (a *csrfApp) lastBody() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.body
}

// newCSRFSite is newSiteWith with csrfApp as the upstream.
func newCSRFSite(t *testing.T, store, defs, options string) (*site, *csrfApp) {
	t.Helper()
	app := new(csrfApp)
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	s := &site{
		t:       t,
		tester:  caddytest.NewTester(t),
		port:    freePort(t),
		db:      filepath.Join(t.TempDir(), "sessions.db"),
		store:   store,
		defs:    defs,
		options: options,
		up:      &upstream{srv},
	}
	if s.store == "" {
		s.store = "store bolt " + s.db
	}
	s.tester.Client.Jar = nil
	s.load()
	return s, app
}

// onEachCSRFStore is onEachStoreWith for sites in front of csrfApp.
func onEachCSRFStore(t *testing.T, defs string, test func(t *testing.T, newSite func(t *testing.T, options string) (*site, *csrfApp))) {
	t.Run("bolt", func(t *testing.T) {
		test(t, func(t *testing.T, options string) (*site, *csrfApp) { return newCSRFSite(t, "", defs, options) })
	})
	t.Run("redis", func(t *testing.T) {
		url := redistest.Start(t).URL()
		test(t, func(t *testing.T, options string) (*site, *csrfApp) {
			return newCSRFSite(t, "store redis "+url, defs, options)
		})
	})
}

// self is the site's own origin, as a browser names it.
func (s *site) self() string { return fmt.Sprintf("http://127.0.0.1:%d", s.port) }

// csrfRefused checks the outcome of a request that must be refused: a 403
// that sets no cookie, and the app never called.
func csrfRefused(t *testing.T, app *csrfApp, before int64, r *response) {
	t.Helper()
	expectStatus(t, r, http.StatusForbidden)
	if n := app.unsafe.Load() - before; n != 0 {
		t.Errorf("the app was called %d times for a refused request", n)
	}
	if c := r.Header.Values("Set-Cookie"); len(c) > 0 {
		t.Errorf("a refused request set cookies %q", c)
	}
}

// csrfAccepted checks that the request reached the app, once.
func csrfAccepted(t *testing.T, app *csrfApp, before int64, r *response) {
	t.Helper()
	expectStatus(t, r, http.StatusOK)
	if n := app.unsafe.Load() - before; n != 1 {
		t.Errorf("the app was called %d times for an accepted request, want 1", n)
	}
}

// TestCSRFHostileOrigins: forged requests of a logged-in visitor, and
// logins forged for an anonymous one, each against the origin check.
// A refused request changes nothing: the cart it tried to set is not set.
func TestCSRFHostileOrigins(t *testing.T) {
	onEachCSRFStore(t, "", func(t *testing.T, newSite func(*testing.T, string) (*site, *csrfApp)) {
		s, app := newSite(t, "csrf {\n\t\t\ttrusted_origins https://login.example.com\n\t\t}")
		self := s.self()
		rows := []struct {
			name    string
			method  string
			headers []string
			ok      bool
		}{
			{"cross-site POST (Fetch Metadata)", "POST", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}, false},
			{"cross-site PUT", "PUT", []string{"Sec-Fetch-Site", "cross-site"}, false},
			{"cross-site PATCH", "PATCH", []string{"Sec-Fetch-Site", "cross-site"}, false},
			{"cross-site DELETE", "DELETE", []string{"Sec-Fetch-Site", "cross-site"}, false},
			{"cross-site PROPFIND (any unsafe method)", "PROPFIND", []string{"Sec-Fetch-Site", "cross-site"}, false},
			{"cross-site POST claiming our Origin", "POST", []string{"Sec-Fetch-Site", "cross-site", "Origin", self}, false},
			{"same-site POST (a sibling subdomain)", "POST", []string{"Sec-Fetch-Site", "same-site", "Origin", "http://blog.127.0.0.1"}, false},
			{"same-site POST from a trusted origin", "POST", []string{"Sec-Fetch-Site", "same-site", "Origin", "https://login.example.com"}, true},
			{"same-origin POST", "POST", []string{"Sec-Fetch-Site", "same-origin", "Origin", self}, true},
			{"POST with Sec-Fetch-Site none", "POST", []string{"Sec-Fetch-Site", "none"}, true},
			{"old browser: Origin of another site", "POST", []string{"Origin", "https://evil.example"}, false},
			{"old browser: Origin of another port", "POST", []string{"Origin", "http://127.0.0.1:1"}, false},
			{"old browser: Origin in https", "POST", []string{"Origin", strings.Replace(self, "http:", "https:", 1)}, false},
			{"old browser: Origin null", "POST", []string{"Origin", "null"}, false},
			{"old browser: our Origin", "POST", []string{"Origin", self}, true},
			{"old browser: a trusted Origin", "POST", []string{"Origin", "https://login.example.com"}, true},
			{"old browser: Referer of another site", "POST", []string{"Referer", "https://evil.example/?to=" + self}, false},
			{"old browser: our Referer", "POST", []string{"Referer", self + "/cart"}, true},
			{"no Sec-Fetch-Site, Origin or Referer (not strict)", "POST", nil, true},
			{"cross-site GET (safe)", "GET", []string{"Sec-Fetch-Site", "cross-site"}, true},
			{"cross-site OPTIONS (safe)", "OPTIONS", []string{"Sec-Fetch-Site", "cross-site"}, true},
		}
		for _, tc := range rows {
			t.Run(tc.name, func(t *testing.T) {
				v := s.visitor()
				v.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Cart: apple")
				sid := v.sid
				before := app.unsafe.Load()
				r := v.do(tc.method, "/cart", append(tc.headers, "Test-Header", "X-Session-Set-Cart: stolen")...)
				want := "apple"
				if tc.ok {
					expectStatus(t, r, http.StatusOK)
					if tc.method != "GET" && tc.method != "OPTIONS" {
						csrfAccepted(t, app, before, r)
					}
					want = "stolen"
				} else {
					csrfRefused(t, app, before, r)
				}
				if v.sid != sid {
					t.Fatal("the session cookie changed")
				}
				expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Cart": want})
			})
		}

		// Login CSRF: a forged login starts no session.
		for _, tc := range []struct {
			name    string
			headers []string
			ok      bool
		}{
			{"forged login (Fetch Metadata)", []string{"Sec-Fetch-Site", "cross-site"}, false},
			{"forged login (Origin)", []string{"Origin", "https://evil.example"}, false},
			{"login from our own page", []string{"Sec-Fetch-Site", "same-origin"}, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				v := s.visitor()
				before := app.unsafe.Load()
				r := v.do("POST", "/login", append(tc.headers, "Test-Header", "X-Session-Set-User: mallory")...)
				if !tc.ok {
					csrfRefused(t, app, before, r)
					if v.sid != "" {
						t.Fatal("a forged login started a session")
					}
					return
				}
				csrfAccepted(t, app, before, r)
				expectSession(t, v.get("/"), map[string]string{"X-Session-User": "mallory"})
			})
		}
	})
}

// TestCSRFStrict: with strict, a request with none of the three headers
// is refused; one with them is judged as without strict.
func TestCSRFStrict(t *testing.T) {
	s, app := newCSRFSite(t, "", "", "csrf {\n\t\t\tstrict\n\t\t}")
	v := s.visitor()
	before := app.unsafe.Load()
	csrfRefused(t, app, before, v.do("POST", "/"))
	csrfAccepted(t, app, before, v.do("POST", "/", "Origin", s.self()))
}

// TestCSRFRefusalChangesNothing: a refused request of a session neither
// touches it nor takes its flash values nor sets a cookie.
func TestCSRFRefusalChangesNothing(t *testing.T) {
	onEachCSRFStore(t, "", func(t *testing.T, newSite func(*testing.T, string) (*site, *csrfApp)) {
		s, app := newSite(t, "idle_timeout 10m\n\t\ttouch_interval 1m\n\t\tflash_on *\n\t\tcsrf")
		v := s.visitor()
		v.get("/login", "X-Session-Set-User: alice", "X-Session-Flash-Notice: saved")
		clock.Advance(9 * time.Minute)
		before := app.unsafe.Load()
		csrfRefused(t, app, before, v.do("POST", "/cart", "Sec-Fetch-Site", "cross-site"))
		// Touched, the session would live to 19m; it ends at 10m.
		clock.Advance(2 * time.Minute)
		r := v.get("/")
		expectSession(t, r, map[string]string{})

		// The flash value stays for the next accepted request.
		v = s.visitor()
		v.get("/login", "X-Session-Set-User: bob", "X-Session-Flash-Notice: saved")
		csrfRefused(t, app, app.unsafe.Load(), v.do("POST", "/cart", "Sec-Fetch-Site", "cross-site"))
		expectSession(t, v.do("POST", "/cart", "Sec-Fetch-Site", "same-origin"), map[string]string{"X-Session-User": "bob", "X-Session-Flash-Notice": "saved"})
	})
}

// TestCSRFHostileTokens: with token, every unsafe request of a session
// must echo the session's current token, in the header or the form
// field; the form's body reaches the app byte for byte.
func TestCSRFHostileTokens(t *testing.T) {
	const defs = "@hooks path /hooks/*"
	onEachCSRFStore(t, defs, func(t *testing.T, newSite func(*testing.T, string) (*site, *csrfApp)) {
		s, app := newSite(t, "csrf {\n\t\t\texempt @hooks\n\t\t\ttoken {\n\t\t\t\tmax_body 1KiB\n\t\t\t}\n\t\t}")
		same := []string{"Sec-Fetch-Site", "same-origin"}
		// tokenOf is the token the app is given for the visitor's session.
		tokenOf := func(t *testing.T, v *visitor) string {
			t.Helper()
			tok := v.get("/").seen.Headers.Get("X-Session-Meta-Csrf-Token")
			if len(tok) != 43 {
				t.Fatalf("the app got the token %q, want 43 characters", tok)
			}
			return tok
		}
		type attack struct {
			name string
			// forge returns the request's body, content type and headers,
			// for a visitor logged in as alice whose token is tok.
			forge func(t *testing.T, v *visitor, tok string) (body, contentType string, headers []string)
			ok    bool
		}
		form := func(fields string) func(*testing.T, *visitor, string) (string, string, []string) {
			return func(_ *testing.T, _ *visitor, tok string) (string, string, []string) {
				return strings.ReplaceAll(fields, "{tok}", tok), "application/x-www-form-urlencoded", nil
			}
		}
		multi := func(fields ...string) func(*testing.T, *visitor, string) (string, string, []string) {
			return func(_ *testing.T, _ *visitor, tok string) (string, string, []string) {
				var b strings.Builder
				w := multipart.NewWriter(&b)
				for i := 0; i+1 < len(fields); i += 2 {
					w.WriteField(fields[i], strings.ReplaceAll(fields[i+1], "{tok}", tok))
				}
				w.Close()
				return b.String(), w.FormDataContentType(), nil
			}
		}
		header := func(value func(tok string) string) func(*testing.T, *visitor, string) (string, string, []string) {
			return func(_ *testing.T, _ *visitor, tok string) (string, string, []string) {
				return `{"amount":10}`, "application/json", []string{"X-CSRF-Token", value(tok)}
			}
		}
		rows := []attack{
			{"the token in the header", header(func(tok string) string { return tok }), true},
			{"the token in a form field", form("amount=10&csrf_token={tok}&note=a%20b+c"), true},
			{"the token in a multipart field", multi("amount", "10", "csrf_token", "{tok}", "note", "a\r\nb"), true},
			{"no token", header(func(string) string { return "" }), false},
			{"no token at all (JSON, no header)", func(*testing.T, *visitor, string) (string, string, []string) {
				return `{"csrf_token":"x"}`, "application/json", nil
			}, false},
			{"a form without the field", form("amount=10"), false},
			{"a wrong token", header(func(tok string) string { return strings.ToUpper(tok[:1]) + tok[1:] + "x" }), false},
			{"a wrong token in the form", form("csrf_token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), false},
			{"another session's token", func(t *testing.T, _ *visitor, _ string) (string, string, []string) {
				return "", "", []string{"X-CSRF-Token", tokenOf(t, login(t, s, "mallory"))}
			}, false},
			{"the old token, from before a login rotated the ID", func(t *testing.T, v *visitor, tok string) (string, string, []string) {
				v.get("/login", "X-Session-Set-User: alice2")
				return "", "", []string{"X-CSRF-Token", tok}
			}, false},
			{"the old token, from before X-Session-Renew", func(t *testing.T, v *visitor, tok string) (string, string, []string) {
				v.get("/sudo", "X-Session-Renew: true")
				return "csrf_token=" + tok, "application/x-www-form-urlencoded", nil
			}, false},
			{"the token in the query string", func(_ *testing.T, _ *visitor, tok string) (string, string, []string) {
				return "amount=10", "application/x-www-form-urlencoded", []string{"Test-Query", "csrf_token=" + tok}
			}, false},
			{"the token twice in the header", func(_ *testing.T, _ *visitor, tok string) (string, string, []string) {
				return "", "", []string{"X-CSRF-Token", tok, "X-CSRF-Token", tok}
			}, false},
			{"the field beyond max_body", form("pad=" + strings.Repeat("x", 1100) + "&csrf_token={tok}"), false},
			{"the multipart field beyond max_body", multi("pad", strings.Repeat("x", 1100), "csrf_token", "{tok}"), false},
			{"the field first, a body past max_body after it", form("csrf_token={tok}&pad=" + strings.Repeat("y", 5000)), true},
			{"the token forged into the namespace header", func(_ *testing.T, _ *visitor, tok string) (string, string, []string) {
				return "", "", []string{"X-Session-Meta-Csrf-Token", "forged", "X-CSRF-Token", "forged"}
			}, false},
		}
		for _, tc := range rows {
			t.Run(tc.name, func(t *testing.T) {
				v := login(t, s, "alice")
				tok := tokenOf(t, v)
				body, ct, headers := tc.forge(t, v, tok)
				path := "/cart"
				for i := 0; i+1 < len(headers); i += 2 {
					if headers[i] == "Test-Query" {
						path += "?" + headers[i+1]
						headers = append(headers[:i:i], headers[i+2:]...)
					}
				}
				if ct != "" {
					headers = append(headers, "Content-Type", ct)
				}
				headers = append(append(headers, same...), "Test-Header", "X-Session-Set-Cart: changed")
				sid := v.sid
				before := app.unsafe.Load()
				r := v.doBody("POST", path, strings.NewReader(body), headers...)
				want := "apple"
				if tc.ok {
					csrfAccepted(t, app, before, r)
					if got := app.lastBody(); string(got) != body {
						t.Fatalf("the app got a body of %d bytes, want the %d sent:\n%q", len(got), len(body), got)
					}
					want = "changed"
				} else {
					csrfRefused(t, app, before, r)
				}
				if v.sid != sid {
					t.Fatal("the session cookie changed")
				}
				if got := v.get("/").session()["X-Session-Cart"]; got != want {
					t.Fatalf("cart = %q after the request, want %q", got, want)
				}
			})
		}

		t.Run("the token is the session's, and a new ID's after a login", func(t *testing.T) {
			v := login(t, s, "alice")
			tok := tokenOf(t, v)
			if again := tokenOf(t, v); again != tok {
				t.Fatal("the token changed between two requests of one session")
			}
			if other := tokenOf(t, login(t, s, "alice")); other == tok {
				t.Fatal("two sessions have one token")
			}
			r := v.get("/", "X-Session-Set-User: bob")
			if r.seen.Headers.Get("X-Session-Meta-Csrf-Token") != tok {
				t.Fatal("the login request did not carry the token it was sent with")
			}
			fresh := tokenOf(t, v)
			if fresh == tok {
				t.Fatal("the token did not change with the ID")
			}
			csrfAccepted(t, app, app.unsafe.Load(), v.do("POST", "/cart", append(same, "X-CSRF-Token", fresh)...))
		})
		t.Run("without a session, the origin check alone", func(t *testing.T) {
			v := s.visitor()
			r := v.get("/")
			if got := r.seen.Headers.Values("X-Session-Meta-Csrf-Token"); len(got) != 0 {
				t.Fatalf("an anonymous request got a token %q", got)
			}
			before := app.unsafe.Load()
			csrfAccepted(t, app, before, v.do("POST", "/login", append(same, "Test-Header", "X-Session-Set-User: carol")...))
			if v.sid == "" {
				t.Fatal("the login started no session")
			}
			csrfRefused(t, app, app.unsafe.Load(), v.do("POST", "/cart", same...))
		})
		t.Run("an exempt request needs no token nor origin", func(t *testing.T) {
			v := login(t, s, "alice")
			csrfAccepted(t, app, app.unsafe.Load(), v.do("POST", "/hooks/payment", "Sec-Fetch-Site", "cross-site"))
			csrfRefused(t, app, app.unsafe.Load(), v.do("POST", "/hooksx", same...))
		})
	})
}

// TestCSRFTokenPlaceholder: {http.session_meta.csrf_token} holds the token
// the app is sent, for templates and later directives.
func TestCSRFTokenPlaceholder(t *testing.T) {
	s, _ := newCSRFSite(t, "", `respond /token "{http.session_meta.csrf_token}"`, "csrf {\n\t\t\ttoken\n\t\t}")
	v := login(t, s, "alice")
	tok := v.get("/").seen.Headers.Get("X-Session-Meta-Csrf-Token")
	r := v.get("/token")
	if tok == "" || string(r.body) != tok {
		t.Fatalf("{http.session_meta.csrf_token} = %q, want the token the app got, %q", r.body, tok)
	}
	if anon := s.visitor().get("/token"); len(anon.body) != 0 {
		t.Fatalf("{http.session_meta.csrf_token} of an anonymous request = %q, want nothing", anon.body)
	}
}

// TestCSRFBehindATrustedProxy: behind a TLS-terminating proxy, the
// request's origin is what the proxy says, if the server trusts it
// (trusted_proxies); a client that is no trusted proxy cannot say it.
func TestCSRFBehindATrustedProxy(t *testing.T) {
	const public = "https://app.example.com"
	forwarded := []string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "app.example.com"}
	for _, tc := range []struct {
		name    string
		globals string
		headers []string
		ok      bool
	}{
		{"trusted proxy, the public origin", "servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}", append([]string{"Origin", public}, forwarded...), true},
		{"trusted proxy, a page of the backend's own origin", "servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}", append([]string{"Origin", "http://127.0.0.1:{port}"}, forwarded...), false},
		{"trusted proxy, another site", "servers {\n\t\ttrusted_proxies static 127.0.0.1/32\n\t}", append([]string{"Origin", "https://evil.example"}, forwarded...), false},
		{"untrusted client claiming the public origin", "", append([]string{"Origin", public}, forwarded...), false},
		{"untrusted, no forwarded headers: the backend's own origin", "", []string{"Origin", "http://127.0.0.1:{port}"}, true},
		{"trusted proxy by another range", "servers {\n\t\ttrusted_proxies static 10.0.0.0/8\n\t}", append([]string{"Origin", public}, forwarded...), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := new(csrfApp)
			srv := httptest.NewServer(app)
			t.Cleanup(srv.Close)
			s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), db: filepath.Join(t.TempDir(), "s.db"),
				globals: tc.globals, options: "csrf", up: &upstream{srv}}
			s.store = "store bolt " + s.db
			s.tester.Client.Jar = nil
			s.load()
			headers := make([]string, len(tc.headers))
			for i, h := range tc.headers {
				headers[i] = strings.ReplaceAll(h, "{port}", fmt.Sprint(s.port))
			}
			r := s.visitor().do("POST", "/", headers...)
			if tc.ok {
				csrfAccepted(t, app, 0, r)
			} else {
				csrfRefused(t, app, 0, r)
			}
		})
	}
}

// TestCSRFRefusalLog: a refusal is logged with its reason and the
// session's short hash, never the ID or the token.
func TestCSRFRefusalLog(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	app := new(csrfApp)
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	s := &site{t: t, tester: caddytest.NewTester(t), port: freePort(t), db: filepath.Join(t.TempDir(), "s.db"),
		globals: "log {\n\t\toutput file " + logFile + "\n\t\tlevel DEBUG\n\t}", options: "csrf {\n\t\t\ttoken\n\t\t}", up: &upstream{srv}}
	s.store = "store bolt " + s.db
	s.tester.Client.Jar = nil
	s.load()
	v := login(t, s, "alice")
	tok := v.get("/").seen.Headers.Get("X-Session-Meta-Csrf-Token")
	csrfRefused(t, app, 0, v.do("POST", "/cart?page=2", "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"))
	csrfRefused(t, app, 0, v.do("POST", "/cart", "Sec-Fetch-Site", "same-origin", "X-CSRF-Token", "AAAA"+tok[4:]))
	text := waitForText(t, logFile, "Sec-Fetch-Site says the request comes from another site", "is not the session's")
	var lines []map[string]any
	for line := range strings.SplitSeq(text, "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) == nil && l["msg"] == "refused a request as cross-site request forgery" {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d refusal lines, want 2:\n%s", len(lines), text)
	}
	first := lines[0]
	for k, want := range map[string]string{"level": "warn", "method": "POST", "uri": "/cart?page=2", "sec_fetch_site": "cross-site", "origin": "https://evil.example", "request_origin": s.self()} {
		if first[k] != want {
			t.Errorf("the refusal line has %s = %v, want %q: %v", k, first[k], want, first)
		}
	}
	if h, _ := first["session"].(string); len(h) == 0 || len(h) > 16 {
		t.Errorf("the refusal line names the session %q, want its short hash", first["session"])
	}
	if strings.Contains(text, v.sid) {
		t.Error("the log contains the raw session ID")
	}
	// At debug level reverse_proxy logs the headers it sends, the token
	// among them, as it does the session's values.
	for line := range strings.SplitSeq(text, "\n") {
		if !strings.Contains(line, `"level":"debug"`) && (strings.Contains(line, tok) || strings.Contains(line, tok[4:])) {
			t.Errorf("a log line at info or above contains the token: %s", line)
		}
	}
}

// TestCSRFRecipe runs the README's csrf recipe as written, with only its
// site address, store and upstream replaced.
func TestCSRFRecipe(t *testing.T) {
	app := new(csrfApp)
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	port := freePort(t)
	config := recipe(t, "<!-- recipe: csrf -->")
	config = strings.Replace(config, "app.example.com", fmt.Sprintf("http://127.0.0.1:%d", port), 1)
	config = strings.Replace(config, "127.0.0.1:9000", srv.Listener.Addr().String(), 1)
	config = strings.Replace(config, "\tsession {\n", "\tsession {\n\t\tstore bolt "+filepath.Join(t.TempDir(), "s.db")+"\n", 1)
	s := &site{t: t, tester: caddytest.NewTester(t), port: port, up: &upstream{srv}}
	s.tester.Client.Jar = nil
	s.tester.InitServer(fmt.Sprintf("{\n\tadmin localhost:%d\n}\n", adminPort)+config, "caddyfile")

	v := login(t, s, "alice")
	tok := v.get("/").seen.Headers.Get("X-Session-Meta-Csrf-Token")
	csrfRefused(t, app, app.unsafe.Load(), v.do("POST", "/cart", "Sec-Fetch-Site", "cross-site", "X-CSRF-Token", tok))
	csrfRefused(t, app, app.unsafe.Load(), v.do("POST", "/cart", "Sec-Fetch-Site", "same-origin"))
	csrfAccepted(t, app, app.unsafe.Load(), v.do("POST", "/cart", "Sec-Fetch-Site", "same-origin", "X-CSRF-Token", tok))
	csrfAccepted(t, app, app.unsafe.Load(), v.do("POST", "/cart", "Sec-Fetch-Site", "same-site", "Origin", "https://login.example.com", "X-CSRF-Token", tok))
	csrfAccepted(t, app, app.unsafe.Load(), v.do("POST", "/webhooks/stripe", "Sec-Fetch-Site", "cross-site"))
}
