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
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
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
	status := obeyOrders(w, r)
	trailers := r.Header.Values("Test-Trailer")
	for _, tr := range trailers {
		name, _, _ := strings.Cut(tr, ":")
		w.Header().Add("Trailer", name)
	}
	body, _ := json.Marshal(appSaw{Headers: r.Header, Trailers: r.Trailer})
	writeJSON(w, r, status, body)
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

// sendCookies sends GET path with these Cookie lines (as raw bytes) and
// commands for the app, and returns the response and what the app saw.
func sendCookies(t *testing.T, s *site, path string, cookies []string, commands ...string) (*http.Response, appSaw) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", path)
	for _, c := range cookies {
		fmt.Fprintf(&b, "Cookie: %s\r\n", c)
	}
	for _, c := range commands {
		fmt.Fprintf(&b, "Test-Header: %s\r\n", c)
	}
	b.WriteString("\r\n")
	res, body, err := rawExchange(t, s, b.String())
	if err != nil {
		t.Fatal(err)
	}
	assertNoneLeaked(t, res)
	var saw appSaw
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &saw); err != nil {
			t.Fatalf("app answer %q: %v", body, err)
		}
	}
	return res, saw
}

// issued returns the session cookie a response set, or "".
func issued(res *http.Response) string {
	for _, c := range res.Cookies() {
		if c.Name == "sid" && c.MaxAge >= 0 {
			return c.Value
		}
	}
	return ""
}

