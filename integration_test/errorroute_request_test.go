package integration_test

// Caddy orders request_body before session, and its max_size answers a
// request whose Content-Length is over the limit with a 413 at once,
// before the session handler runs. The site's error routes then get the
// request as the client sent it. The session_errors guard removed the
// namespace from their response only, so an error route that proxies to
// the app (the README's case for the guard) sent the app the client's
// X-Session-User and the raw session ID in its Cookie header. (The error
// route here replaces the body, which its proxy could not send in full:
// without that, the app gets the headers and the proxy fails on the body,
// and whether the app has run by then is a race.)

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// errorApp is the app the error routes proxy to: it records the headers
// of each request it gets.
type errorApp struct {
	mu  sync.Mutex
	saw []http.Header
}

func (a *errorApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.saw = append(a.saw, r.Header.Clone())
	a.mu.Unlock()
	w.Header().Set("X-Session-Set-Role", "admin") // ignored on an error route, and removed
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(r.Header)
}

func (a *errorApp) last(t *testing.T) http.Header {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.saw) == 0 {
		t.Fatal("the error route did not reach the app")
	}
	return a.saw[len(a.saw)-1]
}

func TestErrorsBeforeTheSessionHandler(t *testing.T) {
	errApp := new(errorApp)
	srv := httptest.NewServer(errApp)
	t.Cleanup(srv.Close)
	eachStore(t, func(t *testing.T, store string) {
		s, _ := newSiteFrom(t, store, `http://127.0.0.1:$PORT {
	request_body {
		max_size 10
	}
	session {
		$STORE
	}
	error /boom 500
	reverse_proxy $APP
	handle_errors {
		request_body {
			set "error"
		}
		reverse_proxy `+srv.Listener.Addr().String()+`
	}
}
`)
		alice := login(t, s, "alice")
		alice.cookies = "theme=dark"
		big := strings.Repeat("x", 100)
		forged := []string{"X-Session-User", "admin", "x-session-meta-remembered", "true", "X-SESSION-ROLE", "root"}
		rows := []struct {
			name, method, path, body string
			status                   int // the error route's answer
			// want is what the app behind the error route must see of
			// the session: nothing before the handler ran, the
			// session's own keys after.
			want map[string]string
		}{
			{name: "413 of request_body max_size, before the session handler", method: http.MethodPost, path: "/upload", body: big, status: http.StatusOK},
			{name: "413 of request_body max_size, a GET with a body", method: http.MethodGet, path: "/", body: big, status: http.StatusOK},
			{name: "an error after the session handler", method: http.MethodGet, path: "/boom", status: http.StatusOK,
				want: map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"}},
		}
		for _, tc := range rows {
			t.Run(tc.name, func(t *testing.T) {
				errApp.mu.Lock()
				errApp.saw = nil
				errApp.mu.Unlock()
				var body *strings.Reader
				if tc.body != "" {
					body = strings.NewReader(tc.body)
				}
				var r *response
				if body != nil {
					r = alice.doBody(tc.method, tc.path, body, forged...)
				} else {
					r = alice.do(tc.method, tc.path, forged...)
				}
				if r.StatusCode != tc.status {
					t.Fatalf("status %d, want %d (the error route's answer): %s", r.StatusCode, tc.status, r.body)
				}
				saw := errApp.last(t)
				got := map[string]string{}
				for name, values := range saw {
					if len(namespaceIn(http.Header{name: nil})) > 0 {
						got[name] = strings.Join(values, ",")
					}
				}
				if len(got) != len(tc.want) {
					t.Errorf("the app behind the error route got the namespace %v, want %v", got, tc.want)
				}
				for k, v := range tc.want {
					if got[k] != v {
						t.Errorf("the app behind the error route got the namespace %v, want %v", got, tc.want)
					}
				}
				cookie := strings.Join(saw.Values("Cookie"), "; ")
				if strings.Contains(cookie, alice.sid) || strings.Contains(cookie, "sid=") {
					t.Errorf("the app behind the error route got the raw session ID: Cookie %q", cookie)
				}
				if !strings.Contains(cookie, "theme=dark") {
					t.Errorf("the app behind the error route lost the other cookies: Cookie %q", cookie)
				}
			})
		}
		if got := sessionOf(t, s, "sid="+alice.sid); len(got) != 2 || got["user"] != "alice" || got["role"] != "" {
			t.Fatalf("session afterwards = %v, want alice's, the error app's command ignored", got)
		}
	})
}
