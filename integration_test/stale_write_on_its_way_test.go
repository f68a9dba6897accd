package integration_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"

	caddysession "github.com/caddy-session/caddy-session"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// holdBeforeWriteStore is a real store (its inner module) whose next end
// or write the test holds before it reaches the store: an Update, a
// Delete or a DeleteByIdentity on its way, as a slow store makes of any
// write. In a Caddyfile:
//
//	store hold_before_write faulty <path>
type holdBeforeWriteStore struct{ innerStore }

// heldWrite is the write to hold: the first one after it is armed, once.
type heldWrite struct {
	arrived chan struct{} // closed when the write is held, before the store has it
	release chan struct{} // closed by the test to let it go on
}

var heldWrites atomic.Pointer[heldWrite]

// holdNextWrite arms a hold of the next write of any session.
func holdNextWrite(t *testing.T) *heldWrite {
	t.Helper()
	h := &heldWrite{arrived: make(chan struct{}), release: make(chan struct{})}
	if !heldWrites.CompareAndSwap(nil, h) {
		t.Fatal("a hold of a write is armed already: disarm it first")
	}
	t.Cleanup(func() {
		heldWrites.CompareAndSwap(h, nil)
		h.let()
	})
	return h
}

// wait waits for the held write to arrive.
func (h *heldWrite) wait(t *testing.T) {
	t.Helper()
	select {
	case <-h.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the held write never came: nothing wrote to the store")
	}
}

// let lets the held write go on, if it has not yet.
func (h *heldWrite) let() {
	select {
	case <-h.release:
	default:
		close(h.release)
	}
}

// hold holds the calling write if a hold is armed.
func holdWrite() {
	if h := heldWrites.Load(); h != nil && heldWrites.CompareAndSwap(h, nil) {
		close(h.arrived)
		<-h.release
	}
}

func init() {
	caddy.RegisterModule(holdBeforeWriteStore{})
}

func (holdBeforeWriteStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.session.stores.hold_before_write",
		New: func() caddy.Module { return new(holdBeforeWriteStore) },
	}
}

func (s *holdBeforeWriteStore) SessionStore() store.Store {
	return heldWriteWrapper{s.inner.SessionStore()}
}

type heldWriteWrapper struct{ store.Store }

func (w heldWriteWrapper) Update(ctx context.Context, u store.Update) (store.Result, error) {
	holdWrite()
	return w.Store.Update(ctx, u)
}

func (w heldWriteWrapper) Delete(ctx context.Context, hash session.Hash) error {
	holdWrite()
	return w.Store.Delete(ctx, hash)
}

func (w heldWriteWrapper) DeleteByIdentity(ctx context.Context, realm, key, value string) (int, error) {
	holdWrite()
	return w.Store.DeleteByIdentity(ctx, realm, key, value)
}

var (
	_ caddysession.StoreProvider = (*holdBeforeWriteStore)(nil)
	_ caddyfile.Unmarshaler      = (*holdBeforeWriteStore)(nil)
	_ caddy.Provisioner          = (*holdBeforeWriteStore)(nil)
)

// TestEndOnItsWayAcrossAReloadReachesTheStaleCopy: a request of a config
// without on_store_error stale ends a session, and its write to the
// store is on its way (a slow store) while a reload turns the policy on
// and the new config reads the session (the user's other tab), which
// puts it in the copy. The write then lands. README: "A session this
// Caddy saw end ... is never served from it, even to a request that read
// it before it ended." The handler without the policy looked for a copy
// to tell before its write, found none, and told none once its write
// had landed: once the store failed, the new config served the ended
// session from the copy to its old cookie (for a logout everywhere, the
// user's other device's).
func TestEndOnItsWayAcrossAReloadReachesTheStaleCopy(t *testing.T) {
	for _, tc := range staleEnds {
		t.Run(tc.name, func(t *testing.T) { endOnItsWayAcrossStaleReload(t, tc.command) })
	}
}

func endOnItsWayAcrossStaleReload(t *testing.T, command string) {
	t.Cleanup(func() { failReads.Store(false) })
	srv := httptest.NewServer(http.HandlerFunc(serveUpstream))
	t.Cleanup(srv.Close)
	db := filepath.Join(t.TempDir(), "sessions.db")
	port := freePort(t)
	config := func(options string) string {
		return fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	session {
		store hold_before_write faulty %s
		%s
	}
	reverse_proxy %s
}
`, adminPort, port, db, options, srv.Listener.Addr())
	}
	s := &site{t: t, tester: caddytest.NewTester(t), port: port}
	s.tester.Client.Jar = nil
	s.reload(config("# no on_store_error"))
	alice := s.visitor()
	expectStatus(t, alice.get("/login", "X-Session-Set-User: alice"), http.StatusOK)
	// Her other device: what a logout everywhere ends beside the ID it
	// presents.
	other := s.visitor()
	expectStatus(t, other.get("/login", "X-Session-Set-User: alice"), http.StatusOK)
	ended := []string{alice.sid}
	if command == "X-Session-Destroy-All: true" {
		ended = append(ended, other.sid)
	}

	held := holdNextWrite(t)
	type result struct {
		res *http.Response
		err error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, s.url("/end"), nil)
		req.Header.Set("Cookie", "sid="+alice.sid)
		req.Header.Set("Test-Header", command)
		res, err := s.tester.Client.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		done <- result{res, err}
	}()
	held.wait(t)
	s.reload(config("on_store_error stale 5m"))
	// The user's other tabs, under the new config, read the sessions
	// before the end lands: their reads are kept.
	for _, id := range ended {
		expectSession(t, (&visitor{site: s, sid: id}).get("/"), map[string]string{"X-Session-User": "alice"})
	}
	held.let()
	got := <-done
	if got.err != nil {
		t.Fatalf("the request whose end was on its way across the reload: %v", got.err)
	}
	if got.res.StatusCode != http.StatusOK {
		t.Fatalf("the request whose end was on its way across the reload: status %d, want 200", got.res.StatusCode)
	}
	// No request of the new config presents an ended ID before the
	// outage: a load that found it gone would tombstone it.
	failReads.Store(true)
	for i, id := range ended {
		r := (&visitor{site: s, sid: id}).get("/")
		if r.StatusCode != http.StatusServiceUnavailable || len(r.session()) != 0 {
			t.Fatalf("while the store is down, ended ID #%d (%s, landed after the reload) is served from the copy: status %d, session %v",
				i, command, r.StatusCode, r.session())
		}
	}
}
