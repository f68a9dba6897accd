package caddysession

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
	"github.com/caddy-session/caddy-session/store/bolt"
	"github.com/caddy-session/caddy-session/store/transfer"
)

// The subcommands of `caddy session` that move sessions whole: export and
// import, through the admin API or offline on a bolt file.

// importBatch is how many lines one POST /session/import carries.
const importBatch = 1000

// boltLockWait is how long the offline subcommands wait for the lock of a
// bolt file before they say a running Caddy holds it.
const boltLockWait = time.Second

func exportCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "export --output <file> [--bolt <file>]",
		Short: "Writes every live session to a file, one JSON line each",
		Long: `
Writes every live session of the store to --output (- for standard output),
one JSON line per session, with everything the store keeps of it: hash,
realm, times and deadlines, remember-me, flash values, user agent, identity
key and values. The file is created with mode 0600, and never over an
existing one: it holds what the application keeps about its users, and its
hashes open their sessions once imported.

Through the admin API by default. With --bolt, it reads the bolt file
offline instead, which no running Caddy may hold; sessions are then judged
live by their stored deadlines alone, not by the config's timeouts.
`,
		Args: cobra.NoArgs,
		RunE: caddycmd.WrapCommandFuncForCobra(cmdSessionExport),
	}
	c.Flags().StringP("output", "o", "", "File to write (required; - for standard output)")
	c.Flags().String("bolt", "", "Bolt file to read offline, instead of the admin API")
	return c
}

func importCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "import --input <file> [--overwrite] [--bolt <file>]",
		Short: "Stores the sessions of an export file, so that their cookies keep working",
		Long: `
Stores the sessions of --input (- for standard input), a file that
'caddy session export' wrote, each as it was: under its hash, with its
deadlines, realm, metadata and identity key, so that the cookies issued
before keep opening their sessions, and revocation by user finds them.

Every line is checked before anything is stored: a line that is malformed,
expired, a forward record, over the handler's limits, or of a realm the
store's handlers do not serve refuses the import, and the error names the
line. A session already stored as in the file is left alone (running an
import again is harmless); one that differs is kept, and reported, unless
--overwrite.

Through the admin API by default, on the path /session/import, which the
admin API's access rules can leave out: an import plants any session it is
given. With --bolt, it writes the bolt file offline instead, creating it if
needed; no running Caddy may hold it. Offline, the limits are the defaults
unless --max-keys, --max-value-size and --max-session-size give the
config's.
`,
		Args: cobra.NoArgs,
		RunE: caddycmd.WrapCommandFuncForCobra(cmdSessionImport),
	}
	c.Flags().StringP("input", "i", "", "File to read (required; - for standard input)")
	c.Flags().Bool("overwrite", false, "Replace live sessions that differ from the file's")
	c.Flags().String("bolt", "", "Bolt file to write offline, instead of the admin API")
	c.Flags().Int("max-keys", session.DefaultMaxKeys, "Offline: max_keys of the config")
	c.Flags().Int("max-value-size", session.DefaultValueSize, "Offline: max_value_size of the config, in bytes")
	c.Flags().Int("max-session-size", session.DefaultSessionSize, "Offline: max_session_size of the config, in bytes")
	return c
}

