package integration_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The protocol audit's second round: a client that sends, on one
// connection or in one request, what a browser never does. Each test
// checks that every request is judged by its own cookie only, that what
// the client sent in the namespace never reaches the app, and that
// commands apply on final responses only.

// rawRequests sends raw, several HTTP/1.1 requests written back to back
// before any answer (pipelined), on one connection to s, and reads n
// responses in order.
func rawRequests(t *testing.T, s *site, raw string, n int) []*response {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	out := make([]*response, 0, n)
	for i := range n {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading response %d of %d: %v", i+1, n, err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatalf("reading body %d of %d: %v", i+1, n, err)
		}
		r := &response{Response: res, body: body}
		if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			_ = json.Unmarshal(body, &r.seen)
		}
		assertNoNamespace(t, res.Header)
		out = append(out, r)
	}
	return out
}

// cookieOf is the value of the sid cookie r sets: "" for none, "-" for
// one that expires it.
func cookieOf(r *response) string {
	for _, c := range r.Cookies() {
		if c.Name == "sid" {
			if c.MaxAge < 0 {
				return "-"
			}
			return c.Value
		}
	}
	return ""
}

// TestPipelinedRequestsOfDifferentSessions: requests of several sessions
// written back to back on one HTTP/1.1 connection, before the first is
// answered: a login on another user's session, a logout, an anonymous
// request with a forged header, and the rotated-away and logged-out IDs
// again. Each is judged by its own cookie as the store holds it when it
// is served (in order), and nothing of one (its session, its cookie, its
// commands) reaches the next.
func TestPipelinedRequestsOfDifferentSessions(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s := newSite(t, "")
		alice, bob := s.visitor(), s.visitor()
		alice.get("/", "X-Session-Set-User: alice")
		bob.get("/", "X-Session-Set-User: bob", "X-Session-Set-Cart: pear")
		if alice.sid == "" || bob.sid == "" {
			t.Fatal("the logins gave no cookie")
		}
		req := func(path, cookie string, headers ...string) string {
			var b strings.Builder
			fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n", path, s.port)
			if cookie != "" {
				fmt.Fprintf(&b, "Cookie: sid=%s\r\n", cookie)
			}
			for _, h := range headers {
				b.WriteString(h + "\r\n")
			}
			b.WriteString("\r\n")
			return b.String()
		}
		rows := []struct {
			name    string
			raw     string
			saw     map[string]string // the namespace the app saw
			cookie  string            // "new", "-" (expired) or "" (none)
			opensAs map[string]string // what a new cookie opens
		}{
			{"a login as another user on alice's session", req("/1", alice.sid, "Test-Header: X-Session-Set-User: mallory"),
				map[string]string{"X-Session-User": "alice"}, "new", map[string]string{"X-Session-User": "mallory"}},
			{"bob's logout", req("/2", bob.sid, "Test-Header: X-Session-Destroy: true"),
				map[string]string{"X-Session-User": "bob", "X-Session-Cart": "pear"}, "-", nil},
			{"an anonymous request with a forged user", req("/3", "", "X-Session-User: admin", "X_Session_Cart: plum"),
				map[string]string{}, "", nil},
			{"alice's ID, rotated away by the first", req("/4", alice.sid),
				map[string]string{}, "", nil},
			{"bob's ID, logged out by the second", req("/5", bob.sid, "Test-Header: X-Session-Set-Cart: fig"),
				map[string]string{}, "new", map[string]string{"X-Session-Cart": "fig"}},
		}
		var raw strings.Builder
		for _, row := range rows {
			raw.WriteString(row.raw)
		}
		got := rawRequests(t, s, raw.String(), len(rows))
		for i, row := range rows {
			r := got[i]
			if r.StatusCode != http.StatusOK {
				t.Fatalf("%s: status %d, want 200; body: %s", row.name, r.StatusCode, r.body)
			}
			if want := fmt.Sprintf("/%d", i+1); r.seen.URI != want {
				t.Fatalf("%s: the app answered %q, want %q: the responses are out of order", row.name, r.seen.URI, want)
			}
			if saw := r.session(); !maps.Equal(saw, row.saw) {
				t.Errorf("%s: the app saw %v, want %v", row.name, saw, row.saw)
			}
			c := cookieOf(r)
			switch {
			case row.cookie == "new" && (c == "" || c == "-" || c == alice.sid || c == bob.sid):
				t.Errorf("%s: cookie %q, want a new ID", row.name, c)
			case row.cookie != "new" && c != row.cookie:
				t.Errorf("%s: cookie %q, want %q", row.name, c, row.cookie)
			case row.opensAs != nil:
				v := &visitor{site: s, sid: c}
				if opens := v.get("/").session(); !maps.Equal(opens, row.opensAs) {
					t.Errorf("%s: the new cookie opens %v, want %v", row.name, opens, row.opensAs)
				}
			}
		}
	})
}

