package caddysession

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/strictjson"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI serves the session endpoints of Caddy's admin API, under
// `/session/`: counts per store, a paginated listing of sessions, one
// session by the hash of its ID, and revocation of one session or of every
// session of a user. It is loaded by the admin endpoint itself, so it is
// reachable exactly where the rest of the admin API is, under the same
// access controls, and it needs no configuration.
//
// It works on the stores of the session handlers of the running config,
// each through the wrappers of every handler on it (liveStore). It never
// sees or returns a session ID: sessions are named by the SHA-256 of their
// ID, the key under which the store keeps them.
type AdminAPI struct {
	logger *zap.Logger
}

// Limits of GET /session/sessions.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// maxRevokeBody bounds the body of POST /session/revoke.
const maxRevokeBody = 64 << 10

// The paths of the endpoints.
const (
	adminStoresPath   = "/session/stores"
	adminSessionsPath = "/session/sessions"
	adminRevokePath   = "/session/revoke"
)

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.session",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Provision sets up the logger.
func (a *AdminAPI) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger(a)
	return nil
}

// Routes returns the routes of the session endpoints.
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	return append([]caddy.AdminRoute{
		{Pattern: adminStoresPath, Handler: caddy.AdminHandlerFunc(a.handleStores)},
		{Pattern: adminSessionsPath, Handler: caddy.AdminHandlerFunc(a.handleList)},
		{Pattern: adminSessionsPath + "/", Handler: caddy.AdminHandlerFunc(a.handleSession)},
		{Pattern: adminRevokePath, Handler: caddy.AdminHandlerFunc(a.handleRevoke)},
		{Pattern: adminJWKSPath, Handler: caddy.AdminHandlerFunc(a.handleJWKS)}, // jwks.go
	}, a.transferRoutes()...)
}

// storeView is one store in GET /session/stores.
type storeView struct {
	Name     string `json:"name"`
	Backend  string `json:"backend"`
	Sessions int    `json:"sessions"`
}

// sessionView is one session as the admin API shows it: never the ID,
// only its hash; the values only when asked for. It is a view, for
// people and scripts that read strings: a byte of a value or realm that
// is not UTF-8 (obs-text, valid in a header) shows as U+FFFD, as
// encoding/json writes it, rather than in another shape than the other
// values. GET /session/export carries the exact bytes (store/transfer),
// and an import reads only that.
type sessionView struct {
	Hash string `json:"hash"`
	// Realm is the realm the session belongs to; "" for one stored before
	// realms existed, which any realm adopts.
	Realm            string    `json:"realm"`
	Created          time.Time `json:"created"`
	LastSeen         time.Time `json:"last_seen"`
	IdleDeadline     time.Time `json:"idle_deadline"`
	AbsoluteDeadline time.Time `json:"absolute_deadline"`
	// Remembered reports a remember-me session (X-Session-Remember: true),
	// which has a persistent cookie and the remember timeouts.
	Remembered bool              `json:"remembered"`
	Keys       []string          `json:"keys"`
	Values     map[string]string `json:"values,omitzero"`
	// Sealed reports a session whose values are sealed at rest
	// (seal_values): its keys are shown, never its values.
	Sealed bool `json:"sealed,omitzero"`
}

// listView is the answer of GET /session/sessions.
type listView struct {
	Sessions []sessionView `json:"sessions"`
	// NextCursor is the cursor of the next page, "" after the last.
	NextCursor string `json:"next_cursor"`
}

// revokedView is the answer of the revoking endpoints.
type revokedView struct {
	Revoked int `json:"revoked"`
}

// revokeRequest is the body of POST /session/revoke.
type revokeRequest struct {
	Key   string  `json:"key"`
	Value *string `json:"value"`
	// Realm is the realm to revoke in; default: the only realm of the
	// store's handlers.
	Realm *string `json:"realm"`
}

// revokeFields are the field names of revokeRequest, spelled exactly, as
// its json tags give them.
var revokeFields = jsonFieldNames(reflect.TypeFor[revokeRequest]())

