package store

import (
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// TestCheckImportRefusesTwinKeys: an import is to hold only "keys and
// values a response could have set" (SECURITY.md), and no response can
// give a session two keys that are one once '_' is read as '-' (the
// protocol refuses them as "conflict": they would share one header). An
// import of such a session is taken: the handler then forwards both as
// the one header X-Session-Cart-Items, one overwriting the other in the
// order of a map's iteration, so the app sees either value from one
// request to the next; and every later write that names the key is
// refused as ambiguous.
func TestCheckImportRefusesTwinKeys(t *testing.T) {
	now := time.Date(2025, time.March, 14, 9, 0, 0, 0, time.UTC)
	timeouts := session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour}
	for _, tc := range []struct {
		name          string
		values, flash map[string]string
	}{
		{name: "twin keys", values: map[string]string{"user": "alice", "cart_items": "1", "cart-items": "2"}},
		{name: "twin flash values", values: map[string]string{"user": "alice"}, flash: map[string]string{"new_msg": "a", "new-msg": "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := timeouts.NewRecord(now.Add(-time.Minute))
			rec.Values, rec.Flash = tc.values, tc.flash
			e := Entry{Hash: session.HashID("a"), Record: rec, Identity: "user"}
			if err := CheckImport(e, now, session.DefaultLimits()); err == nil {
				t.Fatalf("CheckImport took a session with %v %v, which no response could have set", tc.values, tc.flash)
			}
		})
	}
	// What the handler does with it: one header, either value.
	p := session.NewProtocol(session.DefaultHeaderPrefix, nil, session.DefaultLimits())
	seen := map[string]bool{}
	for range 200 {
		h := make(map[string][]string)
		p.Forward(h, map[string]string{"cart_items": "1", "cart-items": "2"})
		seen[h["X-Session-Cart-Items"][0]] = true
	}
	t.Logf("forwarded as X-Session-Cart-Items: %v", seen)
}
