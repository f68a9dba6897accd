package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
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
type holdAfterReadStore struct {
	InnerRaw json.RawMessage `json:"inner,omitempty" caddy:"namespace=http.handlers.session.stores inline_key=backend"`
	inner    caddysession.StoreProvider
}

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

func (s *holdAfterReadStore) Provision(ctx caddy.Context) error {
	mod, err := ctx.LoadModule(s, "InnerRaw")
	if err != nil {
		return fmt.Errorf("loading the inner store of hold_after_read: %v", err)
	}
	s.inner = mod.(caddysession.StoreProvider)
	return nil
}

func (s *holdAfterReadStore) SessionStore() store.Store {
	return heldReadWrapper{s.inner.SessionStore()}
}

// StoreName is the inner store's: the wrapper holds the same data.
func (s *holdAfterReadStore) StoreName() string { return s.inner.StoreName() }

// UnmarshalCaddyfile reads `hold_after_read <backend> <args...>`.
func (s *holdAfterReadStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "hold_after_read"
	if !d.NextArg() {
		return d.ArgErr()
	}
	backend := d.Val()
	unm, err := caddyfile.UnmarshalModule(d, "http.handlers.session.stores."+backend)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(unm)
	if err != nil {
		return err
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return err
	}
	obj["backend"] = backend
	s.InnerRaw, err = json.Marshal(obj)
	return err
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
