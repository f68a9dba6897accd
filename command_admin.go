package caddysession

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-session/caddy-session/session"
)

// The subcommands of `caddy session` that work through the admin API
// alone: list, show, revoke and count.

func listCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "list [--limit <n>] [--cursor <cursor>] [--values]",
		Short: "Lists the live sessions, a page at a time",
		Long: `
Lists the live sessions of the store, in the order of their hashes, at most
--limit of them (default 100, at most 1000). When more follow, it says how
to ask for the next page (--cursor). --values shows each session's values
as well as its keys.
`,
		Args: cobra.NoArgs,
		RunE: caddycmd.WrapCommandFuncForCobra(cmdSessionList),
	}
	c.Flags().Int("limit", defaultListLimit, "Most sessions to list")
	c.Flags().String("cursor", "", "Where to start: the next cursor of the previous page")
	c.Flags().Bool("values", false, "Show the sessions' values")
	return c
}

func showCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "show <hash> [--values]",
		Short: "Shows one session",
		Long: `
Shows the session whose hash is <hash> (64 hex digits, as 'list' shows
them): its realm, times and keys, and with --values its values.
`,
		Args: cobra.ExactArgs(1),
		RunE: caddycmd.WrapCommandFuncForCobra(cmdSessionShow),
	}
	c.Flags().Bool("values", false, "Show the session's values")
	return c
}

func revokeCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "revoke <hash> | --user <value> [--key <key>] [--realm <realm>]",
		Short: "Ends one session, or every session of a user",
		Long: `
Ends the session whose hash is <hash>, or with --user every session whose
identity key (identity_key or the first renew_on key, usually user) has
that value, as a password reset needs. --realm names the realm when several
sites share the store, --key the identity key when the realm's handlers
have several. The user's value is sent in the request's
body, never in its URL, so Caddy's logs do not hold it.
`,
		Args: cobra.MaximumNArgs(1),
		RunE: caddycmd.WrapCommandFuncForCobra(cmdSessionRevoke),
	}
	c.Flags().String("user", "", "Value of the identity key whose sessions to end")
	c.Flags().String("key", "", "Identity key (default: the realm's)")
	c.Flags().String("realm", "", "Realm to revoke in (default: the store's only one)")
	return c
}

func countCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "count",
		Short: "Counts the live sessions of each store",
		Args:  cobra.NoArgs,
		RunE:  caddycmd.WrapCommandFuncForCobra(cmdSessionCount),
	}
}

func cmdSessionList(fl caddycmd.Flags) (int, error) {
	limit, _ := fl.GetInt("limit")
	q := storeQuery(fl)
	q.Set("limit", strconv.Itoa(limit))
	if c := fl.String("cursor"); c != "" {
		q.Set("cursor", c)
	}
	if fl.Bool("values") {
		q.Set("values", "true")
	}
	var page listView
	if err := adminCall(fl, http.MethodGet, adminSessionsPath, q, nil, "", &page); err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if fl.Bool("json") {
		return printJSON(page)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "HASH\tREALM\tCREATED\tLAST SEEN\tEXPIRES\tREMEMBERED\tKEYS")
	for _, s := range page.Sessions {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Hash, orNone(s.Realm), when(s.Created), when(s.LastSeen),
			when(expiresAt(s)), yesNo(s.Remembered), keysOf(s, fl.Bool("values")))
	}
	if err := w.Flush(); err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if len(page.Sessions) == 0 {
		fmt.Println("no live sessions")
	}
	if page.NextCursor != "" {
		fmt.Printf("more follow: caddy session list --cursor %s\n", page.NextCursor)
	}
	return caddy.ExitCodeSuccess, nil
}

func cmdSessionShow(fl caddycmd.Flags) (int, error) {
	hash, err := hashArg(fl.Arg(0))
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	q := storeQuery(fl)
	if fl.Bool("values") {
		q.Set("values", "true")
	}
	var s sessionView
	if err := adminCall(fl, http.MethodGet, adminSessionsPath+"/"+hash.String(), q, nil, "", &s); err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if fl.Bool("json") {
		return printJSON(s)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "hash\t%s\n", s.Hash)
	fmt.Fprintf(w, "realm\t%s\n", orNone(s.Realm))
	fmt.Fprintf(w, "created\t%s\n", when(s.Created))
	fmt.Fprintf(w, "last seen\t%s\n", when(s.LastSeen))
	fmt.Fprintf(w, "idle deadline\t%s\n", when(s.IdleDeadline))
	fmt.Fprintf(w, "absolute deadline\t%s\n", when(s.AbsoluteDeadline))
	fmt.Fprintf(w, "remembered\t%s\n", yesNo(s.Remembered))
	if s.Values == nil {
		fmt.Fprintf(w, "keys\t%s\n", keysOf(s, false))
	} else {
		fmt.Fprintf(w, "values\t\n")
		for _, k := range s.Keys {
			fmt.Fprintf(w, "  %s\t%s\n", k, s.Values[k])
		}
	}
	if err := w.Flush(); err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	return caddy.ExitCodeSuccess, nil
}

