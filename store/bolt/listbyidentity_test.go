package bolt

import (
	"fmt"
	"testing"

	"github.com/caddy-session/caddy-session/session"
)

// TestListByIdentityDigestCollision: two identities whose digests collide
// share the identity index's prefix; each lists its own sessions only,
// whatever their hashes.
func TestListByIdentityDigestCollision(t *testing.T) {
	digest := identityDigest
	t.Cleanup(func() { identityDigest = digest })
	identityDigest = func(key, value string) []byte {
		if value == "mallory" {
			value = "alice"
		}
		return digest(key, value)
	}
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("hash prefix shared %v", shared), func(t *testing.T) {
			s := openTest(t)
			defer s.Close()
			h := alike("digest", 3)
			if !shared {
				h[1] = session.HashID("another prefix")
			}
			createAt(t, s, h[0], "shop", base, map[string]string{"user": "alice"})
			createAt(t, s, h[1], "shop", base, map[string]string{"user": "mallory"})
			createAt(t, s, h[2], "shop", base, map[string]string{"user": "alice"})
			wantListedAt(t, s, base, "shop", "alice", h[0], h[2])
			wantListedAt(t, s, base, "shop", "mallory", h[1])
			checkConsistent(t, s)
		})
	}
}
