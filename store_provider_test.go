package caddysession

import (
	"context"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-session/caddy-session/store"
)

// namelessStore is a store module of another plugin that predates
// StoreName: it gives a store but no name.
type namelessStore struct{}

func (namelessStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.session.stores.nameless_test",
		New: func() caddy.Module { return new(namelessStore) },
	}
}

func (namelessStore) SessionStore() store.Store { return nil }

func init() { caddy.RegisterModule(namelessStore{}) }

// TestStoreModuleWithoutStoreNameIsRefused loads a store module that lacks
// StoreName: the config is refused with an error that says what the module
// needs, and the process goes on.
func TestStoreModuleWithoutStoreNameIsRefused(t *testing.T) {
	h := &Handler{StoreRaw: []byte(`{"backend": "nameless_test"}`)}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := h.Provision(ctx)
	if err == nil {
		t.Fatal("a store module without StoreName was accepted")
	}
	if !strings.Contains(err.Error(), "StoreName()") {
		t.Fatalf("error %q does not say that StoreName is missing", err)
	}
}
