package store

import (
	"strings"
	"testing"

	"github.com/caddy-session/caddy-session/session"
)

// TestDecideUserAgent: a session an update starts keeps its User-Agent,
// cut to session.MaxUserAgent; a session that goes on keeps the one it
// has, whatever the update carries.
func TestDecideUserAgent(t *testing.T) {
	long := strings.Repeat("é", session.MaxUserAgent) // 2 bytes each: cut between runes
	stored := live(realm, "user=alice")
	stored.UserAgent = "curl/8.5.0"
	tests := []struct {
		name   string
		u      Update
		stored *session.Record
		want   string // the UserAgent of the record written
	}{
		{"a creation", Update{NewHash: ptr(hashB), Patch: set("user=alice"), Now: now, Timeouts: timeouts, Limits: limits, UserAgent: "Firefox"},
			nil, "Firefox"},
		{"a creation without one", Update{NewHash: ptr(hashB), Patch: set("user=alice"), Now: now, Timeouts: timeouts, Limits: limits},
			nil, ""},
		{"a creation with a long one", Update{NewHash: ptr(hashB), Patch: set("user=alice"), Now: now, Timeouts: timeouts, Limits: limits, UserAgent: long},
			nil, long[:session.MaxUserAgent]},
		{"a logout that starts a session", with(upd("alice", &session.Patch{Destroy: true, Set: map[string]string{"cart": "1"}}), func(u *Update) {
			u.NewHash, u.UserAgent = ptr(hashB), "Firefox"
		}), stored, "Firefox"},
		{"a write", with(upd("alice", set("cart=1")), func(u *Update) { u.UserAgent = "Firefox" }), stored, "curl/8.5.0"},
		{"a touch", with(upd("alice", nil), func(u *Update) { u.UserAgent = "Firefox" }), stored, "curl/8.5.0"},
		{"a login that rotates", with(upd("alice", set("user=bob")), func(u *Update) {
			u.NewHash, u.UserAgent = ptr(hashB), "Firefox"
		}), stored, "curl/8.5.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := Decide(tc.u, hashA, tc.stored, 0)
			if o.Err != nil || o.Write == nil {
				t.Fatalf("Decide: %+v", o)
			}
			if o.Write.UserAgent != tc.want {
				t.Fatalf("the record written has User-Agent %q, want %q", o.Write.UserAgent, tc.want)
			}
		})
	}
}
