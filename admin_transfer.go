package caddysession

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/transfer"
)

// The paths of the endpoints that move sessions whole, for `caddy session
// export` and `caddy session import`. Import has a path of its own, apart
// from the others under /session/, so that the admin API's access rules
// can leave it out: it plants any session it is given.
const (
	adminExportPath = "/session/export"
	adminImportPath = "/session/import"
)

// Limits of the transfer endpoints.
const (
	defaultExportLimit = 1000
	maxExportLimit     = 10_000
	// maxImportBody bounds the body of one POST /session/import; the
	// command sends a file in batches well under it.
	maxImportBody = 32 << 20
)

// exportView is the answer of GET /session/export: one page of sessions,
// each as a line of the export file.
type exportView struct {
	Sessions []transfer.Line `json:"sessions"`
	// NextCursor is the cursor of the next page, "" after the last.
	NextCursor string `json:"next_cursor"`
}

// importView is the answer of POST /session/import.
type importView struct {
	Imported  int `json:"imported"`
	Unchanged int `json:"unchanged"`
	// Kept counts the sessions not imported because a different live
	// session was under their hash (see overwrite); KeptHashes names them
	// by the short form of their hash.
	Kept       int      `json:"kept"`
	KeptHashes []string `json:"kept_hashes"`
	// Expired counts the sessions left out by skip_expired: they expired
	// after a dry run had checked them, before the import proper.
	Expired int `json:"expired,omitzero"`
}

// transferRoutes are the routes of the transfer endpoints.
func (a *AdminAPI) transferRoutes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: adminExportPath, Handler: caddy.AdminHandlerFunc(a.handleExport)},
		{Pattern: adminImportPath, Handler: caddy.AdminHandlerFunc(a.handleImport)},
		{Pattern: adminMigratePath, Handler: caddy.AdminHandlerFunc(a.handleMigrate)}, // fallbackstore.go
	}
}

// handleExport answers GET /session/export: one page of live sessions
// with everything the store keeps of them, values, metadata and the
// identity key included, in the store's own order. The cursor is the
// store's, passed back as it came.
func (a *AdminAPI) handleExport(w http.ResponseWriter, r *http.Request) error {
	s, q, limit, err := pageRequest(w, r, http.MethodGet)
	if err != nil {
		return err
	}
	now := clock.Now()
	entries, next, err := s.store.List(r.Context(), q.Get("cursor"), limit, now)
	if errors.Is(err, store.ErrBadCursor) {
		return badRequest(fmt.Errorf("cursor %q: pass back the next_cursor of the previous page, or none for the first page", q.Get("cursor")))
	}
	if err != nil {
		return storeFailure(fmt.Errorf("exporting the sessions of store %s: %v", s.name, err))
	}
	page := exportView{Sessions: make([]transfer.Line, 0, len(entries)), NextCursor: next}
	for _, e := range entries {
		// A timeout shortened in the config has ended some: they would
		// not open, and an import elsewhere must not revive them.
		if !s.expired(e.Record, now) {
			page.Sessions = append(page.Sessions, transfer.Of(e))
		}
	}
	a.logger.Info("sessions exported through the admin API",
		zap.String("store", s.name), zap.Int("sessions", len(page.Sessions)))
	return writeJSON(w, page)
}

// handleImport answers POST /session/import: store the sessions of the
// body, lines of an export file, as they are (store.Import). Every line
// is checked before anything is written: one that is malformed, expired,
// a forward record, over the limits of the handlers of its realm or of a
// realm the store's handlers do not serve refuses the whole body, naming
// its line. The query's line is the number of the body's first line in
// the file, so that the command sending a file in batches gets the
// file's numbers; dry_run=true checks the lines and stores nothing, so
// that the command checks every batch before it stores any.
func (a *AdminAPI) handleImport(w http.ResponseWriter, r *http.Request) error {
	if err := checkMethod(w, r, http.MethodPost); err != nil {
		return err
	}
	if err := checkLinesContentType(r); err != nil {
		return err
	}
	s, opts, err := importRequest(r)
	if err != nil {
		return err
	}

	// Each line is checked under the limits of its realm's handlers, and
	// the store checks the batch again under the widest of them all.
	imp := store.Import{Now: clock.Now(), Overwrite: opts.overwrite, Limits: s.widestLimits()}
	served := s.realms()
	var lines []int
	expired := 0
	rd := transfer.NewReader(http.MaxBytesReader(w, r.Body, maxImportBody), opts.first)
	for {
		e, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return caddy.APIError{HTTPStatus: http.StatusRequestEntityTooLarge,
				Err: fmt.Errorf("body: over %d bytes: send the file in smaller batches, as caddy session import does", maxImportBody)}
		}
		if err != nil {
			line := rd.Line()
			if le, ok := errors.AsType[*transfer.LineError](err); ok {
				line = le.Line
			}
			return a.refuseImport(w, s, line, fmt.Errorf("nothing imported: %v", err))
		}
		if e.Record.Realm != "" && !slices.Contains(served, e.Record.Realm) {
			return a.refuseImport(w, s, rd.Line(), fmt.Errorf("nothing imported: line %d: realm %q is not a realm of store %s, whose handlers would never open the session: use one of %s, or set the handler's realm to it",
				rd.Line(), e.Record.Realm, s.name, quoteList(served)))
		}
		if opts.skipExpired && e.Record.Expired(imp.Now) {
			// Checked by a dry run before it expired: it would open
			// nothing, and refusing it now would leave the batches sent
			// before it stored and this one not.
			expired++
			continue
		}
		if err := s.checkImport(e, imp.Now); err != nil {
			return a.refuseImport(w, s, rd.Line(), fmt.Errorf("nothing imported: line %d: %v", rd.Line(), err))
		}
		imp.Entries = append(imp.Entries, e)
		lines = append(lines, rd.Line())
	}

	if opts.dryRun {
		return writeJSON(w, importView{KeptHashes: []string{}, Expired: expired})
	}
	statuses, err := s.store.Import(r.Context(), imp)
	var refused *store.ImportError
	if errors.As(err, &refused) {
		// Checked above; a session that expired in between.
		return a.refuseImport(w, s, lines[refused.Index], fmt.Errorf("nothing imported: line %d: %v", lines[refused.Index], refused.Err))
	}
	if err != nil {
		return storeFailure(fmt.Errorf("importing sessions into store %s (%d of %d stored; send the same lines again to finish): %v",
			s.name, len(statuses), len(imp.Entries), err))
	}
	out := tallyImport(imp.Entries, statuses)
	out.Expired = expired
	a.logger.Info("sessions imported through the admin API",
		zap.String("store", s.name), zap.Bool("overwrite", opts.overwrite),
		zap.Int("imported", out.Imported), zap.Int("unchanged", out.Unchanged), zap.Int("kept", out.Kept),
		zap.Int("expired", out.Expired))
	return writeJSON(w, out)
}