func cmdSessionRevoke(fl caddycmd.Flags) (int, error) {
	user, key, realm := fl.String("user"), fl.String("key"), fl.String("realm")
	byUser := fl.Changed("user")
	var out revokedView
	switch {
	case byUser && fl.NArg() > 0:
		return caddy.ExitCodeFailedStartup, errors.New("give a session's hash or --user, not both")
	case !byUser && fl.NArg() == 0:
		return caddy.ExitCodeFailedStartup, errors.New("give the hash of the session to revoke, or --user <value> to revoke every session of a user")
	case !byUser && (key != "" || realm != ""):
		return caddy.ExitCodeFailedStartup, errors.New("--key and --realm go with --user")
	case byUser:
		if user == "" {
			return caddy.ExitCodeFailedStartup, errors.New("--user is empty: give the value of the identity key, such as the user name")
		}
		body := map[string]string{"value": user}
		if key != "" {
			body["key"] = key
		}
		if realm != "" {
			body["realm"] = realm
		}
		b, err := json.Marshal(body)
		if err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		if err := adminCall(fl, http.MethodPost, adminRevokePath, storeQuery(fl), bytes.NewReader(b), "application/json", &out); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
	default:
		hash, err := hashArg(fl.Arg(0))
		if err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		if err := adminCall(fl, http.MethodDelete, adminSessionsPath+"/"+hash.String(), storeQuery(fl), nil, "", &out); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
	}
	if fl.Bool("json") {
		return printJSON(out)
	}
	fmt.Printf("revoked %d %s\n", out.Revoked, plural(out.Revoked, "session", "sessions"))
	return caddy.ExitCodeSuccess, nil
}

func cmdSessionCount(fl caddycmd.Flags) (int, error) {
	var stores []storeView
	if err := adminCall(fl, http.MethodGet, adminStoresPath, nil, nil, "", &stores); err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if name := fl.String("store"); name != "" {
		var only []storeView
		for _, s := range stores {
			if s.Name == name {
				only = append(only, s)
			}
		}
		if len(only) == 0 {
			return caddy.ExitCodeFailedStartup, fmt.Errorf("no live session store is named %q: leave out --store to count them all", name)
		}
		stores = only
	}
	if fl.Bool("json") {
		return printJSON(stores)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "STORE\tBACKEND\tSESSIONS")
	for _, s := range stores {
		fmt.Fprintf(w, "%s\t%s\t%d\n", s.Name, s.Backend, s.Sessions)
	}
	if err := w.Flush(); err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	return caddy.ExitCodeSuccess, nil
}

// adminCall makes a request of the admin API at the address the flags
// give, as caddy reload finds it, and decodes its JSON answer into out.
func adminCall(fl caddycmd.Flags, method, path string, q url.Values, body io.Reader, contentType string, out any) error {
	addr, err := caddycmd.DetermineAdminAPIAddress(fl.String("address"), nil, fl.String("config"), fl.String("adapter"))
	if err != nil {
		return fmt.Errorf("finding the admin API's address: %v", err)
	}
	uri := path
	if len(q) > 0 {
		uri += "?" + q.Encode()
	}
	var headers http.Header
	if contentType != "" {
		headers = http.Header{"Content-Type": {contentType}}
	}
	res, err := caddycmd.AdminAPIRequest(addr, method, uri, headers, body)
	if err != nil {
		return fmt.Errorf("%s %s at %s: %v", method, path, addr, err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s at %s: reading the answer: %v", method, path, addr, err)
	}
	return nil
}

// storeQuery is the query naming the store of --store, if given.
func storeQuery(fl caddycmd.Flags) url.Values {
	q := url.Values{}
	if s := fl.String("store"); s != "" {
		q.Set("store", s)
	}
	return q
}

func hashArg(s string) (session.Hash, error) {
	h, err := session.ParseHash(strings.TrimSpace(s))
	if err != nil {
		return h, fmt.Errorf("%q is not a session hash: %v, as caddy session list shows them", s, err)
	}
	return h, nil
}

func printJSON(v any) (int, error) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	return caddy.ExitCodeSuccess, nil
}

func when(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

func expiresAt(s sessionView) time.Time {
	if s.IdleDeadline.Before(s.AbsoluteDeadline) {
		return s.IdleDeadline
	}
	return s.AbsoluteDeadline
}

func keysOf(s sessionView, values bool) string {
	if len(s.Keys) == 0 {
		return "-"
	}
	if !values {
		return strings.Join(s.Keys, ",")
	}
	pairs := make([]string, len(s.Keys))
	for i, k := range s.Keys {
		pairs[i] = k + "=" + strconv.Quote(s.Values[k])
	}
	return strings.Join(pairs, " ")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
