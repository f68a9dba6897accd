package integration_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	caddysession "github.com/caddy-session/caddy-session"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// holdAfterReadStore is a real store (bolt or Redis, its inner module)
// whose next read of one session the test holds after the store has
// answered it and before the answer reaches the handler or matcher that
// asked: a read in flight while another request ends the session, which
// a slow store makes of any read. In a Caddyfile:
//
//	store hold_after_read bolt <path>
//	store hold_after_read redis <url>
type holdAfterReadStore struct{ innerStore }

// heldRead is the read to hold: the first Load of its hash, once.
type heldRead struct {
	hash    session.Hash
	arrived chan struct{} // closed when the read has been answered and is held
	release chan struct{} // closed by the test to let it go on
}

var heldReads atomic.Pointer[heldRead]

// holdNextRead arms a hold of the next read of the session of id.
func holdNextRead(t *testing.T, id string) *heldRead {
	t.Helper()
	h := &heldRead{hash: session.HashID(id), arrived: make(chan struct{}), release: make(chan struct{})}
	if !heldReads.CompareAndSwap(nil, h) {
		t.Fatal("a hold of a read is armed already: disarm it first")
	}
	t.Cleanup(func() {
		heldReads.CompareAndSwap(h, nil)
		select {
		case <-h.release:
		default:
			close(h.release)
		}
	})
	return h
}

// wait waits for the held read to arrive.
func (h *heldRead) wait(t *testing.T) {
	t.Helper()
	select {
	case <-h.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the held read never came: nothing read the session")
	}
}

func init() {
	caddy.RegisterModule(holdAfterReadStore{})
}

func (holdAfterReadStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.session.stores.hold_after_read",
		New: func() caddy.Module { return new(holdAfterReadStore) },
	}
}

func (s *holdAfterReadStore) SessionStore() store.Store {
	return heldReadWrapper{s.inner.SessionStore()}
}

type heldReadWrapper struct{ store.Store }

func (w heldReadWrapper) Load(ctx context.Context, hash session.Hash, now time.Time, t session.Timeouts) (*session.Record, error) {
	rec, err := w.Store.Load(ctx, hash, now, t)
	if h := heldReads.Load(); h != nil && h.hash == hash && heldReads.CompareAndSwap(h, nil) {
		close(h.arrived)
		<-h.release
	}
	return rec, err
}

var (
	_ caddysession.StoreProvider = (*holdAfterReadStore)(nil)
	_ caddyfile.Unmarshaler      = (*holdAfterReadStore)(nil)
	_ caddy.Provisioner          = (*holdAfterReadStore)(nil)
)