// refuseImport answers 400 for an import body with a line that cannot be
// stored, saying why. It answers itself rather than return the error:
// Caddy logs every error of the admin API at error level with its
// message, and a refusal quotes what is wrong in the line, which may be a
// session's value (a value in the wrong form), or a raw ID pasted where
// the hash goes; logs hold neither. The log says which line was refused,
// and the operator's answer why.
func (a *AdminAPI) refuseImport(w http.ResponseWriter, s *liveStore, line int, err error) error {
	a.logger.Warn("import through the admin API refused; nothing imported (the answer says why)",
		zap.String("store", s.name), zap.Int("line", line))
	return writeError(w, http.StatusBadRequest, err.Error())
}

// importOptions are the query parameters of POST /session/import.
type importOptions struct {
	overwrite, dryRun, skipExpired bool
	// first is the number of the body's first line in its file.
	first int
}

// importRequest parses the query of POST /session/import and returns the
// store it names and the options.
func importRequest(r *http.Request) (*liveStore, importOptions, error) {
	opts := importOptions{first: 1}
	s, q, err := storeRequest(r, "store", "overwrite", "line", "dry_run", "skip_expired")
	if err != nil {
		return nil, opts, err
	}
	for _, p := range []struct {
		name string
		to   *bool
	}{{"overwrite", &opts.overwrite}, {"dry_run", &opts.dryRun}, {"skip_expired", &opts.skipExpired}} {
		if *p.to, err = boolParam(q, p.name); err != nil {
			return nil, opts, err
		}
	}
	if l := q.Get("line"); l != "" {
		if opts.first, err = strconv.Atoi(l); err != nil || opts.first < 1 {
			return nil, opts, badRequest(fmt.Errorf("line %q: give the number of the body's first line in its file, from 1", l))
		}
	}
	return s, opts, nil
}

// linesContentType is the media type of an export file.
const linesContentType = "application/x-ndjson"

// checkLinesContentType refuses a body that does not say it is JSON lines
// (or JSON) with 415, as checkJSONContentType does for JSON.
func checkLinesContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != linesContentType && mt != "application/json" {
		return caddy.APIError{HTTPStatus: http.StatusUnsupportedMediaType,
			Err: fmt.Errorf("content type %q: send the lines of caddy session export, with the header Content-Type: %s", ct, linesContentType)}
	}
	return checkUTF8(ct, params)
}

// pageRequest checks a request for a page of a store's sessions (export,
// migrate): its method, its parameters (store, cursor, limit), and returns
// the store, the query and the limit.
func pageRequest(w http.ResponseWriter, r *http.Request, method string) (*liveStore, url.Values, int, error) {
	if err := checkMethod(w, r, method); err != nil {
		return nil, nil, 0, err
	}
	s, q, err := storeRequest(r, "store", "cursor", "limit")
	if err != nil {
		return nil, nil, 0, err
	}
	limit, err := pageLimit(q)
	return s, q, limit, err
}

// pageLimit is the limit of a page of the transfer endpoints: the query's,
// or defaultExportLimit.
func pageLimit(q url.Values) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return defaultExportLimit, nil
	}
	limit, err := strconv.Atoi(s)
	if err != nil || limit < 1 || limit > maxExportLimit {
		return 0, badRequest(fmt.Errorf("limit %q: give a whole number from 1 to %d", s, maxExportLimit))
	}
	return limit, nil
}

// tallyImport counts what an import did with entries, by their statuses.
func tallyImport(entries []store.Entry, statuses []store.ImportStatus) importView {
	out := importView{KeptHashes: []string{}}
	for i, st := range statuses {
		switch st {
		case store.Imported:
			out.Imported++
		case store.Unchanged:
			out.Unchanged++
		case store.Kept:
			out.Kept++
			out.KeptHashes = append(out.KeptHashes, entries[i].Hash.Short())
		}
	}
	return out
}