// TestHostileSessionIDs: a client presents session cookies it should not
// have, or in forms it should not use. Each row says whose session the app
// sees: alice's (the real one, which the row's visitor holds), or none.
// For every row that ends anonymous, a login with the same cookies is
// given a NEW ID, never one it presented (no fixation), and what it
// presented still opens nothing afterwards.
func TestHostileSessionIDs(t *testing.T) {
	s, _ := newHostileSite(t, "idle_timeout 10m\n\t\tabsolute_timeout 1h")
	forged := func() string { return session.NewID() }
	tossed := func(n int) string { // n forged session cookies
		var b strings.Builder
		for range n {
			b.WriteString("sid=" + forged() + "; ")
		}
		return b.String()
	}
	hashOf := func(id string) string { return session.HashID(id).String() }
	type row struct {
		name string
		// prepare makes alice's session (real is its ID) and returns the
		// Cookie lines and the path of the attack.
		prepare func(t *testing.T, real string) (cookies []string, path string)
		alice   bool // the app sees alice's session; else none
		ended   bool // prepare ended alice's session
	}
	cookie := func(lines ...string) func(*testing.T, string) ([]string, string) {
		return func(_ *testing.T, real string) ([]string, string) {
			out := make([]string, len(lines))
			for i, l := range lines {
				out[i] = strings.ReplaceAll(l, "{real}", real)
			}
			return out, "/"
		}
	}
	rows := []row{
		{"the real ID (control)", cookie("sid={real}"), true, false},
		{"a forged ID before the real one", cookie("sid=" + forged() + "; sid={real}"), true, false},
		{"the real ID before a forged one", cookie("sid={real}; sid=" + forged()), true, false},
		{"the real ID on a second Cookie line", cookie("theme=dark; sid="+forged(), "sid={real}"), true, false},
		{"the real ID quoted", cookie(`sid="{real}"`), true, false},
		{"two forged IDs", cookie("sid=" + forged() + "; sid=" + forged()), false, false},
		// A sibling subdomain tosses cookies for the parent domain, one
		// per path of the request: the browser sends them before the
		// real, host-only one of path /, which comes last or next to last
		// (a tossed cookie of path / created after it comes after it).
		{"three tossed IDs, then the real one", cookie(tossed(3) + "sid={real}"), true, false},
		{"eight tossed IDs, then the real one", cookie(tossed(8) + "sid={real}"), true, false},
		{"eight tossed IDs, the real one, then two more", cookie(tossed(8) + "sid={real}; " + tossed(2)), true, false},
		{"the real one among many, not at either end (only the first and last three are tried)", cookie(tossed(4) + "sid={real}; " + tossed(4)), false, false},
		{"the name in another case", cookie("SID={real}"), false, false},
		{"oversized", cookie("sid=" + strings.Repeat("A", 8<<10)), false, false},
		{"one character short", func(_ *testing.T, real string) ([]string, string) { return []string{"sid=" + real[1:]}, "/" }, false, false},
		{"one character long", cookie("sid={real}A"), false, false},
		{"base64 padding", cookie("sid={real}="), false, false},
		{"outside the alphabet", cookie("sid=" + strings.Repeat("A", 42) + "."), false, false},
		{"non-UTF-8", cookie("sid=" + strings.Repeat("\xff", 43)), false, false},
		{"empty", cookie("sid="), false, false},
		{"no value", cookie("sid"), false, false},
		{"the hash of the real ID, as kept at rest", func(_ *testing.T, real string) ([]string, string) { return []string{"sid=" + hashOf(real)}, "/" }, false, false},
		{"the hash of the real ID, cut to the length of an ID", func(_ *testing.T, real string) ([]string, string) { return []string{"sid=" + hashOf(real)[:43]}, "/" }, false, false},
		{"the log prefix of the hash", func(_ *testing.T, real string) ([]string, string) {
			return []string{"sid=" + session.HashID(real).Short()}, "/"
		}, false, false},
		{"the real ID in the URL", func(_ *testing.T, real string) ([]string, string) { return nil, "/?sid=" + real }, false, false},
		{"a forged ID of the right form", cookie("sid=" + forged()), false, false},
		{"an expired ID", func(t *testing.T, real string) ([]string, string) {
			clock.Advance(11 * time.Minute)
			return []string{"sid=" + real}, "/"
		}, false, true},
		{"a destroyed ID (logout)", func(t *testing.T, real string) ([]string, string) {
			v := &visitor{site: s, sid: real}
			expectStatus(t, v.get("/logout", "X-Session-Destroy: true"), http.StatusOK)
			return []string{"sid=" + real}, "/"
		}, false, true},
		{"an ID ended by Destroy-All on another device", func(t *testing.T, real string) ([]string, string) {
			other := login(t, s, "alice")
			expectStatus(t, other.get("/logout-everywhere", "X-Session-Destroy-All: true"), http.StatusOK)
			return []string{"sid=" + real}, "/"
		}, false, true},
		{"an ID rotated away by a change of user", func(t *testing.T, real string) ([]string, string) {
			v := &visitor{site: s, sid: real}
			v.get("/login", "X-Session-Set-User: alice2")
			if v.sid == real {
				t.Fatal("the change of user did not rotate the ID")
			}
			return []string{"sid=" + real}, "/"
		}, false, true},
		{"an ID rotated away by X-Session-Renew", func(t *testing.T, real string) ([]string, string) {
			v := &visitor{site: s, sid: real}
			v.get("/sudo", "X-Session-Renew: true")
			if v.sid == real {
				t.Fatal("X-Session-Renew did not rotate the ID")
			}
			return []string{"sid=" + real}, "/"
		}, false, true},
	}
	idsIn := func(cookies []string, path string) []string {
		var ids []string
		for _, part := range strings.FieldsFunc(strings.Join(cookies, ";")+";"+path, func(r rune) bool { return r == ';' || r == '=' || r == '"' || r == '?' || r == ' ' }) {
			if session.ValidID(part) {
				ids = append(ids, part)
			}
		}
		return ids
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			alice := login(t, s, "alice")
			real := alice.sid
			cookies, path := tc.prepare(t, real)

			res, saw := sendCookies(t, s, path, cookies)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", res.StatusCode)
			}
			if c := res.Header.Values("Set-Cookie"); len(c) != 0 {
				t.Fatalf("a read set cookies %q", c)
			}
			got := namespaceIn(saw.Headers)
			if tc.alice {
				if len(got) != 2 || saw.Headers.Get("X-Session-User") != "alice" {
					t.Fatalf("the app saw %q, want alice's session", saw.Headers)
				}
			} else if len(got) != 0 {
				t.Fatalf("the app saw session headers %v, want none", got)
			}
			// The session cookie never reaches the app, in any of its forms.
			for _, line := range saw.Headers.Values("Cookie") {
				for part := range strings.SplitSeq(line, ";") {
					if name, _, _ := strings.Cut(strings.TrimSpace(part), "="); name == "sid" {
						t.Fatalf("the app saw the session cookie: %q", line)
					}
				}
			}
			if tc.alice {
				return
			}

			// Fixation: a login that presents these cookies gets a new ID,
			// except with an ID rotated away: that starts no session at
			// all, so a request that raced a login can never replace the
			// logged-in session's cookie.
			res, _ = sendCookies(t, s, path, cookies, "X-Session-Set-User: bob")
			id := issued(res)
			if strings.HasPrefix(tc.name, "an ID rotated away") {
				if id != "" || len(res.Header.Values("Set-Cookie")) != 0 {
					t.Fatalf("a request with a rotated-away ID started a session: %q", res.Header.Values("Set-Cookie"))
				}
				return
			}
			if id == "" {
				t.Fatalf("the login issued no session: %q", res.Header.Values("Set-Cookie"))
			}
			presented := idsIn(cookies, path)
			for _, p := range presented {
				if id == p {
					t.Fatalf("the login adopted the presented ID %s", p)
				}
			}
			if got := sessionOf(t, s, "sid="+id); got["user"] != "bob" || len(got) != 1 {
				t.Fatalf("the new ID opens %v, want bob's new session", got)
			}
			// What was presented opens no session; the real one, unless the
			// row ended it, is still alice's, untouched by the attack.
			for _, p := range presented {
				got := sessionOf(t, s, "sid="+p)
				want := map[string]string{}
				if p == real && !tc.ended {
					want = map[string]string{"user": "alice", "cart": "apple"}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("the presented ID %s opens %v after the login, want %v", p, got, want)
				}
			}
		})
	}
}

