package integration_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestImportRefusalsKeepTheLineOutOfTheLog sends POST /session/import
// lines of an export file that it must refuse, each holding a session
// value (or, where the hash goes, a raw ID) that the refusal's message
// quotes, so that the operator sees what is wrong. The answer says so,
// naming the line; Caddy's log must not: Caddy logs every error a
// handler of the admin API returns at error level, with its message, and
// SECURITY.md promises that logs never hold a raw ID, nor session values
// at info level or above.
func TestImportRefusalsKeepTheLineOutOfTheLog(t *testing.T) {
	s, logFile := newLoggedSite(t, "")
	v := s.visitor()
	v.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Cart: apple")
	var exported map[string]any
	if err := json.Unmarshal([]byte(exportedLine(t, v)), &exported); err != nil {
		t.Fatal(err)
	}
	// line is the exported line, changed by edit.
	line := func(edit func(l map[string]any)) string {
		var l map[string]any
		if err := json.Unmarshal([]byte(mustJSON(exported)), &l); err != nil {
			t.Fatal(err)
		}
		edit(l)
		return mustJSON(l)
	}
	values := func(l map[string]any) map[string]any { return l["values"].(map[string]any) }
	rows := []struct {
		name, line, want string
		// leaked is what no log line at info or above may hold.
		leaked string
	}{
		{"a value in the bytes form that is UTF-8 text", line(func(l map[string]any) {
			l["v"] = 3
			values(l)["cart"] = map[string]any{"base64": base64.StdEncoding.EncodeToString([]byte("s3cr3t-in-base64"))}
		}), "is written as the JSON string", "s3cr3t-in-base64"},
		{"a value as an array", line(func(l map[string]any) {
			values(l)["cart"] = []string{"s3cr3t-in-an-array"}
		}), `a string is a JSON string`, "s3cr3t-in-an-array"},
		{"a value as an object", line(func(l map[string]any) {
			l["v"] = 3
			values(l)["cart"] = map[string]any{"text": "s3cr3t-in-an-object"}
		}), `with no field "text"`, "s3cr3t-in-an-object"},
		{"a flash value as a number", line(func(l map[string]any) {
			l["flash"] = map[string]any{"notice": 4111111111111111}
		}), `a string is a JSON string`, "4111111111111111"},
		{"the raw ID where the hash goes", line(func(l map[string]any) {
			l["hash"] = v.sid
		}), `"hash"`, v.sid},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			var e struct{ Error string }
			sessionAPIAs(t, http.MethodPost, "/session/import?line=7", "application/x-ndjson", row.line+"\n").decode(t, http.StatusBadRequest, &e)
			if !strings.Contains(e.Error, "line 7") || !strings.Contains(e.Error, row.want) {
				t.Errorf("error %q does not name line 7 and say %q", e.Error, row.want)
			}
		})
	}
	// The session stands as it was: nothing of a refused body is stored.
	expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"})

	// A line that is right still imports: the refusals' log lines are
	// written before its, so the log read below holds them all.
	var got struct {
		Imported, Unchanged, Kept int
		KeptHashes                []string `json:"kept_hashes"`
	}
	sessionAPIAs(t, http.MethodPost, "/session/import", "application/x-ndjson", mustJSON(exported)+"\n").decode(t, http.StatusOK, &got)
	if got.Unchanged != 1 {
		t.Fatalf("import of the exported line = %+v, want it unchanged", got)
	}
	waitForText(t, logFile, "sessions imported through the admin API")

	refusals := 0
	for _, l := range readLog(t, logFile) {
		if l.str("logger") == "events" || l.str("logger") == "admin.api" && l.str("msg") == "received request" {
			continue
		}
		if strings.Contains(l.raw, "line 7") || strings.Contains(l.raw, `"line":7`) {
			refusals++
		}
		for _, row := range rows {
			raw := row.leaked == v.sid
			if strings.Contains(l.raw, row.leaked) && (raw || l.str("level") != "debug") {
				t.Errorf("%s: a log line at %s holds what the refused line held: %s", row.name, l.str("level"), l.raw)
			}
		}
	}
	if refusals < len(rows) {
		t.Errorf("%d log lines tell of a refused import of line 7, want %d; log:\n%s", refusals, len(rows), mustRead(t, logFile))
	}
}
