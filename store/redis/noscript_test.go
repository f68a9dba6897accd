package redis

import (
	"errors"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// TestNoScriptRetriedOnce: a write that meets NOSCRIPT (Redis
// forgot the store's script: SCRIPT FLUSH, a restart, a failover to a
// replica that never ran it) is sent again by EVAL exactly once, and is
// made exactly once, and with wait_replicas the EVAL's own WAIT is what
// the write is judged by (store.ErrUnreplicated here, with no replica).
// Note: the WAIT that was pipelined with the refused EVALSHA runs too
// (the server runs it whatever the EVALSHA's answer), so such a write
// can take two wait_timeouts; the count is logged, not asserted.
func TestNoScriptRetriedOnce(t *testing.T) {
	t.Parallel()
	b := standalone(t)
	plain := b.open(t)
	for _, tc := range []struct {
		name string
		wait int
	}{
		{name: "no wait_replicas", wait: 0},
		{name: "wait_replicas 1", wait: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := b.newStore(t, Options{WaitReplicas: tc.wait, WaitTimeout: 20 * time.Millisecond})
			t.Cleanup(func() { s.Close() })
			admin := mustClient(t, plain)
			do := func(args ...string) rueidis.RedisResult {
				return admin.Do(t.Context(), admin.B().Arbitrary(args[0]).Args(args[1:]...).Build())
			}
			if err := do("SCRIPT", "FLUSH").Error(); err != nil {
				t.Fatal(err)
			}
			if err := do("CONFIG", "RESETSTAT").Error(); err != nil {
				t.Fatal(err)
			}
			h := session.HashID("noscript " + tc.name)
			_, err := s.Update(t.Context(), store.Update{NewHash: &h, Patch: &session.Patch{Set: map[string]string{"user": "alice"}},
				Identity: "user", Now: base, Timeouts: timeouts, Limits: limits})
			if tc.wait == 0 && err != nil {
				t.Fatalf("a login after SCRIPT FLUSH: %v", err)
			}
			if tc.wait > 0 && !errors.Is(err, store.ErrUnreplicated) {
				t.Fatalf("a login after SCRIPT FLUSH with no replica: %v, want store.ErrUnreplicated", err)
			}
			if rec, err := plain.Load(t.Context(), h, base, timeouts); err != nil || rec.Values["user"] != "alice" {
				t.Fatalf("the login is %+v, %v", rec, err)
			}
			stats, err := do("INFO", "commandstats").ToString()
			if err != nil {
				t.Fatal(err)
			}
			calls := func(cmd string) int {
				m := regexp.MustCompile(`cmdstat_` + cmd + `:calls=(\d+)`).FindStringSubmatch(stats)
				if m == nil {
					return 0
				}
				n, _ := strconv.Atoi(m[1])
				return n
			}
			if n := calls("eval"); n != 1 {
				t.Errorf("EVAL ran %d times, want once: the retry after NOSCRIPT", n)
			}
			if n := calls("evalsha"); n != 1 {
				t.Errorf("EVALSHA ran %d times, want once: NOSCRIPT must not be retried by EVALSHA", n)
			}
			if n := calls("wait"); (tc.wait == 0) != (n == 0) {
				t.Errorf("WAIT ran %d times with wait_replicas %d", n, tc.wait)
			}
			t.Logf("%s", regexp.MustCompile(`cmdstat_(evalsha|eval|wait):[^\r\n]*`).FindAllString(stats, -1))
		})
	}
}