// rawResponse is a Test-Raw order: the app writes head (CRLF-terminated
// header lines, without the status line) and a short body as its whole
// response.
func rawResponse(head string) string {
	return strconv.Quote("HTTP/1.1 200 OK\r\n" + head + "Content-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
}

// TestHostileUpstreamValues: the app's commands carry bytes that must not
// reach a header or a session, break a limit or a rule, or are spelled
// oddly. Each row is answered to a visitor logged in as alice (user,
// cart); it states the status, and the session afterwards: alice's as it
// was (nothing stored), or with the row's change. No namespace header
// ever reaches the client. A rejected batch changes nothing, however many
// of its commands were valid.
func TestHostileUpstreamValues(t *testing.T) {
	s, _ := newHostileSite(t, "")
	big := strings.Repeat("v", session.DefaultValueSize)
	manyKeys := func(n int) []string {
		var cmds []string
		for i := range n {
			cmds = append(cmds, fmt.Sprintf("X-Session-Set-K%d: v", i))
		}
		return cmds
	}
	type row struct {
		name string
		// commands the app sends as headers (Test-Header orders), or raw:
		// header lines the app writes itself on its connection.
		commands []string
		raw      string
		status   int
		// added: keys the row adds to alice's session; nil: nothing stored
		added map[string]string
	}
	rows := []row{
		{name: "a valid command (control)", commands: []string{"X-Session-Set-Flash: hi"}, status: 200, added: map[string]string{"flash": "hi"}},
		{name: "a command spelled with underscores", commands: []string{"X_Session_Set_Flash: hi"}, status: 200, added: map[string]string{"flash": "hi"}},
		{name: "a command in odd case", commands: []string{"x-SESSION-set-FLASH: hi"}, status: 200, added: map[string]string{"flash": "hi"}},
		{name: "CR in a value", raw: "X-Session-Set-Role: admin\rX-Injected: 1\r\nX-Session-Set-Flash: hi\r\n", status: 502},
		{name: "NUL in a value", raw: "X-Session-Set-Role: ad\x00min\r\n", status: 502},
		{name: "control bytes in a value", raw: "X-Session-Set-Role: \x01admin\x7f\r\n", status: 502},
		{name: "an obs-fold continuation line", raw: "X-Session-Set-Role: admin\r\n X-Injected: 1\r\n", status: 200, added: map[string]string{"role": "admin X-Injected: 1"}},
		{name: "space before the colon", raw: "X-Session-Set-Role : admin\r\nX-Session-Set-Flash: hi\r\n", status: 200},
		{name: "a non-token key (U+212A KELVIN SIGN)", raw: "X-Session-Set-\u212a: 1\r\n", status: 502},
		{name: "a value over value_size", commands: []string{"X-Session-Set-Flash: hi", "X-Session-Set-Role: " + big + "v"}, status: 200},
		{name: "a value of exactly value_size", commands: []string{"X-Session-Set-Role: " + big}, status: 200, added: map[string]string{"role": big}},
		{name: "too many keys", commands: manyKeys(session.DefaultMaxKeys - 1), status: 200},
		{name: "over session_size", commands: []string{"X-Session-Set-A: " + big, "X-Session-Set-B: " + big, "X-Session-Set-C: " + big, "X-Session-Set-D: " + big}, status: 200},
		{name: "an invalid key name", commands: []string{"X-Session-Set-Flash: hi", "X-Session-Set-Ro.le: admin"}, status: 200},
		{name: "an empty key name", commands: []string{"X-Session-Set-Flash: hi", "X-Session-Set-: admin"}, status: 200},
		{name: "a key of 65 characters", commands: []string{"X-Session-Set-Flash: hi", "X-Session-Set-" + strings.Repeat("k", 65) + ": 1"}, status: 200},
		{name: "an invalid key to delete", commands: []string{"X-Session-Set-Flash: hi", "X-Session-Delete: cart, ro.le"}, status: 200},
		{name: "twin keys (_ and -)", commands: []string{"X-Session-Set-Cart_Items: 1", "X-Session-Set-Cart-Items: 2"}, status: 200},
		{name: "a key set twice", commands: []string{"X-Session-Set-Flash: hi", "X-Session-Set-Flash: ho"}, status: 200},
		{name: "a key set and deleted", commands: []string{"X-Session-Set-Flash: hi", "X-Session-Delete: flash"}, status: 200},
		{name: "an unknown command", commands: []string{"X-Session-Set-Flash: hi", "X-Session-Frobnicate: true"}, status: 200},
		{name: "a flag other than true", commands: []string{"X-Session-Set-Flash: hi", "X-Session-Destroy: yes"}, status: 200},
		{name: "a flag given twice", commands: []string{"X-Session-Renew: true", "X-Session-Renew: true"}, status: 200},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			alice := login(t, s, "alice")
			cmds := slices.Clone(tc.commands)
			if tc.raw != "" {
				cmds = nil
			}
			req, _ := http.NewRequest(http.MethodGet, s.url("/"), nil)
			req.Header.Set("Cookie", "sid="+alice.sid)
			for _, c := range cmds {
				req.Header.Add("Test-Header", c)
			}
			if tc.raw != "" {
				req.Header.Set("Test-Raw", rawResponse(tc.raw))
			}
			res, err := s.tester.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			assertNoneLeaked(t, res)
			if id := issued(res); id != "" {
				t.Fatalf("the response issued a session cookie")
			}
			want := map[string]string{"user": "alice", "cart": "apple"}
			maps.Copy(want, tc.added)
			if got := sessionOf(t, s, "sid="+alice.sid); !maps.Equal(got, want) {
				t.Fatalf("session afterwards = %.80v, want %.80v", got, want)
			}
		})
	}
}