func cmdSessionExport(fl caddycmd.Flags) (int, error) {
	output := fl.String("output")
	if output == "" {
		return caddy.ExitCodeFailedStartup, errors.New("--output is required: the file to write, or - for standard output")
	}
	var (
		next func(cursor string) ([]store.Entry, string, error)
		done = func() {}
	)
	if path := fl.String("bolt"); path != "" {
		if fl.Changed("store") || fl.Changed("address") {
			return caddy.ExitCodeFailedStartup, errors.New("--bolt reads the file offline: leave out --store and --address")
		}
		if _, err := os.Stat(path); err != nil {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("bolt file: %v", err)
		}
		s, err := openOffline(path)
		if err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		done = func() { _ = s.Close() }
		now := time.Now()
		next = func(cursor string) ([]store.Entry, string, error) {
			return s.List(context.Background(), cursor, defaultExportLimit, now)
		}
	} else {
		next = func(cursor string) ([]store.Entry, string, error) {
			q := storeQuery(fl)
			q.Set("limit", strconv.Itoa(defaultExportLimit))
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			var page exportView
			if err := adminCall(fl, http.MethodGet, adminExportPath, q, nil, "", &page); err != nil {
				return nil, "", err
			}
			entries := make([]store.Entry, len(page.Sessions))
			for i, l := range page.Sessions {
				e, err := l.Entry()
				if err != nil {
					return nil, "", fmt.Errorf("the admin API sent a session this command cannot read: %v", err)
				}
				entries[i] = e
			}
			return entries, page.NextCursor, nil
		}
	}
	defer done()

	out, finish, err := createOutput(output)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	w := bufio.NewWriter(out)
	n := 0
	for cursor := ""; ; {
		entries, c, err := next(cursor)
		if err != nil {
			finish(false)
			return caddy.ExitCodeFailedStartup, fmt.Errorf("exporting sessions (%d written, file removed): %v", n, err)
		}
		for _, e := range entries {
			if err := transfer.Write(w, e); err != nil {
				finish(false)
				return caddy.ExitCodeFailedStartup, fmt.Errorf("writing %s: %v", output, err)
			}
			n++
		}
		if cursor = c; cursor == "" {
			break
		}
	}
	if err := w.Flush(); err != nil {
		finish(false)
		return caddy.ExitCodeFailedStartup, fmt.Errorf("writing %s: %v", output, err)
	}
	if err := finish(true); err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("writing %s: %v", output, err)
	}
	return report(fl, output == "-", struct {
		Exported int `json:"exported"`
	}{n}, fmt.Sprintf("exported %d %s to %s", n, plural(n, "session", "sessions"), output))
}

// createOutput opens the file an export writes: standard output for -,
// else a new file of mode 0600, never one that exists. finish closes it,
// and removes it when the export failed.
func createOutput(path string) (io.Writer, func(ok bool) error, error) {
	if path == "-" {
		return os.Stdout, func(bool) error { return nil }, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, nil, fmt.Errorf("%s exists: an export never writes over a file; remove it or give another --output", path)
	}
	if err != nil {
		return nil, nil, err
	}
	return f, func(ok bool) error {
		err := f.Close()
		if !ok || err != nil {
			_ = os.Remove(path)
		}
		return err
	}, nil
}

func cmdSessionImport(fl caddycmd.Flags) (int, error) {
	input := fl.String("input")
	if input == "" {
		return caddy.ExitCodeFailedStartup, errors.New("--input is required: the file caddy session export wrote, or - for standard input")
	}
	in := io.Reader(os.Stdin)
	if input != "-" {
		f, err := os.Open(input)
		if err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		defer f.Close()
		in = f
	}
	// The whole file is read and checked before anything is stored.
	lines, err := readImport(in, time.Now())
	if err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("%s: nothing imported: %v", input, err)
	}
	var out importView
	if path := fl.String("bolt"); path != "" {
		if fl.Changed("store") || fl.Changed("address") {
			return caddy.ExitCodeFailedStartup, errors.New("--bolt writes the file offline: leave out --store and --address")
		}
		out, err = importOffline(fl, path, lines)
	} else {
		out, err = importOnline(fl, lines)
	}
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	msg := fmt.Sprintf("imported %d %s, %d unchanged", out.Imported, plural(out.Imported, "session", "sessions"), out.Unchanged)
	if out.Expired > 0 {
		msg += fmt.Sprintf(", %d expired since the file was checked, left out", out.Expired)
	}
	if out.Kept > 0 {
		msg += fmt.Sprintf(", %d kept: a different live session is stored under the same hash (--overwrite replaces it): %v", out.Kept, out.KeptHashes)
	}
	return report(fl, false, out, msg)
}

// importLine is one session of the file, as read and as it came.
type importLine struct {
	number int
	raw    []byte
	entry  store.Entry
}

// readImport reads every line of an export file and checks what can be
// checked without the store: form, expiry at now, forward records.
func readImport(in io.Reader, now time.Time) ([]importLine, error) {
	var lines []importLine
	rd := transfer.NewReader(in, 1)
	for {
		e, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return lines, nil
		}
		if err != nil {
			return nil, err
		}
		if err := store.CheckImport(e, now, session.Limits{}); err != nil {
			return nil, &transfer.LineError{Line: rd.Line(), Err: err}
		}
		raw := new(bytes.Buffer)
		if err := transfer.Write(raw, e); err != nil {
			return nil, err
		}
		lines = append(lines, importLine{number: rd.Line(), raw: raw.Bytes(), entry: e})
	}
}

