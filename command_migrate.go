package caddysession

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-session/caddy-session/store"
)

// caddy session migrate: copies every live session of one store into
// another, with its hash, deadlines and identity index, so that the
// cookies users hold keep working on the new store (store.CopyPage).

func migrateCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "migrate [--from <store> --to <store>]",
		Short: "Copies every live session from one store into another",
		Long: `
Copies every live session from one store into another, with its hash,
deadlines, metadata and identity index, so that the cookies users hold
keep opening their sessions on the new store. A session the new store
already holds is left as it is (it is the same, or newer); a session that
ends while it is copied is not brought back. It can be run again, and
resumed with --cursor from where it stopped.

Without --from and --to, it works through the admin API of a running
Caddy whose session handler names the new store with store and the old
one with fallback_store: that Caddy copies the sessions, a page per
request, while it serves. This is the way to move without logging anyone
out; see the README, "Moving to another store".

With --from and --to, it opens both stores itself, and no running Caddy
may hold a bolt file among them. Each is one of:

  a path                     a bolt file
  redis://... or rediss://   a Redis server
  {"backend": ...}           a store as the session handler's JSON has it
                             (Redis Cluster or Sentinel, TLS, a key prefix)
`,
		Args: cobra.NoArgs,
		RunE: caddycmd.WrapCommandFuncForCobra(cmdSessionMigrate),
	}
	c.Flags().String("from", "", "The store to copy from (offline)")
	c.Flags().String("to", "", "The store to copy into (offline)")
	c.Flags().String("cursor", "", "Resume from this cursor, as a stopped run printed it")
	c.Flags().Int("batch", defaultExportLimit, "Sessions per page")
	return c
}

// migrateProgressEvery is how often a long migration tells how far it is.
const migrateProgressEvery = 2 * time.Second

func cmdSessionMigrate(fl caddycmd.Flags) (int, error) {
	from, to := fl.String("from"), fl.String("to")
	batch, _ := fl.GetInt("batch")
	if batch < 1 || batch > maxExportLimit {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("--batch %d: give a number from 1 to %d", batch, maxExportLimit)
	}
	var page func(cursor string) (store.CopyStats, string, error)
	switch {
	case from == "" && to == "":
		page = func(cursor string) (store.CopyStats, string, error) {
			q := storeQuery(fl)
			q.Set("limit", strconv.Itoa(batch))
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			var v migrateView
			err := adminCall(fl, http.MethodPost, adminMigratePath, q, nil, "", &v)
			return v.CopyStats, v.NextCursor, err
		}
	case from == "" || to == "":
		return caddy.ExitCodeFailedStartup, errors.New("give both --from and --to, or neither to migrate through a running Caddy's fallback_store")
	default:
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		defer cancel()
		src, err := openStoreSpec(ctx, from)
		if err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("--from: %v", err)
		}
		dst, err := openStoreSpec(ctx, to)
		if err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("--to: %v", err)
		}
		page = func(cursor string) (store.CopyStats, string, error) {
			return store.CopyPage(ctx, src, dst, cursor, batch, time.Now())
		}
	}

	var total store.CopyStats
	last := time.Now()
	for cursor := fl.String("cursor"); ; {
		stats, next, err := page(cursor)
		total.Add(stats)
		if err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("migrating (%s so far; run it again with --cursor %q to resume): %v", describeCopy(total), cursor, err)
		}
		if cursor = next; cursor == "" {
			break
		}
		if time.Since(last) >= migrateProgressEvery && !fl.Bool("json") {
			fmt.Fprintf(os.Stderr, "%s so far (cursor %s)\n", describeCopy(total), cursor)
			last = time.Now()
		}
	}
	return report(fl, false, total, "migrated: "+describeCopy(total))
}

// describeCopy says what copies did, for people.
func describeCopy(s store.CopyStats) string {
	return fmt.Sprintf("%d copied, %d unchanged, %d newer in the new store, %d ended while copied", s.Copied, s.Unchanged, s.Newer, s.Ended)
}

// openStoreSpec opens the store that spec names, as a session handler
// would, within ctx: a bolt file's path, a Redis URL, or a store's JSON.
func openStoreSpec(ctx caddy.Context, spec string) (store.Store, error) {
	var raw json.RawMessage
	switch {
	case strings.HasPrefix(spec, "{"):
		raw = json.RawMessage(spec)
	case strings.HasPrefix(spec, "redis://"), strings.HasPrefix(spec, "rediss://"):
		raw, _ = json.Marshal(map[string]any{"backend": "redis", "url": spec})
	default:
		if _, err := os.Stat(spec); err != nil {
			return nil, fmt.Errorf("bolt file: %v", err)
		}
		raw, _ = json.Marshal(map[string]any{"backend": "bolt", "path": spec, "lock_timeout": boltLockWait.String()})
	}
	var head struct {
		Backend string `json:"backend"`
	}
	if err := json.Unmarshal(raw, &head); err != nil || head.Backend == "" {
		return nil, fmt.Errorf("%s: a store is a path, a Redis URL, or JSON with a backend, such as {\"backend\": \"redis\", \"url\": \"redis://...\"}", spec)
	}
	var body map[string]json.RawMessage
	_ = json.Unmarshal(raw, &body)
	delete(body, "backend")
	raw, _ = json.Marshal(body)
	mod, err := ctx.LoadModuleByID("http.handlers.session.stores."+head.Backend, raw)
	if err != nil {
		return nil, err
	}
	provider, ok := mod.(StoreProvider)
	if !ok {
		return nil, fmt.Errorf("store module %T is not a StoreProvider", mod)
	}
	return provider.SessionStore(), nil
}