// jsonFieldNames returns the names of a struct's fields in JSON.
func jsonFieldNames(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// handleStores answers GET /session/stores: each live store with the
// number of live sessions it holds.
func (a *AdminAPI) handleStores(w http.ResponseWriter, r *http.Request) error {
	if err := checkMethod(w, r, http.MethodGet); err != nil {
		return err
	}
	if _, err := queryParams(r); err != nil {
		return err
	}
	now := clock.Now()
	out := []storeView{}
	for _, s := range liveStores() {
		n, err := s.store.Count(r.Context(), now)
		if err != nil {
			return storeFailure(fmt.Errorf("counting the sessions of store %s: %v", s.name, err))
		}
		out = append(out, storeView{Name: s.name, Backend: s.backend, Sessions: n})
	}
	return writeJSON(w, out)
}

// handleList answers GET /session/sessions: one page of live sessions in
// the order of their hashes. Each page is read in its own store
// transaction; nothing is held open between requests.
func (a *AdminAPI) handleList(w http.ResponseWriter, r *http.Request) error {
	if err := checkMethod(w, r, http.MethodGet); err != nil {
		return err
	}
	s, q, err := storeRequest(r, "store", "cursor", "limit", "values")
	if err != nil {
		return err
	}
	limit := defaultListLimit
	if s := q.Get("limit"); s != "" {
		limit, err = strconv.Atoi(s)
		if err != nil || limit < 1 || limit > maxListLimit {
			return badRequest(fmt.Errorf("limit %q: give a whole number from 1 to %d", s, maxListLimit))
		}
	}
	values, err := boolParam(q, "values")
	if err != nil {
		return err
	}
	cursor := q.Get("cursor")

	// The store checks the stored deadlines; a timeout shortened in the
	// config ends a session at once, as Load does, so sessions that have
	// ended for every handler of their realm are skipped here, and the
	// store is read again until the page is full or it runs out. The next
	// cursor is the store's own, which only the store reads: bolt's is a
	// hash, Redis's a bucket and a hash.
	now := clock.Now()
	page := listView{Sessions: []sessionView{}}
	for {
		entries, next, err := s.store.List(r.Context(), cursor, limit-len(page.Sessions), now)
		if errors.Is(err, store.ErrBadCursor) {
			return badRequest(fmt.Errorf("cursor %q: pass back the next_cursor of the previous page, or none for the first page", cursor))
		}
		if err != nil {
			return storeFailure(fmt.Errorf("listing the sessions of store %s: %v", s.name, err))
		}
		for _, e := range entries {
			if !s.expired(e.Record, now) {
				page.Sessions = append(page.Sessions, s.viewOf(e.Hash, e.Record, values))
			}
		}
		if cursor = next; cursor == "" || len(page.Sessions) == limit {
			break
		}
	}
	// A next page is announced only if a live session follows: the store
	// may hold nothing after this page but sessions a shortened timeout
	// has ended.
	follows, err := liveFollows(r, s, cursor, now)
	if err != nil {
		return storeFailure(fmt.Errorf("listing the sessions of store %s: %v", s.name, err))
	}
	if follows {
		page.NextCursor = cursor
	}
	return writeJSON(w, page)
}

// liveFollows reports whether the store holds, from cursor on, a session
// that has not ended for every handler of its realm.
func liveFollows(r *http.Request, s *liveStore, cursor string, now time.Time) (bool, error) {
	for cursor != "" {
		entries, next, err := s.store.List(r.Context(), cursor, defaultListLimit, now)
		if err != nil {
			return false, err
		}
		for _, e := range entries {
			if !s.expired(e.Record, now) {
				return true, nil
			}
		}
		cursor = next
	}
	return false, nil
}

// handleSession answers GET and DELETE /session/sessions/<hash>: show or
// revoke one session, of whichever realm: it is judged by the timeouts of
// the handlers of its realm, and revoked through the wrappers of every
// handler of the store.
func (a *AdminAPI) handleSession(w http.ResponseWriter, r *http.Request) error {
	if err := checkMethod(w, r, http.MethodGet, http.MethodDelete); err != nil {
		return err
	}
	allowed := []string{"store"}
	if r.Method == http.MethodGet {
		allowed = append(allowed, "values")
	}
	q, err := queryParams(r, allowed...)
	if err != nil {
		return err
	}
	raw := strings.TrimPrefix(r.URL.Path, adminSessionsPath+"/")
	hash, err := session.ParseHash(raw)
	if err != nil {
		return badRequest(fmt.Errorf("%q is not a session hash: %v, as GET %s lists them", raw, err, adminSessionsPath))
	}
	s, err := pickStore(q)
	if err != nil {
		return err
	}
	if r.Method == http.MethodDelete {
		return a.revokeOne(w, r, s, hash)
	}

	values, err := boolParam(q, "values")
	if err != nil {
		return err
	}
	at, rec, err := s.follow(r.Context(), hash, clock.Now())
	if errors.Is(err, store.ErrNotFound) {
		return a.sessionNotFound(w, r, hash, s)
	}
	if err != nil {
		return storeFailure(fmt.Errorf("reading session %s from store %s: %v", hash.Short(), s.name, err))
	}
	return writeJSON(w, s.viewOf(at, rec, values))
}

// revokeOne deletes the session stored under hash, whatever its realm,
// through the wrappers of every handler of the store: from each fallback
// store, with a tombstone in the stale copy.
func (a *AdminAPI) revokeOne(w http.ResponseWriter, r *http.Request, s *liveStore, hash session.Hash) error {
	now := clock.Now()
	ended := sessionEvent{hash: hash, cause: causeAdmin, sessions: 1}
	teller := s.handlers[0]
	if teller.listening(eventDestroyed) {
		// The event tells whose session it was: read it before it goes.
		// A failed read only leaves the event without identity and realm.
		if _, rec, err := s.follow(r.Context(), hash, now); err == nil {
			ended.record, ended.realm = rec, rec.Realm
			teller = s.teller(rec.Realm)
		}
	}
	// The session may have been given a new ID since it was listed (its
	// forward record lives session.ForwardTTL): its successor is the same
	// device, and is ended in its place, whoever holds it now, as a
	// revocation by hash ends a session whatever its realm, as long as it
	// is live for a handler of its realm.
	gone, successor, err := deleteFollowing(r.Context(), s.store, store.StoredDeadlines, hash, now, func(rec *session.Record) bool {
		return !s.expired(rec, now)
	})
	if errors.Is(err, store.ErrNotFound) {
		return a.sessionNotFound(w, r, hash, s)
	}
	if err != nil {
		return storeFailure(fmt.Errorf("deleting session %s from store %s: %v", hash.Short(), s.name, err))
	}
	if successor != nil {
		// The event tells of the session that ended, which the app knows
		// by its new hash, and whose it is, which the forward record read
		// above does not say.
		ended.hash, ended.record, ended.realm = gone, successor, successor.Realm
		teller = s.teller(successor.Realm)
	}
	sessionMetrics.destroyed.WithLabelValues(s.backend, "admin").Inc()
	a.logger.Info("session revoked through the admin API",
		zap.String("store", s.name), zap.String("session", gone.Short()))
	teller.emit(eventDestroyed, ended)
	return writeJSON(w, revokedView{Revoked: 1})
}

// handleRevoke answers POST /session/revoke: delete every session of one
// realm whose identity key has the given value, as a password reset needs,
// through the wrappers of every handler of the store (sealed index
// entries under each handler's index key, the stale copy's tombstones,
// each fallback store), by the identity key of the realm's handlers. The
// value comes in the body, not the URL, so that Caddy's log of admin
// requests never holds a user name.
func (a *AdminAPI) handleRevoke(w http.ResponseWriter, r *http.Request) error {
	if err := checkMethod(w, r, http.MethodPost); err != nil {
		return err
	}
	if err := checkJSONContentType(r); err != nil {
		return err
	}
	s, _, err := storeRequest(r, "store")
	if err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRevokeBody))
	if err != nil {
		return badRequest(fmt.Errorf("body: %v: send a JSON object of at most %d bytes", err, maxRevokeBody))
	}
	if err := strictjson.CheckFieldNames(body, revokeFields, func(name string) error {
		return fmt.Errorf("unknown field %q: use %s", name, quoteList(revokeFields))
	}); err != nil {
		return badRequest(fmt.Errorf("body: %v", err))
	}
	var req revokeRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return badRequest(fmt.Errorf(`body: %v: send a JSON object such as {"key": "user", "value": "alice"}`, err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest(errors.New("body: send one JSON object and nothing after it"))
	}
	if req.Value == nil || *req.Value == "" {
		return badRequest(errors.New(`body: "value" is missing: give the value of the identity key whose sessions to revoke, e.g. {"value": "alice"}`))
	}
	key := strings.ToLower(req.Key)
	if key != "" && !session.ValidKey(key) {
		return badRequest(fmt.Errorf(`body: "key" %w`, session.CheckKey(req.Key)))
	}
	realm, err := s.pickRealm(req.Realm)
	if err != nil {
		return err
	}
	if key, err = s.pickIdentityKey(realm, key); err != nil {
		return err
	}
	n, err := s.store.DeleteByIdentity(r.Context(), realm, key, *req.Value)
	if err != nil {
		return storeFailure(fmt.Errorf("revoking sessions by %q in store %s: %v", key, s.name, err))
	}
	sessionMetrics.destroyed.WithLabelValues(s.backend, "admin").Add(float64(n))
	// The value names a user: it is not logged.
	a.logger.Info("sessions of a user revoked through the admin API",
		zap.String("store", s.name), zap.String("realm", realm), zap.String("key", key), zap.Int("sessions", n))
	if n > 0 {
		// One event for them all: the store does not say which they were.
		s.teller(realm).emit(eventDestroyed, sessionEvent{realm: realm, identity: *req.Value, hasIdentity: true, cause: causeAdmin, sessions: n})
	}
	return writeJSON(w, revokedView{Revoked: n})
}

