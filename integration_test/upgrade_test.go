package integration_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/session"
)

// upgradeID is the ID of the session in testdata/v1-sessions.db, which the
// store of the version before realms wrote (testdata/mkv1 says how).
const upgradeID = "v1UpgradeAliceSessionIDv1UpgradeAliceSessio"

// century keeps the stored session live whatever the test's clock says.
const century = "876000h"

// TestSessionsOfThePreviousVersionKeepWorking opens sessions stored by
// the version before realms and forward records, through a real Caddy: a
// browser that holds such a cookie stays logged in, its session takes
// writes (and the realm), and it logs out as any other.
func TestSessionsOfThePreviousVersionKeepWorking(t *testing.T) {
	t.Run("bolt", func(t *testing.T) {
		old, err := os.ReadFile(filepath.Join("testdata", "v1-sessions.db"))
		if err != nil {
			t.Fatal(err)
		}
		db := filepath.Join(t.TempDir(), "sessions.db")
		if err := os.WriteFile(db, old, 0o600); err != nil {
			t.Fatal(err)
		}
		s := newSiteOn(t, "store bolt "+db, "idle_timeout "+century+"\n\t\tabsolute_timeout "+century)
		upgraded(t, s)
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		writeLayout1(t, srv, upgradeID, map[string]string{"user": "alice", "cart": "apple"})
		s := newSiteOn(t, "store redis "+srv.URL(), "idle_timeout "+century+"\n\t\tabsolute_timeout "+century)
		upgraded(t, s)
	})
}

func upgraded(t *testing.T, s *site) {
	t.Helper()
	v := &visitor{site: s, sid: upgradeID}
	expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"})
	r := v.get("/", "X-Session-Set-Cart: pear")
	if c := r.sessionCookie(); c != nil {
		t.Fatalf("a write to an upgraded session changed its cookie: %v", c)
	}
	expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Cart": "pear"})
	r = v.get("/logout", "X-Session-Destroy: true")
	if c := r.sessionCookie(); c == nil || c.MaxAge >= 0 {
		t.Fatalf("the logout of an upgraded session did not expire the cookie: %v", c)
	}
	expectStatus(t, r, http.StatusOK)
	if got := sessionOf(t, s, "sid="+upgradeID); len(got) != 0 {
		t.Fatalf("the upgraded session outlived its logout: %v", got)
	}
}

// writeLayout1 stores a session as the Redis store of the version before
// realms wrote it (layout 1, with the default key prefix), written out
// field by field with raw commands rather than through today's encoder.
func writeLayout1(t *testing.T, srv *redistest.Server, id string, values map[string]string) {
	t.Helper()
	now := clock.Now()
	ns := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).UnixNano(), 10) }
	far := 100 * 365 * 24 * time.Hour
	h := session.HashID(id).String()
	hset := []string{"HSET", "caddy-session:{" + h + "}",
		":v", "1", ":created", ns(0), ":seen", ns(0), ":idle", ns(far), ":absolute", ns(far), ":rev", "1", ":identity", "user"}
	for k, v := range values {
		hset = append(hset, k, v)
	}
	sum := sha256.Sum256([]byte(values["user"]))
	for _, cmd := range [][]string{
		hset,
		{"ZADD", "caddy-session:sessions", "0", h},
		{"SADD", "caddy-session:identity:user:" + hex.EncodeToString(sum[:]), h},
	} {
		reply, err := srv.Do(cmd...)
		if err != nil || !strings.HasPrefix(reply, ":") {
			t.Fatalf("redis %s: %q, %v", cmd[0], reply, err)
		}
	}
}
