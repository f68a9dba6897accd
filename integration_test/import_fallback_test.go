package integration_test

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/caddy-session/caddy-session/session"
)

// importLines posts lines of an export file to /session/import with the
// query q and returns what the import did.
func importLines(t *testing.T, q, lines string) importAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/session/import%s", adminPort, q), strings.NewReader(lines+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	var got importAnswer
	doAPI(t, req).decode(t, http.StatusOK, &got)
	return got
}

type importAnswer struct {
	Imported, Unchanged, Kept int
	KeptHashes                []string `json:"kept_hashes"`
}

// TestImportDuringAMoveJudgesTheOldStoreToo: during a move
// (fallback_store), the admin API's store is the new one and the old one
// behind it: it lists, counts and revokes the sessions of both. An import
// judged what it replaces by the new store alone, so a session that was
// used in the old store since the export (a role taken away, a cart
// emptied) and not yet copied was replaced by the export's older copy
// without --overwrite, and reported as imported; and the old ID of a
// session renewed in the old store since (a forward record there) was
// stored again even though overwrite keeps a retired ID retired, opening
// the session for whoever holds the old cookie. An import must see what
// a request would open under each hash: the old store's session, or its
// forward record.
func TestImportDuringAMoveJudgesTheOldStoreToo(t *testing.T) {
	cases := []struct {
		name      string
		overwrite bool
		// since is what the old store's site does to the session after
		// the export, before the move.
		since []string
		renew bool
		// want is what the import did with the line, as importAnswer
		// counts it: imported, unchanged or kept (what the old store
		// holds).
		want string
		// oldCookie: what the old cookie opens afterwards ("" for
		// nothing), the value of X-Session-Role.
		oldCookie string
	}{
		{name: "a session changed since is kept", since: []string{"X-Session-Delete: role"}, want: "kept", oldCookie: "-"},
		{name: "a session changed since is replaced under overwrite", overwrite: true, since: []string{"X-Session-Delete: role"}, want: "imported", oldCookie: "admin"},
		{name: "a session unchanged since is unchanged", want: "unchanged", oldCookie: "admin"},
		{name: "a renewed ID stays retired", renew: true, want: "kept", oldCookie: ""},
		{name: "a renewed ID stays retired under overwrite", overwrite: true, renew: true, want: "kept", oldCookie: ""},
	}
	for _, move := range storeMoves {
		t.Run(move.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					from, to := move.from(t), move.to(t)
					s := newSiteOn(t, "store "+from, "")
					v := s.visitor()
					v.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Role: admin")
					sid := v.sid
					line := exportedLine(t, v)
					if len(tc.since) > 0 {
						v.get("/", tc.since...)
					}
					if tc.renew {
						v.get("/renew", "X-Session-Renew: true")
						if v.sid == sid {
							t.Fatal("the renewal issued no new cookie")
						}
					}

					s.store = "store " + to + "\n\t\tfallback_store " + from
					s.load()
					q := ""
					if tc.overwrite {
						q = "?overwrite=true"
					}
					got := importLines(t, q, line)
					want := importAnswer{KeptHashes: []string{}}
					switch tc.want {
					case "imported":
						want.Imported = 1
					case "unchanged":
						want.Unchanged = 1
					case "kept":
						want.Kept, want.KeptHashes = 1, []string{session.HashID(sid).Short()}
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("import = %+v, want %+v (the line %s)", got, want, tc.want)
					}

					old := &visitor{site: s, sid: sid}
					r := old.get("/whoami")
					seen := r.session()
					switch {
					case tc.oldCookie == "" && len(seen) != 0:
						t.Fatalf("the retired cookie opens %v after the import, want nothing", seen)
					case tc.oldCookie == "-" && seen["X-Session-Role"] != "":
						t.Fatalf("the old cookie opens %v after the import: the role taken away since the export is back", seen)
					case tc.oldCookie != "" && tc.oldCookie != "-" && seen["X-Session-Role"] != tc.oldCookie:
						t.Fatalf("the old cookie opens %v, want role %s", seen, tc.oldCookie)
					}
					if tc.renew {
						// The successor is the user's, untouched.
						expectUser(t, v, "alice")
					}
				})
			}
		})
	}
}
