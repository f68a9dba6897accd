package caddysession

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
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
	// Ends committed in the old store by handlers without this
	// fallback_store reach the copies (fallbackrelay.go).
	h.fallback.Copying = h.copying
	moveMu.Lock()
	h.watch()
	moveMu.Unlock()
	return nil
}

// unmarshalFallbackStore reads fallback_store, whose syntax is store's:
//
//	fallback_store <backend> [<args...>] [{ ... }]
func (h *Handler) unmarshalFallbackStore(d *caddyfile.Dispenser) (err error) {
	h.FallbackStoreRaw, err = unmarshalStoreModule(d)
	return err
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
// starting at cursor, and return what it did and the next cursor. The
// fallback_store may be any handler's on the store, not only the first's;
// handlers that fall back to several stores are migrated from each in
// turn, the cursor then naming which one (migrateCursor).
func (a *AdminAPI) handleMigrate(w http.ResponseWriter, r *http.Request) error {
	s, q, limit, err := pageRequest(w, r, http.MethodPost)
	if err != nil {
		return err
	}
	if len(s.fallbacks) == 0 {
		return badRequest(fmt.Errorf("store %s has no fallback_store to migrate from: configure the store to move to with fallback_store naming the one to move from, and reload", s.name))
	}
	i, cursor, ok := parseMigrateCursor(q.Get("cursor"), len(s.fallbacks))
	if !ok {
		return badRequest(fmt.Errorf("cursor %q: pass back the next_cursor of the previous page, or none for the first page", q.Get("cursor")))
	}
	from := s.fallbacks[i]
	// Held on for the page, as a copy on first use holds it: once the
	// reload that removes fallback_store has run, the new config ends
	// sessions in the store only, and the old store still holds them; a
	// page that listed one before would copy it back after its logout.
	if from.copying != nil {
		done, ok := from.copying()
		if !ok {
			return badRequest(fmt.Errorf("the move from %s to %s is over: a reload removed fallback_store, and the old store may hold sessions that ended since; migrate before removing fallback_store", from.name, s.name))
		}
		defer done()
	}
	stats, next, err := store.CopyPage(r.Context(), from.old, s.base, cursor, limit, clock.Now())
	if errors.Is(err, store.ErrBadCursor) {
		return badRequest(fmt.Errorf("cursor %q: pass back the next_cursor of the previous page, or none for the first page", q.Get("cursor")))
	}
	if err != nil {
		return storeFailure(fmt.Errorf("migrating from %s to %s: %v", from.name, s.name, err))
	}
	a.logger.Info("sessions migrated through the admin API",
		zap.String("from", from.name), zap.String("to", s.name),
		zap.Int("copied", stats.Copied), zap.Int("unchanged", stats.Unchanged),
		zap.Int("newer", stats.Newer), zap.Int("ended", stats.Ended))
	return writeJSON(w, migrateView{CopyStats: stats, From: from.name, To: s.name, NextCursor: migrateCursor(i, next, len(s.fallbacks))})
}

// migrateCursor is the cursor of migrate's next page, after a page of the
// i-th of n fallback stores whose own next cursor is next: that cursor as
// it is when there is one fallback store; with several, prefixed with the
// number of the store it is of, "1/...", and "" only after the last
// store's last page.
func migrateCursor(i int, next string, n int) string {
	switch {
	case n == 1:
		return next
	case next != "":
		return strconv.Itoa(i) + "/" + next
	case i+1 < n:
		return strconv.Itoa(i+1) + "/"
	}
	return ""
}

// parseMigrateCursor reads a cursor migrateCursor made for n fallback
// stores: the number of the store and its own cursor.
func parseMigrateCursor(cursor string, n int) (i int, own string, ok bool) {
	if n == 1 || cursor == "" {
		return 0, cursor, true
	}
	num, own, found := strings.Cut(cursor, "/")
	i, err := strconv.Atoi(num)
	if !found || err != nil || i < 0 || i >= n {
		return 0, "", false
	}
	return i, own, true
}