// exchange is what a client got for one request: the final response, its
// body (or the error that cut it short), and any 1xx responses before it.
type exchange struct {
	res     *http.Response
	body    []byte
	bodyErr error
	hints   []http.Header
}

// fetch sends method path with the visitor's cookie and the app's orders
// (name, value pairs), recording 1xx responses, and reads the body to its
// end or its error.
func fetch(t *testing.T, v *visitor, method, path string, orders ...string) exchange {
	t.Helper()
	var ex exchange
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		ex.hints = append(ex.hints, http.Header(h).Clone())
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, v.site.url(path), nil)
	if v.sid != "" {
		req.Header.Set("Cookie", "sid="+v.sid)
	}
	for i := 0; i+1 < len(orders); i += 2 {
		req.Header.Add(orders[i], orders[i+1])
	}
	client := *v.site.tester.Client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	ex.res = res
	ex.body, ex.bodyErr = io.ReadAll(res.Body)
	res.Body.Close()
	return ex
}

// TestHostileResponses: session commands on responses where they must not
// be applied or must not be seen: 1xx, 101 upgrades, errors, trailers; and
// on the final responses where they apply (304, 3xx, HEAD, streamed), and
// an app that fails halfway through its answer. Each row is sent by a
// visitor logged in as alice (user, cart), or by an anonymous one; it
// states the status the client gets, and the session afterwards. No row
// may show a namespace header to the client, in headers, trailers,
// announced trailer names or 1xx responses.
func TestHostileResponses(t *testing.T) {
	s, _ := newHostileSite(t, "")
	set := func(cmds ...string) []string {
		var orders []string
		for _, c := range cmds {
			orders = append(orders, "Test-Header", c)
		}
		return orders
	}
	upgrade := strconv.Quote("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"X-Session-Set-Role: admin\r\nX-Session-Set-User: mallory\r\nX-Session-Destroy: true\r\n\r\nhello from the tunnel")
	type row struct {
		name      string
		anonymous bool
		method    string
		orders    []string
		status    int
		// added: keys the row adds to alice's session, or, for an
		// anonymous visitor, the keys of the session it is issued; nil:
		// nothing stored (and, anonymous, no cookie issued).
		added map[string]string
		// truncated: the app fails after its header, so the body ends in
		// an error.
		truncated bool
	}
	rows := []row{
		{name: "103 Early Hints carrying commands", orders: []string{
			"Test-Early-Hints", "X-Session-Set-Role: admin", "Test-Early-Hints", "X-Session-Destroy: true"}, status: 200},
		{name: "103 Early Hints carrying a login", anonymous: true, orders: []string{"Test-Early-Hints", "X-Session-Set-User: mallory"}, status: 200},
		{name: "304 Not Modified with a command (applied: a final response)", orders: append(set("X-Session-Set-Flash: hi"), "Test-Status", "304"),
			status: 304, added: map[string]string{"flash": "hi"}},
		{name: "304 Not Modified with a login", anonymous: true, orders: append(set("X-Session-Set-User: bob"), "Test-Status", "304"),
			status: 304, added: map[string]string{"user": "bob"}},
		{name: "302 redirect after a login", anonymous: true, orders: append(set("X-Session-Set-User: bob", "Location: /home"), "Test-Status", "302"),
			status: 302, added: map[string]string{"user": "bob"}},
		{name: "500 with commands (ignored)", orders: append(set("X-Session-Set-Role: admin", "X-Session-Destroy: true"), "Test-Status", "500"), status: 500},
		{name: "503 with a login (ignored)", anonymous: true, orders: append(set("X-Session-Set-User: bob"), "Test-Status", "503"), status: 503},
		{name: "502: the app closes before answering", orders: []string{"Test-Raw", `""`}, status: 502},
		{name: "HEAD with a command", method: http.MethodHead, orders: set("X-Session-Set-Flash: hi"), status: 200, added: map[string]string{"flash": "hi"}},
		{name: "HEAD with a login", anonymous: true, method: http.MethodHead, orders: set("X-Session-Set-User: bob"), status: 200, added: map[string]string{"user": "bob"}},
		{name: "streamed, with a command", orders: append(set("X-Session-Set-Flash: hi"), "Test-Flush", "1"), status: 200, added: map[string]string{"flash": "hi"}},
		{name: "streamed, with a login", anonymous: true, orders: append(set("X-Session-Set-User: bob"), "Test-Flush", "1"), status: 200, added: map[string]string{"user": "bob"}},
		{name: "commands announced as trailers (they would arrive after the commit): the batch is refused", orders: []string{
			"Test-Trailer", "X-Session-Set-Role: admin", "Test-Trailer", "X-Session-Destroy: true", "Test-Header", "X-Session-Set-Flash: hi"}, status: 200},
		{name: "a login with a command announced as a trailer: refused", anonymous: true, orders: []string{
			"Test-Trailer", "X-Session-Set-Role: admin", "Test-Header", "X-Session-Set-User: bob"}, status: 200},
		{name: "commands as unannounced trailers", orders: []string{"Test-Unannounced-Trailer", "X-Session-Set-Role: admin"}, status: 200},
		{name: "the app fails mid-body (Content-Length): the committed login stands", anonymous: true, orders: []string{"Test-Raw", strconv.Quote(
			"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nX-Session-Set-User: bob\r\n\r\n0123456789")},
			status: 200, added: map[string]string{"user": "bob"}, truncated: true},
		{name: "the app fails mid-body (chunked): the committed command stands", orders: []string{"Test-Raw", strconv.Quote(
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Session-Set-Flash: hi\r\n\r\na\r\n0123456789\r\n")},
			status: 200, added: map[string]string{"flash": "hi"}, truncated: true},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			v := s.visitor()
			if !tc.anonymous {
				v = login(t, s, "alice")
			}
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			ex := fetch(t, v, method, "/", tc.orders...)
			if ex.res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %s", ex.res.StatusCode, tc.status, ex.body)
			}
			assertNoneLeaked(t, ex.res)
			for _, h := range ex.hints {
				assertNoNamespace(t, h)
			}
			if tc.truncated != (ex.bodyErr != nil) {
				t.Fatalf("body error %v, want one: %v", ex.bodyErr, tc.truncated)
			}
			if method == http.MethodHead && len(ex.body) != 0 {
				t.Fatalf("a HEAD response has a body: %q", ex.body)
			}
			id := issued(ex.res)
			if tc.anonymous {
				if (id != "") != (tc.added != nil) {
					t.Fatalf("issued cookie %q, want one: %v", id, tc.added != nil)
				}
				if id != "" {
					if got := sessionOf(t, s, "sid="+id); !maps.Equal(got, tc.added) {
						t.Fatalf("the issued session holds %v, want %v", got, tc.added)
					}
				}
				return
			}
			if id != "" || len(ex.res.Header.Values("Set-Cookie")) != 0 {
				t.Fatalf("alice's response set cookies %q", ex.res.Header.Values("Set-Cookie"))
			}
			want := map[string]string{"user": "alice", "cart": "apple"}
			maps.Copy(want, tc.added)
			if got := sessionOf(t, s, "sid="+v.sid); !maps.Equal(got, want) {
				t.Fatalf("session afterwards = %v, want %v", got, want)
			}
		})
	}

	// 101: the app switches protocols with commands on the 101. They are
	// not applied (the final response of an upgrade carries no commands)
	// and not sent; the tunnel works.
	for _, anonymous := range []bool{false, true} {
		t.Run(fmt.Sprintf("101 Switching Protocols carrying commands (anonymous %v)", anonymous), func(t *testing.T) {
			cookie := ""
			var alice *visitor
			if !anonymous {
				alice = login(t, s, "alice")
				cookie = "Cookie: sid=" + alice.sid + "\r\n"
			}
			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: Upgrade\r\nUpgrade: websocket\r\nTest-Raw: %s\r\n\r\n", cookie, upgrade)
			br := bufio.NewReader(conn)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %d, want 101", res.StatusCode)
			}
			assertNoneLeaked(t, res)
			if c := res.Header.Values("Set-Cookie"); len(c) != 0 {
				t.Fatalf("the 101 set cookies %q", c)
			}
			rest, _ := io.ReadAll(br)
			if string(rest) != "hello from the tunnel" {
				t.Fatalf("the tunnel carried %q", rest)
			}
			if !anonymous {
				want := map[string]string{"user": "alice", "cart": "apple"}
				if got := sessionOf(t, s, "sid="+alice.sid); !maps.Equal(got, want) {
					t.Fatalf("session afterwards = %v, want %v", got, want)
				}
			}
		})
	}
}