// TestRequestTargetsOfOtherForms: HTTP/1.1 request targets no browser
// sends to a site: absolute-form with another Host header (Go takes the
// URL's host, as Caddy's routes do), OPTIONS * (answered by Go before
// any handler), and authority-form CONNECT (a 2xx to CONNECT opens a
// tunnel, on which no command applies, README). The app sees the
// visitor's own session and nothing the client forged, and the session
// changes only where the README says it does.
func TestRequestTargetsOfOtherForms(t *testing.T) {
	s := newSite(t, "")
	alice := s.visitor()
	alice.get("/", "X-Session-Set-User: alice")
	host := fmt.Sprintf("127.0.0.1:%d", s.port)
	forged := "X-Session-User: admin\r\nX-Session-Role: admin\r\n"
	rows := []struct {
		name   string
		raw    string
		app    bool              // the request reaches the app
		saw    map[string]string // what the app saw, if it was reached
		cart   string            // alice's cart afterwards
		cookie string            // the sid cookie of the answer
	}{
		{"absolute-form, another Host header",
			"GET http://" + host + "/abs HTTP/1.1\r\nHost: other.example\r\nCookie: sid=" + alice.sid + "\r\n" + forged +
				"Test-Header: X-Session-Set-Cart: kiwi\r\n\r\n",
			true, map[string]string{"X-Session-User": "alice"}, "kiwi", ""},
		{"absolute-form of another host, the site's Host header",
			"GET http://other.example/abs HTTP/1.1\r\nHost: " + host + "\r\nCookie: sid=" + alice.sid + "\r\n" + forged +
				"Test-Header: X-Session-Set-Cart: lime\r\n\r\n",
			false, nil, "kiwi", ""},
		{"OPTIONS *",
			"OPTIONS * HTTP/1.1\r\nHost: " + host + "\r\nCookie: sid=" + alice.sid + "\r\n" + forged +
				"Test-Header: X-Session-Set-Cart: fig\r\n\r\n",
			false, nil, "kiwi", ""},
		{"CONNECT in authority-form",
			"CONNECT " + host + " HTTP/1.1\r\nHost: " + host + "\r\nCookie: sid=" + alice.sid + "\r\n" + forged +
				"Test-Header: X-Session-Set-Cart: plum\r\nTest-Header: X-Session-Set-User: mallory\r\n\r\n",
			true, map[string]string{"X-Session-User": "alice", "X-Session-Cart": "kiwi"}, "kiwi", ""},
		{"CONNECT to a path",
			"CONNECT /path HTTP/1.1\r\nHost: " + host + "\r\nCookie: sid=" + alice.sid + "\r\n" + forged +
				"Test-Header: X-Session-Destroy: true\r\n\r\n",
			true, map[string]string{"X-Session-User": "alice", "X-Session-Cart": "kiwi"}, "kiwi", ""},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			r := rawRequests(t, s, row.raw, 1)[0]
			if reached := r.seen.Headers != nil; reached != row.app {
				t.Fatalf("the request reached the app: %v, want %v (status %d, body %q)", reached, row.app, r.StatusCode, r.body)
			}
			if row.app {
				if saw := r.session(); !maps.Equal(saw, row.saw) {
					t.Errorf("the app saw %v, want %v", saw, row.saw)
				}
			}
			if c := cookieOf(r); c != row.cookie {
				t.Errorf("the answer set the cookie %q, want %q", c, row.cookie)
			}
			want := map[string]string{"X-Session-User": "alice", "X-Session-Cart": row.cart}
			if got := alice.get("/").session(); !maps.Equal(got, want) {
				t.Errorf("afterwards alice's session holds %v, want %v", got, want)
			}
		})
	}
}

