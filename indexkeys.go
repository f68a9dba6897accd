package caddysession

import (
	"fmt"
	"slices"

	"github.com/caddy-session/caddy-session/session"
)

// shareIndexKeys makes every handler find a user's sessions under the
// index keys of all the handlers of its realm and store, not its own
// alone. They share sessions, and each indexes the user of a session it
// writes under its own key (the keyed hash of seal_values' index_key, or
// the plain name without seal_values): a logout everywhere
// (X-Session-Destroy-All), max_sessions_per_identity and devices through
// one handler missed the sessions another had written last, so a session
// lived on after its user logged out everywhere (a `session` with
// seal_values nested in the site's own, as the README shows, or two
// handlers with two index_keys). The realms are known once the config is
// wired, hence here and not in provisionSeal.
func shareIndexKeys(handlers []*Handler) {
	for _, h := range handlers {
		var keys []*session.IndexKey
		if h.lookupIndex != nil {
			keys = append(keys, h.lookupIndex)
		}
		for _, o := range handlers {
			if o.realm != h.realm || o.storeName != h.storeName || o.lookupIndex == nil ||
				slices.ContainsFunc(keys, o.lookupIndex.Equal) {
				continue
			}
			keys = append(keys, o.lookupIndex)
		}
		if len(keys) == 0 || h.lookupIndex != nil && len(keys) == 1 {
			continue
		}
		inner := h.store
		if s, ok := inner.(sealedIndex); ok {
			inner = s.Store
		}
		h.store = sealedIndex{Store: inner, keys: keys}
	}
}

// checkIndexKeys refuses two handlers of one realm and store whose
// seal_values have different index keys. They share sessions, and each
// tags the user of a session it writes under its own key: a handler
// judged the request's own session, tagged under the other's key, to be
// another user's, and dropped its logout everywhere (identity_changed).
// Different keys in different realms are fine, as are a sealed handler
// and one without seal_values (shareIndexKeys).
func checkIndexKeys(handlers []*Handler) error {
	for i, h := range handlers {
		for _, o := range handlers[i+1:] {
			if h.realm == o.realm && h.storeName == o.storeName &&
				h.sealIndex != nil && o.sealIndex != nil && !h.sealIndex.Equal(o.sealIndex) {
				return fmt.Errorf("seal_values: two session handlers of realm %q on store %s have different index_keys, and each would miss the sessions the other wrote in a logout everywhere; give them one index_key, or each its own realm and cookie",
					h.realm, h.storeName)
			}
		}
	}
	return nil
}