// TestHostPrefixCookie: with a __Host- cookie name, which browsers accept
// only from a secure origin, host-only, for path /, so that a sibling
// subdomain or a plain-HTTP page cannot plant one (cookie tossing), the
// session cookie has exactly those attributes and works; a plain "sid"
// cookie planted beside it is ignored.
func TestHostPrefixCookie(t *testing.T) {
	s, _ := newHostileSite(t, "cookie __Host-sid {\n\t\t\tsecure always\n\t\t}")
	res, _ := sendCookies(t, s, "/login", nil, "X-Session-Set-User: alice")
	var issuedCookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "__Host-sid" {
			issuedCookie = c
		}
	}
	if issuedCookie == nil {
		t.Fatalf("no __Host-sid cookie issued: %q", res.Header.Values("Set-Cookie"))
	}
	raw := res.Header.Get("Set-Cookie")
	if !issuedCookie.Secure || !issuedCookie.HttpOnly || issuedCookie.Path != "/" || issuedCookie.Domain != "" ||
		strings.Contains(strings.ToLower(raw), "domain=") || issuedCookie.SameSite != http.SameSiteLaxMode {
		t.Fatalf("the __Host- cookie breaks its prefix's rules: %q", raw)
	}
	id := issuedCookie.Value
	_, saw := sendCookies(t, s, "/", []string{"sid=" + id + "; __Host-sid=" + id})
	if saw.Headers.Get("X-Session-User") != "alice" {
		t.Fatalf("the __Host- session does not open: %q", saw.Headers)
	}
	if got := saw.Headers.Get("Cookie"); got != "sid="+id {
		t.Fatalf("the app saw Cookie %q: the session cookie must go, the other one stay", got)
	}
	// A planted plain-named cookie opens nothing, even with the real ID.
	_, saw = sendCookies(t, s, "/", []string{"sid=" + id})
	if len(namespaceIn(saw.Headers)) != 0 {
		t.Fatalf("a cookie not named __Host-sid opened the session: %q", saw.Headers)
	}
}