// continueApp answers /continue with a 100 carrying commands, then reads
// the body and answers with a command of its own; /early answers without
// reading a body the client never sends.
type continueApp struct{}

func (continueApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/continue":
		w.Header().Set("X-Session-Set-User", "admin")
		w.Header().Set("X-Session-Destroy", "true")
		w.WriteHeader(http.StatusContinue)
		w.Header().Del("X-Session-Set-User")
		w.Header().Del("X-Session-Destroy")
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Session-Set-Cart", string(body))
	case "/early":
		w.Header().Set("X-Session-Set-Cart", "early")
	default:
		for _, order := range r.Header.Values("Test-Header") {
			name, value, _ := strings.Cut(order, ":")
			w.Header().Add(name, strings.TrimSpace(value))
		}
	}
	body, _ := json.Marshal(map[string]any{"uri": r.RequestURI, "headers": r.Header})
	w.Write(body)
}

// TestExpectContinue: a client that sends Expect: 100-continue. The app's
// own 100, with commands on it, applies nothing and sends none of them;
// the final answer's commands apply. An app that answers before the body
// comes (which never does) has its answer applied as any other.
func TestExpectContinue(t *testing.T) {
	s := newHTTPSSiteFor(t, continueApp{}, "", "", "")
	client := h1Client(t)
	login := httpsDo(t, client, "GET", s.httpsURL("/"), nil, "Test-Header", "X-Session-Set-User: alice")
	sid := cookieOf(login)
	if sid == "" || sid == "-" {
		t.Fatal("the login gave no cookie")
	}
	rows := []struct {
		name, raw, cart string
	}{
		{"the app's 100 carries a login and a logout", "POST /continue HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sid=" + sid +
			"\r\nExpect: 100-continue\r\nContent-Length: 4\r\nConnection: close\r\n\r\npear", "pear"},
		{"the body never comes", "POST /early HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: sid=" + sid +
			"\r\nExpect: 100-continue\r\nContent-Length: 4\r\nConnection: close\r\n\r\n", "early"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(conn, row.raw); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			for {
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("reading the answers: %v", err)
				}
				res.Body.Close()
				assertNoNamespace(t, res.Header)
				if c := res.Header.Values("Set-Cookie"); len(c) > 0 {
					t.Errorf("the %d answer set cookies %q, want none (no login, no logout)", res.StatusCode, c)
				}
				if res.StatusCode >= http.StatusOK {
					if res.StatusCode != http.StatusOK {
						t.Fatalf("status %d, want 200", res.StatusCode)
					}
					break
				}
			}
			want := map[string]string{"X-Session-User": "alice", "X-Session-Cart": row.cart}
			r := httpsDo(t, client, "GET", s.httpsURL("/"), []string{"sid=" + sid})
			if got := r.session(); !maps.Equal(got, want) {
				t.Errorf("afterwards the session holds %v, want %v", got, want)
			}
		})
	}
}

// h2Request sends one request on a new HTTP/2 connection to s as raw
// header fields, in order (so a field may repeat, as cookie crumbs do),
// and returns the status ("" if the stream was refused), the header and
// the body.
func h2Request(t *testing.T, s *site, fields [][2]string) (string, http.Header, []byte) {
	t.Helper()
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range fields {
		if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	dec := hpack.NewDecoder(4096, nil)
	var status string
	header := http.Header{}
	var body []byte
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					t.Fatal(err)
				}
			}
		case *http2.HeadersFrame:
			hf, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hf {
				if strings.HasPrefix(strings.ReplaceAll(h.Name, "_", "-"), "x-session-") {
					t.Errorf("namespace field %q reached the client", h.Name)
				}
				if h.Name == ":status" {
					status = h.Value
				} else {
					header.Add(h.Name, h.Value)
				}
			}
			if f.StreamEnded() {
				return status, header, body
			}
		case *http2.DataFrame:
			body = append(body, f.Data()...)
			if f.StreamEnded() {
				return status, header, body
			}
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			return "", nil, nil
		}
	}
}

