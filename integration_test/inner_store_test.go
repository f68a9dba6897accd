package integration_test

import (
	"encoding/json"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	caddysession "github.com/caddy-session/caddy-session"
)

// innerStore is the part of a test store module that wraps a real store,
// its inner module (bolt, Redis, faulty): it loads it, and reads
// `<name> <backend> <args...>` in a Caddyfile. The module embeds it and
// wraps inner.SessionStore().
type innerStore struct {
	InnerRaw json.RawMessage `json:"inner,omitempty" caddy:"namespace=http.handlers.session.stores inline_key=backend"`
	inner    caddysession.StoreProvider
}

func (s *innerStore) Provision(ctx caddy.Context) error {
	mod, err := ctx.LoadModule(s, "InnerRaw")
	if err != nil {
		return fmt.Errorf("loading the inner store: %v", err)
	}
	s.inner = mod.(caddysession.StoreProvider)
	return nil
}

// StoreName is the inner store's: the wrapper holds the same data.
func (s *innerStore) StoreName() string { return s.inner.StoreName() }

// UnmarshalCaddyfile reads `<name> <backend> <args...>`.
func (s *innerStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module's name
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
