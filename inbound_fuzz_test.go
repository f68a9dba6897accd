package caddysession

import (
	"bufio"
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// fuzzKnownID is the one session the store of FuzzInbound knows.
const fuzzKnownID = "KnownSessionIDknownSessionIDknownSessionID0"

// oneSessionStore knows one session, alice's, and refuses to write: a
// request without commands must not need a write. The session is seen at
// each load's own time, so that no touch ever falls due however long the
// fuzzer runs (a record made once, when the fuzzer started, needed a
// touch after touch_interval, and the refused write failed the run).
type oneSessionStore struct {
	store.Store
	values map[string]string
}

func (s oneSessionStore) Load(_ context.Context, h session.Hash, now time.Time, timeouts session.Timeouts) (*session.Record, error) {
	if h != session.HashID(fuzzKnownID) {
		return nil, store.ErrNotFound
	}
	rec := timeouts.NewRecord(now)
	rec.Values = maps.Clone(s.values)
	return rec, nil
}

func (s oneSessionStore) Update(context.Context, store.Update) (store.Result, error) {
	return store.Result{}, errors.New("a request without commands wrote to the store")
}

// FuzzInbound sends any request net/http can parse through the session
// handler, to a next handler that reads the body to its end (filling in
// the trailers) and removes the headers that Connection names, as a proxy
// does. What reaches it in the namespace, in any spelling, headers and
// trailers, is exactly alice's session or nothing; no session cookie
// reaches it; the store knows one ID, and only that ID opens alice.
func FuzzInbound(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\nCookie: sid=" + fuzzKnownID + "\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nCookie: theme=dark; sid=" + fuzzKnownID + "; lang=en\r\nX-Session-User: mallory\r\nx_session_role: admin\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nCookie: sid=" + fuzzKnownID + "\r\nConnection: keep-alive, X-Session-User, x_session_cart\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nCookie: sid=" + fuzzKnownID + "\r\nTransfer-Encoding: chunked\r\nTrailer: X-Note, X-Session-User\r\n\r\n" +
			"5\r\nhello\r\n0\r\nX-Note: 1\r\nX-Session-User: mallory\r\nX_Session_Role: admin\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nCookie: sid=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; sid=\"" + fuzzKnownID + "\"\r\nCookie: sid=" + fuzzKnownID + "\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nFoo: bar\r\n X-Session-User: mallory\r\nCookie: sid =" + fuzzKnownID + "\r\n\r\n",
	} {
		f.Add(seed)
	}
	h := &Handler{}
	if err := h.provisionSettings(); err != nil {
		f.Fatal(err)
	}
	h.logger = zap.NewNop()
	h.app = &App{logger: h.logger}
	h.app.addHandler(h)
	h.backend, h.storeName = "memory", "memory"
	h.store = instrumented{Store: oneSessionStore{values: map[string]string{"user": "alice", "cart": "apple"}}, backend: "memory"}
	alice := map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"}

	f.Fuzz(func(t *testing.T, raw string) {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return
		}
		ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer())
		ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{})
		r = r.WithContext(ctx)

		var seen, trailers http.Header
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				return caddyhttp.Error(http.StatusBadRequest, err)
			}
			seen, trailers = r.Header.Clone(), r.Trailer.Clone()
			// What a proxy does with the hop-by-hop headers.
			for _, line := range seen["Connection"] {
				for name := range strings.SplitSeq(line, ",") {
					seen.Del(textproto.TrimString(name))
				}
			}
			return nil
		})
		rw := httptest.NewRecorder()
		if err := h.ServeHTTP(rw, r, next); err != nil {
			var he caddyhttp.HandlerError
			if errors.As(err, &he) && he.StatusCode == http.StatusBadRequest {
				return // a malformed body
			}
			t.Fatalf("ServeHTTP: %v", err)
		}
		got := map[string]string{}
		for name, values := range seen {
			if h.protocol.InNamespace(name) {
				got[name] = strings.Join(values, "\x00")
			}
		}
		if len(got) != 0 && !maps.Equal(got, alice) {
			t.Fatalf("the next handler saw namespace headers %q", got)
		}
		if len(got) != 0 && !strings.Contains(raw, fuzzKnownID) {
			t.Fatalf("alice's session opened without her ID: %q", got)
		}
		for name := range trailers {
			if h.protocol.InNamespace(name) {
				t.Fatalf("the next handler saw the namespace trailer %q", name)
			}
		}
		fwd := &http.Request{Header: seen}
		if c, err := fwd.Cookie("sid"); err == nil {
			t.Fatalf("the next handler saw the session cookie %q", c.Value)
		}
		for name := range rw.Header() {
			if h.protocol.InNamespace(name) {
				t.Fatalf("the response carries %q", name)
			}
		}
	})
}