// TestHTTP2FieldsNoBrowserSends: HTTP/2 requests whose fields a browser
// never sends: the session cookie among others in separate cookie fields
// beside a forged namespace field, a Host field that differs from
// :authority or an absolute :path (refused by Go before any handler), and
// :scheme http on a TLS connection. The app gets the visitor's session,
// the other cookies joined as Go joins them, never the session cookie,
// and the cookie a login issues is Secure as on any TLS answer.
func TestHTTP2FieldsNoBrowserSends(t *testing.T) {
	s := newHTTPSSite(t, "")
	client := h1Client(t)
	login := httpsDo(t, client, "GET", s.httpsURL("/"), nil, "Test-Header", "X-Session-Set-User: alice")
	sid := cookieOf(login)
	if sid == "" || sid == "-" {
		t.Fatal("the login gave no cookie")
	}
	authority := fmt.Sprintf("127.0.0.1:%d", s.port)
	base := func(scheme, path string) [][2]string {
		return [][2]string{{":method", "GET"}, {":scheme", scheme}, {":authority", authority}, {":path", path}}
	}
	rows := []struct {
		name      string
		fields    [][2]string
		refused   bool
		saw       map[string]string // the namespace the app saw
		cookie    string            // the Cookie field the app saw
		setCookie bool              // the answer sets a Secure session cookie
	}{
		{"cookie crumbs and a forged user", append(base("https", "/crumbs"),
			[2]string{"cookie", "a=1"}, [2]string{"cookie", "sid=" + sid}, [2]string{"cookie", "b=2"},
			[2]string{"x-session-user", "admin"}, [2]string{"x-session_role", "admin"}),
			false, map[string]string{"X-Session-User": "alice"}, "a=1; b=2", false},
		{"a forged session cookie crumb before the real one", append(base("https", "/crumbs"),
			[2]string{"cookie", "sid=" + strings.Repeat("A", len(sid))}, [2]string{"cookie", "sid=" + sid}),
			false, map[string]string{"X-Session-User": "alice"}, "", false},
		{"a Host field that differs from :authority", append(base("https", "/host"),
			[2]string{"host", "other.example"}, [2]string{"cookie", "sid=" + sid}),
			true, nil, "", false},
		{"an absolute :path of another host", append(base("https", "http://other.example/abs"),
			[2]string{"cookie", "sid=" + sid}),
			true, nil, "", false},
		{":scheme http on TLS, a login", append(base("http", "/login"),
			[2]string{"test-header", "X-Session-Set-User: bob"}),
			false, map[string]string{}, "", true},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			status, header, body := h2Request(t, s, row.fields)
			if row.refused {
				if status != "" {
					t.Fatalf("status %s, want the stream refused; body: %s", status, body)
				}
				return
			}
			if status != "200" {
				t.Fatalf("status %q, want 200; body: %s", status, body)
			}
			var saw appSaw
			if err := json.Unmarshal(body, &saw); err != nil {
				t.Fatalf("the app's answer %q: %v", body, err)
			}
			r := &response{seen: seen{Headers: saw.Headers}}
			if got := r.session(); !maps.Equal(got, row.saw) {
				t.Errorf("the app saw %v, want %v", got, row.saw)
			}
			if got := strings.Join(saw.Headers.Values("Cookie"), "|"); got != row.cookie {
				t.Errorf("the app saw the Cookie %q, want %q", got, row.cookie)
			}
			cookies := (&http.Response{Header: header}).Cookies()
			switch {
			case !row.setCookie && len(cookies) > 0:
				t.Errorf("the answer set cookies %v, want none", header.Values("Set-Cookie"))
			case row.setCookie && (len(cookies) != 1 || cookies[0].Name != "sid" || !cookies[0].Secure):
				t.Errorf("the answer set cookies %v, want one Secure session cookie", header.Values("Set-Cookie"))
			}
		})
	}
}