// TestNoCachingOfResponsesThatCarryTheID: every response that sets or
// expires the session cookie tells caches not to store it, overriding an
// app that marks the page cacheable; an app's own no-store is kept as it
// is. Responses that carry no ID keep the app's Cache-Control when it is
// private; the CDN fields go from those of a session too
// (TestSharedCachesKeptOffSessionPages).
func TestNoCachingOfResponsesThatCarryTheID(t *testing.T) {
	s, _ := newHostileSite(t, "")
	rows := []struct {
		name     string
		loggedIn bool
		commands []string
		want     string // Cache-Control the client gets
		cookie   bool   // the response sets or expires the session cookie
	}{
		{"a login the app marks public", false, []string{"X-Session-Set-User: alice", "Cache-Control: public, max-age=600"}, "no-store", true},
		{"a login the app marks private", false, []string{"X-Session-Set-User: alice", "Cache-Control: private, max-age=600"}, "no-store", true},
		{"a login with the app's own no-store", false, []string{"X-Session-Set-User: alice", "Cache-Control: private, no-store"}, "private, no-store", true},
		{"a renewal", true, []string{"X-Session-Renew: true", "Cache-Control: max-age=600"}, "no-store", true},
		{"a change of user", true, []string{"X-Session-Set-User: bob", "Cache-Control: public, max-age=60"}, "no-store", true},
		{"a logout", true, []string{"X-Session-Destroy: true", "Cache-Control: public, max-age=600"}, "no-store", true},
		{"a read of the session (no ID in the response)", true, []string{"Cache-Control: private, max-age=60"}, "private, max-age=60", false},
		{"a write that keeps the ID (no ID in the response)", true, []string{"X-Session-Set-Cart: pear", "Cache-Control: private, max-age=60"}, "private, max-age=60", false},
		{"a login with the app's own No-Store, in capitals", false, []string{"X-Session-Set-User: alice", "Cache-Control: private, No-Store"}, "private, No-Store", true},
		{"a login with a directive that contains no-store", false, []string{"X-Session-Set-User: alice", "Cache-Control: x-no-store-ish, max-age=60"}, "no-store", true},
		{"a login with a longer directive", false, []string{"X-Session-Set-User: alice", "Cache-Control: no-storex"}, "no-store", true},
		{"a login with no-store in a quoted argument", false, []string{"X-Session-Set-User: alice", `Cache-Control: private="x, no-store", max-age=60`}, "no-store", true},
	}
	// CDNs obey these in place of Cache-Control: a response that carries
	// the ID, or that forwarded a session to the app, loses them.
	cdn := []string{"CDN-Cache-Control", "Surrogate-Control", "Cloudflare-CDN-Cache-Control", "X-Accel-Expires"}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			v := s.visitor()
			if tc.loggedIn {
				v = login(t, s, "alice")
			}
			commands := slices.Clone(tc.commands)
			for _, name := range cdn {
				commands = append(commands, name+": max-age=600")
			}
			r := v.get("/", commands...)
			expectStatus(t, r, http.StatusOK)
			if got := strings.Join(r.Header.Values("Cache-Control"), ", "); got != tc.want {
				t.Fatalf("Cache-Control %q, want %q", got, tc.want)
			}
			if got := len(r.Header.Values("Set-Cookie")) != 0; got != tc.cookie {
				t.Fatalf("Set-Cookie %q, want one: %v", r.Header.Values("Set-Cookie"), tc.cookie)
			}
			for _, name := range cdn {
				if kept, want := r.Header.Get(name) != "", !tc.cookie && !tc.loggedIn; kept != want {
					t.Errorf("%s: %q, want it kept: %v", name, r.Header.Get(name), want)
				}
			}
		})
	}
}

// TestSecurityDocPointsToTests keeps SECURITY.md honest: every test it
// cites as proof (`path/file.go:TestName`) exists under that name.
func TestSecurityDocPointsToTests(t *testing.T) {
	doc := readExample(t, "SECURITY.md")
	refs := regexp.MustCompile("`([a-z_/]+\\.go):((?:Test|Fuzz)[A-Za-z0-9]+)`").FindAllStringSubmatch(doc, -1)
	if len(refs) < 30 {
		t.Fatalf("SECURITY.md cites %d tests; it should map every requirement to one", len(refs))
	}
	for _, ref := range refs {
		src, err := os.ReadFile(filepath.Join("..", ref[1]))
		if err != nil {
			t.Errorf("SECURITY.md cites %s:%s: %v", ref[1], ref[2], err)
			continue
		}
		if !regexp.MustCompile(`(?m)^func ` + ref[2] + `\(`).Match(src) {
			t.Errorf("SECURITY.md cites %s:%s, which does not exist", ref[1], ref[2])
		}
	}
}
