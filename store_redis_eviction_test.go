package caddysession

import (
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-session/caddy-session/internal/redistest"
)

// TestRedisStoreEvictionPolicy checks that connecting to a Redis that may
// evict keys without a TTL warns. The index buckets have none: under an
// allkeys-* policy with a memory limit, Redis may drop the bucket that
// lists a user's sessions, and "log out everywhere", the per-user cap and
// the list of devices then miss sessions that stay live. Policies that
// evict only keys with a TTL (sessions, forward records: a session
// evicted is a logout) or none at all, and no memory limit, say nothing;
// a user that may not read the config gets a note instead of a warning.
func TestRedisStoreEvictionPolicy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		user     bool // connect as a user without config|get
		warn     bool
		infoNote bool
	}{
		{name: "noeviction", args: []string{"--maxmemory", "100mb", "--maxmemory-policy", "noeviction"}},
		{name: "volatile-lru", args: []string{"--maxmemory", "100mb", "--maxmemory-policy", "volatile-lru"}},
		{name: "volatile-ttl", args: []string{"--maxmemory", "100mb", "--maxmemory-policy", "volatile-ttl"}},
		{name: "allkeys-lru without a limit", args: []string{"--maxmemory", "0", "--maxmemory-policy", "allkeys-lru"}},
		{name: "allkeys-lru", args: []string{"--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru"}, warn: true},
		{name: "allkeys-lfu", args: []string{"--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lfu"}, warn: true},
		{name: "allkeys-random", args: []string{"--maxmemory", "100mb", "--maxmemory-policy", "allkeys-random"}, warn: true},
		{name: "config refused", args: []string{"--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru"}, user: true, infoNote: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t, tc.args...)
			url := srv.URL()
			if tc.user {
				if reply, err := srv.Do("ACL", "SETUSER", "noconfig", "on", ">pw", "~*", "+@all", "-config"); err != nil || reply != "+OK" {
					t.Fatalf("ACL SETUSER: %q, %v", reply, err)
				}
				url = "redis://noconfig:pw@" + srv.Addr()
			}
			p := newRedisClient(resolved(t, `{"url": "`+url+`"}`))
			defer p.Destruct()
			core, logs := observer.New(zapcore.InfoLevel)
			for range 3 {
				if _, err := p.connect(zap.New(core)); err != nil {
					t.Fatal(err)
				}
			}
			warns := logs.FilterLevelExact(zapcore.WarnLevel).All()
			infos := logs.FilterLevelExact(zapcore.InfoLevel).FilterMessageSnippet("maxmemory-policy").All()
			if got := len(warns); got != map[bool]int{true: 1}[tc.warn] {
				t.Fatalf("%d warnings, want warn=%v: %v", got, tc.warn, warns)
			}
			if tc.warn {
				msg := warns[0].Message
				for _, want := range []string{"maxmemory-policy", "noeviction", "volatile-"} {
					if !strings.Contains(msg, want) {
						t.Errorf("the warning %q does not name %q", msg, want)
					}
				}
				if got := warns[0].ContextMap()["maxmemory-policy"]; got != tc.name {
					t.Errorf("the warning names the policy %v, want %s", got, tc.name)
				}
			}
			if got := len(infos); got != map[bool]int{true: 1}[tc.infoNote] {
				t.Fatalf("%d notes that the policy could not be read, want %v: %v", got, tc.infoNote, infos)
			}
		})
	}
}
