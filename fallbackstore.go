package caddysession

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/internal/clock"

	"github.com/caddy-session/caddy-session/store"
)

// provisionFallback puts the store being moved away from behind the
// handler's store (fallback_store): sessions not moved yet are read from
// it and copied on first use.
func (h *Handler) provisionFallback(ctx caddy.Context) error {
	if h.FallbackStoreRaw == nil {
		return nil
	}
	mod, err := ctx.LoadModule(h, "FallbackStoreRaw")
	if err != nil {
		return fmt.Errorf("loading fallback_store: %v", err)
	}
	old, ok := mod.(StoreProvider)
	if !ok {
		return fmt.Errorf("fallback_store module %T is not a StoreProvider: it needs the methods SessionStore() and StoreName()", mod)
	}
	if old.StoreName() == h.storeName {
		return fmt.Errorf("fallback_store is the store itself (%s): name the store the sessions move away from", h.storeName)
	}
	h.fallbackName = old.StoreName()
	h.fallback = &store.Fallback{New: h.store, Old: old.SessionStore(), Identity: h.identity}
	h.store = newInstrumented(h.fallback, h.backend)
	return nil
}

// unmarshalFallbackStore reads fallback_store, whose syntax is store's:
//
//	fallback_store <backend> [<args...>] [{ ... }]
func (h *Handler) unmarshalFallbackStore(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	backend := d.Val()
	unm, err := caddyfile.UnmarshalModule(d, "http.handlers.session.stores."+backend)
	if err != nil {
		return err
	}
	h.FallbackStoreRaw = caddyconfig.JSONModuleObject(unm, "backend", backend, nil)
	return nil
}

// adminMigratePath copies the sessions of a handler's fallback_store into
// its store, a page per request, for `caddy session migrate`.
const adminMigratePath = "/session/migrate"

// migrateView is the answer of POST /session/migrate.
type migrateView struct {
	store.CopyStats
	// From and To name the stores.
	From string `json:"from"`
	To   string `json:"to"`
	// NextCursor is the cursor of the next page, "" after the last.
	NextCursor string `json:"next_cursor"`
}

// handleMigrate answers POST /session/migrate: copy one page of the
// sessions of the store's fallback_store into the store (store.CopyPage),
// starting at cursor, and return what it did and the next cursor.
func (a *AdminAPI) handleMigrate(w http.ResponseWriter, r *http.Request) error {
	if err := checkMethod(w, r, http.MethodPost); err != nil {
		return err
	}
	q, err := queryParams(r, "store", "cursor", "limit")
	if err != nil {
		return err
	}
	h, err := pickStore(q)
	if err != nil {
		return err
	}
	if h.fallback == nil {
		return badRequest(fmt.Errorf("store %s has no fallback_store to migrate from: configure the store to move to with fallback_store naming the one to move from, and reload", h.storeName))
	}
	limit, err := pageLimit(q)
	if err != nil {
		return err
	}
	stats, next, err := store.CopyPage(r.Context(), h.fallback.Old, h.fallback.New, q.Get("cursor"), limit, clock.Now())
	if errors.Is(err, store.ErrBadCursor) {
		return badRequest(fmt.Errorf("cursor %q: pass back the next_cursor of the previous page, or none for the first page", q.Get("cursor")))
	}
	if err != nil {
		return storeFailure(fmt.Errorf("migrating from %s to %s: %v", h.fallbackName, h.storeName, err))
	}
	a.logger.Info("sessions migrated through the admin API",
		zap.String("from", h.fallbackName), zap.String("to", h.storeName),
		zap.Int("copied", stats.Copied), zap.Int("unchanged", stats.Unchanged),
		zap.Int("newer", stats.Newer), zap.Int("ended", stats.Ended))
	return writeJSON(w, migrateView{CopyStats: stats, From: h.fallbackName, To: h.storeName, NextCursor: next})
}