// importOnline sends the lines to the admin API in batches, each with the
// number of its first line so that an error names the file's line: first
// every batch as a dry run, which the handler checks against its limits
// and realms, then every batch for real, so that a bad line stores
// nothing of the file.
func importOnline(fl caddycmd.Flags, lines []importLine) (importView, error) {
	total := importView{KeptHashes: []string{}}
	for _, dryRun := range []bool{true, false} {
		for start := 0; start < len(lines); start += importBatch {
			batch := lines[start:min(start+importBatch, len(lines))]
			var body bytes.Buffer
			for _, l := range batch {
				body.Write(l.raw)
			}
			q := storeQuery(fl)
			q.Set("line", strconv.Itoa(batch[0].number))
			if fl.Bool("overwrite") {
				q.Set("overwrite", "true")
			}
			if dryRun {
				q.Set("dry_run", "true")
			} else {
				// Every line passed the dry run; one that has expired
				// since (a large import takes a while) is left out and
				// counted, rather than refuse its batch after the
				// batches before it were stored.
				q.Set("skip_expired", "true")
			}
			var got importView
			if err := adminCall(fl, http.MethodPost, adminImportPath, q, &body, linesContentType, &got); err != nil {
				switch {
				case dryRun:
					return total, fmt.Errorf("nothing imported: %v", err)
				case start > 0:
					return total, fmt.Errorf("importing (the sessions before line %d are imported: run the import again, and they will be unchanged): %v", batch[0].number, err)
				}
				return total, fmt.Errorf("importing: %v", err)
			}
			total.Imported += got.Imported
			total.Unchanged += got.Unchanged
			total.Kept += got.Kept
			total.Expired += got.Expired
			total.KeptHashes = append(total.KeptHashes, got.KeptHashes...)
		}
	}
	return total, nil
}

// importOffline stores the lines in the bolt file at path.
func importOffline(fl caddycmd.Flags, path string, lines []importLine) (importView, error) {
	lim := session.Limits{}
	lim.Keys, _ = fl.GetInt("max-keys")
	lim.ValueSize, _ = fl.GetInt("max-value-size")
	lim.SessionSize, _ = fl.GetInt("max-session-size")
	imp := store.Import{Now: time.Now(), Overwrite: fl.Bool("overwrite"), Limits: lim}
	for _, l := range lines {
		if err := store.CheckImport(l.entry, imp.Now, lim); err != nil {
			return importView{}, fmt.Errorf("nothing imported: line %d: %v", l.number, err)
		}
		imp.Entries = append(imp.Entries, l.entry)
	}
	s, err := openOffline(path)
	if err != nil {
		return importView{}, err
	}
	statuses, err := s.Import(context.Background(), imp)
	if cerr := s.Close(); err == nil && cerr != nil {
		err = cerr
	}
	var refused *store.ImportError
	if errors.As(err, &refused) {
		return importView{}, fmt.Errorf("nothing imported: line %d: %v", lines[refused.Index].number, refused.Err)
	}
	if err != nil {
		return importView{}, fmt.Errorf("importing into %s: %v", path, err)
	}
	out := tallyImport(imp.Entries, statuses)
	return out, nil
}

// openOffline opens a bolt file that no Caddy holds, or says that one
// does.
func openOffline(path string) (*bolt.Store, error) {
	s, err := bolt.Open(path, bolt.Options{LockTimeout: boltLockWait, SweepInterval: -1})
	if err != nil {
		return nil, fmt.Errorf("%v; to work on the sessions of a running Caddy, leave out --bolt and go through its admin API", err)
	}
	return s, nil
}

// report prints the outcome of a subcommand: JSON with --json, else msg,
// on standard error when standard output carries the data.
func report(fl caddycmd.Flags, toStderr bool, v any, msg string) (int, error) {
	w := os.Stdout
	if toStderr {
		w = os.Stderr
	}
	if fl.Bool("json") {
		b, err := json.Marshal(v)
		if err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		fmt.Fprintln(w, string(b))
		return caddy.ExitCodeSuccess, nil
	}
	fmt.Fprintln(w, msg)
	return caddy.ExitCodeSuccess, nil
}