// viewOf shows a record, with its values if asked for, and the deadlines
// that the store's handlers give it.
func (s *liveStore) viewOf(hash session.Hash, rec *session.Record, values bool) sessionView {
	idle, absolute := s.deadlines(rec)
	v := sessionView{
		Hash:             hash.String(),
		Realm:            rec.Realm,
		Created:          rec.Created.UTC(),
		LastSeen:         rec.LastSeen.UTC(),
		IdleDeadline:     idle.UTC(),
		AbsoluteDeadline: absolute.UTC(),
		Keys:             make([]string, 0, len(rec.Values)),
		Remembered:       rec.Remembered,
	}
	for k := range rec.Values {
		v.Keys = append(v.Keys, k)
	}
	slices.Sort(v.Keys)
	v.Sealed = rec.Sealed
	if values && !rec.Sealed {
		v.Values = make(map[string]string, len(rec.Values))
		for k, val := range rec.Values {
			v.Values[k] = val
		}
	}
	return v
}

// storeRequest parses the request's query as queryParams does and returns
// it with the store it names, as pickStore picks it.
func storeRequest(r *http.Request, allowed ...string) (*liveStore, url.Values, error) {
	q, err := queryParams(r, allowed...)
	if err != nil {
		return nil, nil, err
	}
	s, err := pickStore(q)
	return s, q, err
}

