package caddysession

import (
	"context"
	"strings"

	"github.com/redis/rueidis"
	"go.uber.org/zap"
)

// checkEviction warns when a node of client may evict keys that have no
// TTL: the index buckets have none (only sessions and forward records
// do), and an allkeys-* policy with a memory limit lets Redis drop the
// bucket that lists a user's sessions, which then stay live through "log
// out everywhere", the per-user cap and the list of devices, with
// nothing to tell. noeviction (writes fail with 503) and volatile-*
// (sessions are evicted: a logout) keep every promise. The config may
// change later, and an ACL user without config|get may not read it: that
// is a note, not an error, since the store needs no such right.
func checkEviction(logger *zap.Logger, client rueidis.Client, where string) {
	// One bound for all nodes: this runs while the client is being made,
	// and requests wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	for addr, node := range client.Nodes() {
		conf, err := node.Do(ctx, node.B().ConfigGet().Parameter("maxmemory*").Build()).AsStrMap()
		if err != nil {
			logger.Info("could not read the maxmemory-policy of redis to check that it never evicts the session index; "+
				"make sure it is noeviction or volatile-* (or maxmemory 0)",
				zap.String("redis", where), zap.String("node", addr), zap.Error(err))
			return
		}
		policy := conf["maxmemory-policy"]
		if strings.HasPrefix(policy, "allkeys-") && conf["maxmemory"] != "0" {
			logger.Warn("redis may evict the session index: with maxmemory-policy "+policy+
				" a full Redis drops keys without a TTL too, and a user's sessions whose index is evicted survive "+
				"logout everywhere, max_sessions_per_identity and the list of devices; use noeviction or a volatile-* policy",
				zap.String("redis", where), zap.String("node", addr),
				zap.String("maxmemory-policy", policy), zap.String("maxmemory", conf["maxmemory"]))
		}
	}
}
