package integration_test

// The hostile-input suite: one table row per attack, each sent through a
// real Caddy with the session handler in front of an app, each stating its
// outcome: the status, that no namespace header reached the client
// (headers, trailers, 1xx), and what the session holds afterwards.
//
// Requests that Go's client will not send are written on a raw TCP
// connection; responses that Go's server will not send are written by the
// app on its hijacked connection (the Test-Raw order).

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// hostileApp is the app behind Caddy in this suite. It follows the orders
// of serveUpstream (Test-Header, Test-Status, Test-Flush,
// Test-Early-Hints), and these:
//
//	Test-Raw: <Go-quoted string>        hijack the connection, write these
//	                                    bytes as the whole response, close
//	Test-Trailer: Name: value           (repeatable) an announced trailer
//	Test-Unannounced-Trailer: Name: v   a trailer sent with http.TrailerPrefix
//
// It reads the request body to the end and reports the request's headers
// and trailers as JSON, and counts the requests that reached it.
type hostileApp struct {
	hits atomic.Int64
}

func (a *hostileApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.hits.Add(1)
	_, _ = io.Copy(io.Discard, r.Body) // fills r.Trailer
	if raw := r.Header.Get("Test-Raw"); raw != "" {
		b, err := strconv.Unquote(raw)
		if err != nil {
			http.Error(w, "bad Test-Raw: "+err.Error(), http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		brw.WriteString(b)
		brw.Flush()
		conn.Close()
		return
	}
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
	trailers := r.Header.Values("Test-Trailer")
	for _, tr := range trailers {
		name, _, _ := strings.Cut(tr, ":")
		w.Header().Add("Trailer", name)
	}
	status := http.StatusOK
	if st := r.Header.Get("Test-Status"); st != "" {
		fmt.Sscan(st, &status)
	}
	body, _ := json.Marshal(appSaw{Headers: r.Header, Trailers: r.Trailer})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if r.Header.Get("Test-Flush") != "" {
		w.Write(body[:1])
		http.NewResponseController(w).Flush()
		body = body[1:]
	}
	w.Write(body)
	for _, tr := range trailers {
		name, value, _ := strings.Cut(tr, ":")
		w.Header().Set(name, strings.TrimSpace(value))
	}
	for _, tr := range r.Header.Values("Test-Unannounced-Trailer") {
		name, value, _ := strings.Cut(tr, ":")
		w.Header().Set(http.TrailerPrefix+name, strings.TrimSpace(value))
	}
}

// newHostileSite is newSite with hostileApp as the upstream.
func newHostileSite(t *testing.T, options string) (*site, *hostileApp) {
	t.Helper()
	app := new(hostileApp)
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	s := &site{
		t:       t,
		tester:  caddytest.NewTester(t),
		port:    freePort(t),
		db:      t.TempDir() + "/sessions.db",
		options: options,
		up:      &upstream{srv},
	}
	s.tester.Client.Jar = nil
	s.load()
	return s, app
}

// login returns a fresh visitor logged in as user, with a cart.
func login(t *testing.T, s *site, user string) *visitor {
	t.Helper()
	v := s.visitor()
	expectStatus(t, v.get("/login", "X-Session-Set-User: "+user, "X-Session-Set-Cart: apple"), http.StatusOK)
	if v.sid == "" {
		t.Fatal("login issued no session")
	}
	return v
}

// sessionOf returns the session the app sees for a request with this
// Cookie header: its keys, lowercase, and values.
func sessionOf(t *testing.T, s *site, cookie string) map[string]string {
	t.Helper()
	v := &visitor{site: s, cookies: cookie}
	r := v.get("/")
	expectStatus(t, r, http.StatusOK)
	out := map[string]string{}
	for name, vals := range r.session() {
		out[strings.ToLower(strings.TrimPrefix(name, "X-Session-"))] = vals
	}
	return out
}

// rawExchange writes raw to Caddy on a new connection and reads one
// response, or returns the error that ended the exchange.
func rawExchange(t *testing.T, s *site, raw string) (*http.Response, []byte, error) {
	t.Helper()
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res, body, err
}

// appSaw is what hostileApp reports it received.
type appSaw struct {
	Headers  http.Header `json:"headers"`
	Trailers http.Header `json:"trailers"`
}

// namespaceIn lists the header names of h in the session namespace, in
// any spelling, also announced as trailers.
func namespaceIn(h http.Header) []string {
	var names []string
	for name := range h {
		folded := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		if strings.HasPrefix(strings.TrimPrefix(folded, "trailer:"), "x-session-") {
			names = append(names, name)
		}
	}
	return names
}

// assertNoneLeaked checks every part of a response a client can read for
// namespace headers, including the names announced in Trailer.
func assertNoneLeaked(t *testing.T, res *http.Response) {
	t.Helper()
	assertNoNamespace(t, res.Header)
	assertNoNamespace(t, res.Trailer)
	for _, line := range res.Header.Values("Trailer") {
		for name := range strings.SplitSeq(line, ",") {
			if len(namespaceIn(http.Header{strings.TrimSpace(name): nil})) > 0 {
				t.Errorf("the response announces the namespace trailer %q", name)
			}
		}
	}
}

// TestHostileInboundHeaders: a client tries to make the app believe a
// session header it made up. Every row is sent by a visitor logged in as
// alice; the app must see alice's session and nothing else in the
// namespace, or the request must be refused before it reaches the app.
func TestHostileInboundHeaders(t *testing.T) {
	s, app := newHostileSite(t, "")
	type row struct {
		name string
		// header lines sent right after the request line, before Host
		// and Cookie; each "\n" is sent as CRLF.
		raw string
		// body, if any, sent as is after the header
		body string
		// trailers the app must see (and no others)
		trailers map[string]string
		// status expected; 200 means the app must have seen alice only.
		status int
	}
	var rows []row
	var thousand strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&thousand, "X-Session-K%d: v\n", i)
	}
	for _, name := range []string{
		"X-Session-User", "x-session-user", "X-SESSION-USER", "X_Session_User",
		"x_session_user", "X-Session_User", "X_SESSION-USER", "x-Session_uSeR",
		"X-Session-Role", "X_Session_Role", "X-Session-Set-User", "X-Session-",
		"X-Session-Destroy", "X-Session-Cart",
	} {
		rows = append(rows, row{name: "spelling " + name, raw: name + ": mallory\n", status: 200})
	}
	rows = append(rows,
		row{name: "repeated", raw: "X-Session-User: mallory\nX-Session-User: eve\nx_session_user: trudy\n", status: 200},
		row{name: "whitespace around the value", raw: "X-Session-User:   mallory  \nX-Session-Role:\tadmin\t\n", status: 200},
		row{name: "empty value", raw: "X-Session-User:\n", status: 200},
		row{name: "non-UTF-8 value", raw: "X-Session-User: \xff\xfemallory\n", status: 200},
		row{name: "space before the colon", raw: "X-Session-User : mallory\n", status: 400},
		row{name: "obs-fold into another header", raw: "Foo: bar\n X-Session-User: mallory\n", status: 200},
		row{name: "obs-fold as the first header line", raw: " X-Session-User: mallory\n", status: 400},
		row{name: "obs-fold into the Cookie header", raw: "Cookie: theme=dark\n X-Session-User: mallory\n", status: 200},
		row{name: "NUL in the value", raw: "X-Session-User: mal\x00lory\n", status: 400},
		row{name: "CR in the value", raw: "X-Session-User: mal\rX-Session-Role: admin\n", status: 400},
		row{name: "hop-by-hop: Connection names the session header", raw: "Connection: X-Session-User, x_session_cart\n", status: 200},
		row{name: "a thousand namespace headers", raw: thousand.String(), status: 200},
		row{name: "announced request trailer", raw: "Transfer-Encoding: chunked\nTrailer: X-Session-User\n",
			body: "5\r\nhello\r\n0\r\nX-Session-User: mallory\r\n\r\n", status: 200, trailers: map[string]string{}},
		row{name: "unannounced request trailers beside an announced one", raw: "Transfer-Encoding: chunked\nTrailer: X-Note\n",
			body:   "5\r\nhello\r\n0\r\nX-Note: kept\r\nX_Session_User: mallory\r\nx-session-role: admin\r\n\r\n",
			status: 200, trailers: map[string]string{"X-Note": "kept"}},
		row{name: "over the header size limit", raw: "X-Session-User: " + strings.Repeat("m", 2<<20) + "\n", status: 431},
	)
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			v := login(t, s, "alice")
			before := app.hits.Load()
			raw := "POST / HTTP/1.1\r\n" + strings.ReplaceAll(tc.raw, "\n", "\r\n") +
				"Host: 127.0.0.1\r\nCookie: sid=" + v.sid + "\r\nConnection: close\r\n\r\n" + tc.body
			res, body, err := rawExchange(t, s, raw)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %s", res.StatusCode, tc.status, body)
			}
			assertNoneLeaked(t, res)
			if tc.status != http.StatusOK {
				if app.hits.Load() != before {
					t.Fatal("a refused request reached the app")
				}
			} else {
				var saw appSaw
				if err := json.Unmarshal(body, &saw); err != nil {
					t.Fatalf("app answer %q: %v", body, err)
				}
				got := namespaceIn(saw.Headers)
				if len(got) != 2 || saw.Headers.Get("X-Session-User") != "alice" || saw.Headers.Get("X-Session-Cart") != "apple" {
					t.Fatalf("the app saw namespace headers %v: %q", got, saw.Headers)
				}
				if tc.trailers != nil {
					gotTrailers := map[string]string{}
					for name, vals := range saw.Trailers {
						gotTrailers[name] = strings.Join(vals, ",")
					}
					if fmt.Sprint(gotTrailers) != fmt.Sprint(tc.trailers) {
						t.Fatalf("the app saw trailers %q, want %q", gotTrailers, tc.trailers)
					}
				}
			}
			// Nothing the attack sent is in the session.
			want := map[string]string{"user": "alice", "cart": "apple"}
			if got := sessionOf(t, s, "sid="+v.sid); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("session afterwards = %v, want %v", got, want)
			}
		})
	}
}