// pickStore returns the live store named by the query's store parameter
// or, without one, the only live store.
func pickStore(q url.Values) (*liveStore, error) {
	live := liveStores()
	name := q.Get("store")
	if name == "" {
		switch len(live) {
		case 1:
			return live[0], nil
		case 0:
			return nil, caddy.APIError{HTTPStatus: http.StatusNotFound,
				Err: errors.New("no session store is live: load a config with a session handler")}
		default:
			return nil, badRequest(fmt.Errorf("%d session stores are live: name one in the query, ?store=NAME, with NAME one of %s",
				len(live), quoteList(storeNames(live))))
		}
	}
	for _, s := range live {
		if s.name == name {
			return s, nil
		}
	}
	return nil, caddy.APIError{HTTPStatus: http.StatusNotFound,
		Err: fmt.Errorf("no live session store is named %q: use one of %s, as GET %s lists them",
			name, quoteList(storeNames(live)), adminStoresPath)}
}

// pickRealm returns the realm a revocation by user acts in: the one the
// request names, or the only one of the store's handlers.
func (s *liveStore) pickRealm(named *string) (string, error) {
	live := s.realms()
	if named != nil {
		if !slices.Contains(live, *named) {
			return "", badRequest(fmt.Errorf(`body: "realm" %q is not a realm of store %s: use one of %s`, *named, s.name, quoteList(live)))
		}
		return *named, nil
	}
	if len(live) != 1 {
		return "", badRequest(fmt.Errorf(`body: %d realms use store %s, and a revocation acts within one: name it, e.g. {"value": "alice", "realm": %q}, with one of %s`,
			len(live), s.name, live[0], quoteList(live)))
	}
	return live[0], nil
}

// pickIdentityKey returns the identity key a revocation by user in realm
// goes by: the one the request names (key, lowercase), which must be one
// the realm's handlers index sessions by, or the only one of them.
func (s *liveStore) pickIdentityKey(realm, key string) (string, error) {
	keys := s.identityKeys(realm)
	if key == "" {
		if len(keys) != 1 {
			return "", badRequest(fmt.Errorf(`body: the handlers of realm %q of store %s identify users by %d keys, and a revocation goes by one: name it, e.g. {"key": %q, "value": "alice"}, with one of %s`,
				realm, s.name, len(keys), keys[0], quoteList(keys)))
		}
		return keys[0], nil
	}
	if !slices.Contains(keys, key) {
		return "", badRequest(fmt.Errorf(`body: "key" %q does not identify users in realm %q of store %s: sessions are indexed only by the identity key (identity_key, or the first renew_on key): use %s`,
			key, realm, s.name, quoteList(keys)))
	}
	return key, nil
}

