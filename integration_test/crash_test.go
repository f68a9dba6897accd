package integration_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/caddy-session/caddy-session/session"
)

// checkBoltFile opens a bolt session file that no process holds and runs
// bbolt's consistency check on it. It also checks, from the outside, that
// each session has its one expiry index entry and its one identity index
// entry (every session of the crash test has a user), and returns the
// hashes of the sessions it holds.
func checkBoltFile(t *testing.T, path string) map[session.Hash]bool {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("opening %s after the crash: %v", path, err)
	}
	defer db.Close()
	hashes := map[session.Hash]bool{}
	err = db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check of %s: %v", path, err)
		}
		sessions, expiry, identity := tx.Bucket([]byte("sessions")), tx.Bucket([]byte("expiry")), tx.Bucket([]byte("identity"))
		if sessions == nil || expiry == nil || identity == nil {
			return fmt.Errorf("a bucket is missing")
		}
		err := sessions.ForEach(func(k, _ []byte) error {
			var h session.Hash
			if len(k) != len(h) {
				return fmt.Errorf("session key %x is not a hash", k)
			}
			copy(h[:], k)
			hashes[h] = true
			return nil
		})
		if err != nil {
			return err
		}
		if n, m := expiry.Stats().KeyN, identity.Stats().KeyN; n != len(hashes) || m != len(hashes) {
			t.Errorf("%d sessions, but %d expiry and %d identity index entries", len(hashes), n, m)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return hashes
}

// TestCrashMidLoginStorm runs a storm of logins against the Caddy binary,
// kills it with SIGKILL in the middle, and restarts it on the same bolt
// file: every login whose response reached its client (status and session
// cookie received) is a session that opens, as the user it set, and the
// file passes bbolt's consistency check, before and after the restart. The
// file keeps each session under the hash of its ID, never the ID.
func TestCrashMidLoginStorm(t *testing.T) {
	slow(t, "a storm of logins against the Caddy binary, killed and restarted")
	const (
		clients   = 32
		perClient = 40 // at most 1280 logins; the kill comes long before
		killAfter = 200
	)
	up := startUpstream(t)
	p, port, db := startBoltCaddy(t, up)

	var (
		mu        sync.Mutex
		completed []userSession
		count     atomic.Int64
		failed    atomic.Int64 // requests cut off by the kill
		reached   = make(chan struct{})
		wg        sync.WaitGroup
	)
	url := fmt.Sprintf("http://127.0.0.1:%d/login", port)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			for i := range perClient {
				user := fmt.Sprintf("user-%d-%d", c, i)
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				req.Header.Set("Test-Header", "X-Session-Set-User: "+user)
				res, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					return // Caddy is gone
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				var sid string
				for _, ck := range res.Cookies() {
					if ck.Name == "sid" {
						sid = ck.Value
					}
				}
				if res.StatusCode != http.StatusOK || sid == "" {
					t.Errorf("login %s: status %d, cookie %q", user, res.StatusCode, sid)
					return
				}
				// The response reached the client: this session must last.
				mu.Lock()
				completed = append(completed, userSession{user, sid})
				mu.Unlock()
				if count.Add(1) == killAfter {
					close(reached)
				}
			}
		}()
	}
	select {
	case <-reached:
	case <-time.After(60 * time.Second):
		t.Fatalf("only %d logins in a minute", count.Load())
	}
	p.kill() // SIGKILL, while the other clients' logins are in flight
	wg.Wait()
	if failed.Load() == 0 {
		t.Fatal("every client finished before the kill: the storm was not interrupted")
	}
	t.Logf("%d logins completed, %d requests cut off by SIGKILL", len(completed), failed.Load())

	// The file as the crash left it: every answered login is in it, under
	// the hash of its ID; no ID is in it.
	stored := checkBoltFile(t, db)
	raw, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range completed {
		if !stored[session.HashID(l.sid)] {
			t.Errorf("the session of %s, whose login reached the client, is not in the file", l.user)
		}
		if bytes.Contains(raw, []byte(l.sid)) {
			t.Errorf("the file holds the raw session ID of %s", l.user)
		}
	}

	// Restart on the same file: every completed login opens its session.
	p.start()
	waitPort(t, port)
	checkSessions(t, port, completed)
	p.stop()
	checkBoltFile(t, db)
}

// userSession is a session ID and the user its session must hold.
type userSession struct{ user, sid string }

// checkSessions asks Caddy on port, a few at a time, for the session of
// each ID and checks that the upstream sees its user.
func checkSessions(t *testing.T, port int, sessions []userSession) {
	t.Helper()
	work := make(chan userSession)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for l := range work {
				req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/whoami", port), nil)
				req.Header.Set("Cookie", "sid="+l.sid)
				res, err := client.Do(req)
				if err != nil {
					t.Errorf("%s: %v", l.user, err)
					continue
				}
				var saw seen
				err = json.NewDecoder(res.Body).Decode(&saw)
				res.Body.Close()
				if got := saw.Headers.Get("X-Session-User"); err != nil || res.StatusCode != http.StatusOK || got != l.user {
					t.Errorf("session of %s after the restart: status %d, user %q", l.user, res.StatusCode, got)
				}
			}
		}()
	}
	for _, l := range sessions {
		work <- l
	}
	close(work)
	wg.Wait()
}
