package redis

import (
	"testing"

	"github.com/caddy-session/caddy-session/session"
)

// TestHashOfKey: the session a key holds, read back from its name under
// any prefix; the index's keys hold none.
func TestHashOfKey(t *testing.T) {
	hash := session.HashID(session.NewID())
	s := &Store{prefix: "caddy-session:"}
	rows := []struct {
		name string
		key  string
		ok   bool
	}{
		{"a session key", s.SessionKey(hash), true},
		{"another prefix", "shop:{" + hash.String() + "}", true},
		{"no prefix", "{" + hash.String() + "}", true},
		{"an index bucket", s.BucketKey(7), false},
		{"the legacy index", s.legacyIndexKey(), false},
		{"braces around no hash", "caddy-session:{not-a-hash}", false},
		{"a hash with no closing brace", "caddy-session:{" + hash.String(), false},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			got, ok := HashOfKey(row.key)
			if ok != row.ok || ok && got != hash {
				t.Fatalf("HashOfKey(%q) = %s, %v; want the session's hash: %v", row.key, got.Short(), ok, row.ok)
			}
		})
	}
}