func quoteList(items []string) string {
	if len(items) == 0 {
		return "(none)"
	}
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = strconv.Quote(s)
	}
	return strings.Join(quoted, ", ")
}

// checkMethod refuses a request whose method is not one of allowed with
// 405 and an Allow header.
func checkMethod(w http.ResponseWriter, r *http.Request, allowed ...string) error {
	if slices.Contains(allowed, r.Method) {
		return nil
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	return caddy.APIError{HTTPStatus: http.StatusMethodNotAllowed,
		Err: fmt.Errorf("method %s is not allowed on %s: use %s", r.Method, r.URL.Path, strings.Join(allowed, " or "))}
}

// queryParams parses the request's query and refuses a parameter that is
// not one of allowed, so that a misspelled one is not silently ignored.
func queryParams(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest(fmt.Errorf("query: %v: encode it as URL query parameters", err))
	}
	for name := range q {
		if !slices.Contains(allowed, name) {
			if len(allowed) == 0 {
				return nil, badRequest(fmt.Errorf("unknown query parameter %q: %s takes none", name, r.URL.Path))
			}
			return nil, badRequest(fmt.Errorf("unknown query parameter %q: use %s", name, quoteList(allowed)))
		}
	}
	return q, nil
}

// boolParam parses an optional true/false query parameter.
func boolParam(q url.Values, name string) (bool, error) {
	s := q.Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, badRequest(fmt.Errorf("%s %q: use true or false", name, s))
	}
	return b, nil
}

// writeJSON sends v as the JSON answer.
func writeJSON(w http.ResponseWriter, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: fmt.Errorf("encoding the answer: %v", err)}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(body, '\n'))
	return nil
}

func badRequest(err error) error {
	return caddy.APIError{HTTPStatus: http.StatusBadRequest, Err: err}
}

// sessionNotFound answers 404 for a session the store does not hold. It
// answers itself rather than return an error: Caddy logs every error of
// the admin API at error level, and a session that has expired or was
// revoked is an ordinary answer, not a fault of the server. Caddy has
// already logged the request at info.
func (a *AdminAPI) sessionNotFound(w http.ResponseWriter, r *http.Request, hash session.Hash, s *liveStore) error {
	msg := fmt.Sprintf("no live session whose hash starts %s in store %s: it never existed, has expired or was revoked", hash.Short(), s.name)
	if ce := a.logger.Check(zap.DebugLevel, "no such session"); ce != nil {
		ce.Write(zap.String("method", r.Method), zap.String("store", s.name), zap.String("session", hash.Short()))
	}
	return writeError(w, http.StatusNotFound, msg)
}

// writeError sends an error answer shaped as Caddy's own,
// {"error": "..."}.
func writeError(w http.ResponseWriter, status int, msg string) error {
	body, err := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	if err != nil {
		return caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: fmt.Errorf("encoding the answer: %v", err)}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
	return nil
}

// checkJSONContentType refuses a body that does not say it is JSON with
// 415. A form post (curl -d sends one) would otherwise be read as JSON
// by chance, or fail with a confusing syntax error; JSON is UTF-8, so any
// other charset is refused too.
func checkJSONContentType(r *http.Request) error {
	const want = "send the body as JSON, with the header Content-Type: application/json"
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return caddy.APIError{HTTPStatus: http.StatusUnsupportedMediaType,
			Err: fmt.Errorf("the Content-Type header is missing: %s", want)}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return caddy.APIError{HTTPStatus: http.StatusUnsupportedMediaType,
			Err: fmt.Errorf("content type %q: %s", ct, want)}
	}
	return checkUTF8(ct, params)
}

// checkUTF8 refuses, with 415, a content type whose charset is not UTF-8
// (in any case, as charset names are): JSON is UTF-8.
func checkUTF8(ct string, params map[string]string) error {
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return caddy.APIError{HTTPStatus: http.StatusUnsupportedMediaType,
			Err: fmt.Errorf("content type %q: JSON is UTF-8: send charset=utf-8 or no charset", ct)}
	}
	return nil
}

// storeFailure is a failure of the store, not of the request.
func storeFailure(err error) error {
	return caddy.APIError{HTTPStatus: http.StatusServiceUnavailable, Err: err}
}

// Interface guards
var (
	_ caddy.Provisioner = (*AdminAPI)(nil)
	_ caddy.AdminRouter = (*AdminAPI)(nil)
)
