package integration_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-session/caddy-session/session"
)

// exportedLine is the export line of the session v holds, read through
// GET /session/export.
func exportedLine(t *testing.T, v *visitor) string {
	t.Helper()
	a := sessionAPI(t, http.MethodGet, "/session/export", "")
	var page struct {
		Sessions   []map[string]any `json:"sessions"`
		NextCursor string           `json:"next_cursor"`
	}
	a.decode(t, http.StatusOK, &page)
	want := session.HashID(v.sid).String()
	for i, s := range page.Sessions {
		if s["hash"] == want {
			return mustJSON(page.Sessions[i])
		}
	}
	t.Fatalf("GET /session/export has no session %s: %s", want[:16], a.body)
	return ""
}

// TestAdminTransferRefusesBadInput sends the export and import endpoints
// requests they must refuse, one per row: each gets a clear status and
// message, and nothing is imported.
func TestAdminTransferRefusesBadInput(t *testing.T) {
	s := newSite(t, "")
	v := s.visitor()
	v.get("/login", "X-Session-Set-User: alice")
	line := exportedLine(t, v)
	// The session is gone; each refused import must leave it so.
	sessionAPI(t, http.MethodDelete, "/session/sessions/"+session.HashID(v.sid).String(), "").decode(t, http.StatusOK, &struct{ Revoked int }{})

	cases := []struct {
		name, method, path, contentType, body string
		status                                int
		want                                  string
	}{
		{"GET import", "GET", "/session/import", "", "", 405, "use POST"},
		{"POST export", "POST", "/session/export", "application/json", "", 405, "use GET"},
		{"no content type", "POST", "/session/import", "", line, 415, "application/x-ndjson"},
		{"form post", "POST", "/session/import", "application/x-www-form-urlencoded", line, 415, "application/x-ndjson"},
		{"latin-1", "POST", "/session/import", "application/x-ndjson; charset=latin1", line, 415, "UTF-8"},
		{"misspelled parameter", "POST", "/session/import?overwrit=true", "application/x-ndjson", line, 400, `unknown query parameter "overwrit"`},
		{"bad overwrite", "POST", "/session/import?overwrite=yes%20please", "application/x-ndjson", line, 400, "true or false"},
		{"bad skip_expired", "POST", "/session/import?skip_expired=maybe", "application/x-ndjson", line, 400, "true or false"},
		{"bad line number", "POST", "/session/import?line=0", "application/x-ndjson", line, 400, "from 1"},
		{"line numbers from the query", "POST", "/session/import?line=41", "application/x-ndjson", line + "\n{", 400, "line 42"},
		{"unknown store", "POST", "/session/import?store=nowhere", "application/x-ndjson", line, 404, "no live session store"},
		{"export limit zero", "GET", "/session/export?limit=0", "", "", 400, "from 1 to 10000"},
		{"export bad cursor", "GET", "/session/export?cursor=page2", "", "", 400, "next_cursor"},
		{"dry run imports nothing", "POST", "/session/import?dry_run=true", "application/x-ndjson", line, 200, ""},
		{"charset in any case", "POST", "/session/import?dry_run=true", "application/x-ndjson; charset=Utf-8", line, 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body *strings.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			} else {
				body = strings.NewReader("")
			}
			req, err := http.NewRequest(c.method, fmt.Sprintf("http://localhost:%d%s", adminPort, c.path), body)
			if err != nil {
				t.Fatal(err)
			}
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			a := doAPI(t, req)
			if c.status == 200 {
				var got struct {
					Imported, Unchanged, Kept int
					KeptHashes                []string `json:"kept_hashes"`
				}
				a.decode(t, 200, &got)
				if got.Imported != 0 {
					t.Fatalf("a dry run imported %d", got.Imported)
				}
				return
			}
			var e struct{ Error string }
			a.decode(t, c.status, &e)
			if !strings.Contains(e.Error, c.want) {
				t.Errorf("error %q does not say %q", e.Error, c.want)
			}
		})
	}
	expectSession(t, v.get("/"), map[string]string{})

	// The same line, sent right, brings the session back.
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/session/import", adminPort), strings.NewReader(line+"\n"))
	req.Header.Set("Content-Type", "application/x-ndjson")
	var got struct {
		Imported, Unchanged, Kept int
		KeptHashes                []string `json:"kept_hashes"`
	}
	doAPI(t, req).decode(t, http.StatusOK, &got)
	if got.Imported != 1 {
		t.Fatalf("import = %+v", got)
	}
	expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice"})
}

// TestImportWithOverwriteKeepsARetiredID exports a session, renews it
// (the app gives it a new ID, as after a privilege change), and imports
// the export again with overwrite=true, as an operator restoring a
// backup does while the site serves: the old ID holds a forward record,
// which overwrite must not replace with the exported session, or the
// cookie the renewal retired (a stolen or fixed one) opens the user's
// session again, beside the successor the user holds.
func TestImportWithOverwriteKeepsARetiredID(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s := newSite(t, "")
		v := login(t, s, "alice")
		retired := v.sid
		line := exportedLine(t, v)
		expectStatus(t, v.get("/renew", "X-Session-Renew: true"), http.StatusOK)
		if v.sid == retired {
			t.Fatal("the renewal gave no new ID")
		}
		for _, overwrite := range []string{"false", "true"} {
			var got struct {
				Imported, Unchanged, Kept int
				KeptHashes                []string `json:"kept_hashes"`
			}
			sessionAPIAs(t, http.MethodPost, "/session/import?overwrite="+overwrite, "application/x-ndjson", line+"\n").decode(t, http.StatusOK, &got)
			if got.Imported != 0 || got.Kept != 1 {
				t.Fatalf("import with overwrite=%s over the retired ID = %+v, want it kept", overwrite, got)
			}
			if got := sessionWith(t, s, retired); len(got) != 0 {
				t.Fatalf("after an import with overwrite=%s, the retired ID opens %v", overwrite, got)
			}
			expectUser(t, v, "alice")
		}
	})
}
