package caddysession

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/go-jose/go-jose/v4"

	"github.com/caddy-session/caddy-session/internal/clock"
)

func init() {
	caddy.RegisterModule(JWKS{})
	httpcaddyfile.RegisterHandlerDirective("session_jwks", parseJWKS)
	// It answers requests, as respond does.
	httpcaddyfile.RegisterDirectiveOrder("session_jwks", httpcaddyfile.Before, "respond")
}

// JWKS serves the public keys of the signed session tokens
// (X-Session-Meta-Token, the session handler's sign) as a JSON Web Key
// Set, for the app to verify them with: the active key of each signing
// session handler of the config, and the keys retired less than a token's
// lifetime ago. It finds the keys through the config's session handlers,
// so it needs no key settings of its own, and shows rotations at once.
// It answers GET and HEAD, with `Content-Type: application/jwk-set+json`.
type JWKS struct {
	// Serve the keys of the session handlers of this realm. Default: the
	// realms of the session handlers of its own site (its server's listen
	// addresses and its hosts), each of which signs with keys of its own,
	// so that the app of one site accepts no token of another.
	Realm string `json:"realm,omitempty"`

	app *App
	// placed: the app's walk of the config found it, at a site whose
	// handlers are of realms. One it did not find (inside another
	// module's routes) serves every realm's keys, as the admin API does.
	placed bool
	realms []string
}

// CaddyModule returns the Caddy module information.
func (JWKS) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.session_jwks",
		New: func() caddy.Module { return new(JWKS) },
	}
}

// Provision joins the config's session app, through which it finds the
// signing handlers.
func (j *JWKS) Provision(ctx caddy.Context) error {
	app, err := sessionApp(ctx)
	if err != nil {
		return err
	}
	j.app = app
	return nil
}

// ServeHTTP answers with the key set.
func (j *JWKS) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, fmt.Errorf("session_jwks answers GET and HEAD, not %s", r.Method))
	}
	if err := j.app.wired(); err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	realms := j.realms
	if j.Realm != "" {
		realms = []string{j.Realm}
	}
	set, n := keySet(j.app.Handlers(), realms, j.placed || j.Realm != "")
	if n == 0 {
		if j.placed && j.Realm == "" {
			return caddyhttp.Error(http.StatusNotFound, fmt.Errorf("session_jwks: no session handler of its site (realms %q) signs tokens; add sign to the site's session directive, or give session_jwks the realm whose keys it serves", realms))
		}
		return caddyhttp.Error(http.StatusNotFound, fmt.Errorf("session_jwks: no session handler signs tokens%s; add sign to a session directive", realmClause(j.Realm)))
	}
	body, err := json.Marshal(set)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	// A verifier that meets an unknown kid fetches the set again; a cache
	// on the way must not hide a key that has just become active.
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, err = w.Write(body)
	}
	return err
}

func realmClause(realm string) string {
	if realm == "" {
		return ""
	}
	return fmt.Sprintf(" in realm %q", realm)
}

// keySet is the JWKS of the handlers that sign, of the realms given if
// only, and how many handlers it covers. A key shared by several handlers
// is listed once.
func keySet(handlers []*Handler, realms []string, only bool) (jose.JSONWebKeySet, int) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	n := 0
	now := clock.Now()
	for _, h := range handlers {
		if h.signer == nil || only && !slices.Contains(realms, h.realm) {
			continue
		}
		n++
		for _, k := range h.signer.ring.published(now) {
			if !slices.ContainsFunc(set.Keys, func(o jose.JSONWebKey) bool { return o.KeyID == k.KeyID }) {
				set.Keys = append(set.Keys, k)
			}
		}
	}
	return set, n
}

// parseJWKS reads the session_jwks directive:
//
//	session_jwks [<matcher>] {
//		realm <name>
//	}
func parseJWKS(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	j := new(JWKS)
	err := j.UnmarshalCaddyfile(h.Dispenser)
	return j, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	session_jwks [<matcher>] {
//		realm <name>
//	}
func (j *JWKS) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive's name
	if d.NextArg() {
		return d.ArgErr()
	}
	return eachSubdirective(d, "session_jwks", j, map[string]func(*JWKS, *caddyfile.Dispenser) error{
		"realm": func(j *JWKS, d *caddyfile.Dispenser) error { return parseOneArg(d, &j.Realm) },
	})
}

// adminJWKSPath is the admin API's JWKS.
const adminJWKSPath = "/session/jwks"

// handleJWKS answers GET /session/jwks: the key set of every signing
// session handler of the running config, or of one realm (?realm=).
func (a *AdminAPI) handleJWKS(w http.ResponseWriter, r *http.Request) error {
	if err := checkMethod(w, r, http.MethodGet); err != nil {
		return err
	}
	q, err := queryParams(r, "realm")
	if err != nil {
		return err
	}
	var handlers []*Handler
	if app := activeApp(); app != nil {
		handlers = app.Handlers()
	}
	realm := q.Get("realm")
	set, n := keySet(handlers, []string{realm}, realm != "")
	if n == 0 {
		return caddy.APIError{HTTPStatus: http.StatusNotFound,
			Err: fmt.Errorf("no session handler signs tokens%s: add sign to a session directive", realmClause(q.Get("realm")))}
	}
	return writeJSON(w, set)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*JWKS)(nil)
	_ caddyhttp.MiddlewareHandler = (*JWKS)(nil)
	_ caddyfile.Unmarshaler       = (*JWKS)(nil)
)
