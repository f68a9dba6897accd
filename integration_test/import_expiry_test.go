package integration_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
)

// TestImportOfASessionThatExpiresBetweenTheChecksAndItsBatch runs
// `caddy session import` on a file of two batches (1001 lines) against
// the Caddy of this process, through a proxy that moves the clock on
// between the command's dry run of every batch and its first real one,
// as time passes on a large import: the last line's session expires in
// between. Before, the second batch was refused after the first was
// stored, and the import could not be run again (the dry run refused the
// expired line), against the README's "a line the handler refuses stores
// nothing" and "an import can be run again". The real pass leaves out a
// session that expired since its check, which would never open, counts it,
// and stores the rest.
func TestImportOfASessionThatExpiresBetweenTheChecksAndItsBatch(t *testing.T) {
	s := newSite(t, "")
	v := login(t, s, "alice")
	var template map[string]any
	if err := json.Unmarshal([]byte(exportedLine(t, v)), &template); err != nil {
		t.Fatal(err)
	}
	// The sessions of the file: 1000 that live an hour more, and one that
	// expires in 10 minutes, each under a hash of its own.
	now := clock.Now().UTC()
	hashes := make([]string, 1001)
	var file strings.Builder
	for i := range hashes {
		hashes[i] = session.HashID(fmt.Sprintf("expiring-import-%d", i)).String()
		line := make(map[string]any, len(template))
		for k, val := range template {
			line[k] = val
		}
		idle := now.Add(time.Hour)
		if i == len(hashes)-1 {
			idle = now.Add(10 * time.Minute)
		}
		line["hash"], line["idle_deadline"] = hashes[i], idle.Format(time.RFC3339Nano)
		line["absolute_deadline"] = now.Add(2 * time.Hour).Format(time.RFC3339Nano)
		file.WriteString(mustJSON(line) + "\n")
	}
	input := filepath.Join(t.TempDir(), "sessions.jsonl")
	if err := os.WriteFile(input, []byte(file.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	// The proxy moves the clock 20 minutes on at the first request that
	// is not a dry run: after every batch was checked, before any is
	// stored.
	target, _ := url.Parse(fmt.Sprintf("http://localhost:%d", adminPort))
	proxy := httputil.NewSingleHostReverseProxy(target)
	director := proxy.Director
	var once sync.Once
	proxy.Director = func(r *http.Request) {
		director(r)
		r.Host = target.Host
		r.Header.Del("Origin")
		if r.URL.Path == "/session/import" && r.URL.Query().Get("dry_run") != "true" {
			once.Do(func() {
				clock.Advance(20 * time.Minute)
				t.Cleanup(func() { clock.Advance(-20 * time.Minute) })
			})
		}
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	admin, _ := strconv.Atoi(port)
	p := &process{t: t, admin: admin}

	var got struct {
		Imported, Unchanged, Kept, Expired int
		KeptHashes                         []string `json:"kept_hashes"`
	}
	okJSON(t, p, &got, "import", "--input", input)
	if got.Imported != 1000 || got.Expired != 1 || got.Kept != 0 {
		t.Fatalf("import = %+v, want 1000 imported and 1 expired since its check", got)
	}
	if a := sessionAPI(t, http.MethodGet, "/session/sessions/"+hashes[0], ""); a.status != http.StatusOK {
		t.Fatalf("GET the first imported session: %d %s", a.status, a.body)
	}
	if a := sessionAPI(t, http.MethodGet, "/session/sessions/"+hashes[1000], ""); a.status != http.StatusNotFound {
		t.Fatalf("GET the session that expired before its batch: %d %s, want 404", a.status, a.body)
	}
	// Run again, the expired line is refused by the dry run, before
	// anything is stored: skip_expired is for lines a dry run took.
	refused(t, p, "expired", "import", "--input", input)
}
