package redis

import (
	"testing"
	"time"

	"github.com/redis/rueidis"
)

// TestNewsDropsEveryConnectionsCopy: Redis tells each connection that
// read a key of its change, each in its own time, and a FLUSHALL tells
// every connection. What one connection is told of is dropped from every
// connection's cache at once: a read through another connection's copy,
// between two of those messages, found what the news had just said
// changed (an answer judged again on that news was delivered for a
// session a FLUSHALL had ended). A read in flight on another connection
// is not kept; one in flight on the connection told is, since its answer
// came after the change.
func TestNewsDropsEveryConnectionsCopy(t *testing.T) {
	t.Parallel()
	b := standalone(t)
	s := b.open(t)
	key := s.SessionKey(create(t, s, "a", base, timeouts, map[string]string{"user": "alice"}))
	raw := b.client(t, nil)
	reply, err := raw.Do(t.Context(), raw.B().Hgetall().Key(key).Build()).ToMessage()
	if err != nil {
		t.Fatal(err)
	}
	name, err := raw.Do(t.Context(), raw.B().Echo().Message(key).Build()).ToMessage()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, tc := range []struct {
		name string
		news []rueidis.RedisMessage
		// inFlight: the read is not answered when the news comes;
		// onTold: it was sent on the connection told, not another.
		inFlight, onTold, kept bool
	}{
		{"a key, cached by another connection", []rueidis.RedisMessage{name}, false, false, false},
		{"every key (FLUSHALL), cached by another connection", nil, false, false, false},
		{"a key, read in flight on another connection", []rueidis.RedisMessage{name}, true, false, false},
		{"every key, read in flight on another connection", nil, true, false, false},
		{"a key, read in flight on the connection told", []rueidis.RedisMessage{name}, true, true, true},
		{"every key, read in flight on the connection told", nil, true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache(1 << 20)
			told := c.NewCacheStoreFn(rueidis.CacheStoreOption{}).(*connCache)
			other := c.NewCacheStoreFn(rueidis.CacheStoreOption{}).(*connCache)
			reader := other
			if tc.onTold {
				reader = told
			}
			reader.Flight(key, "HGETALL", time.Minute, now)
			if !tc.inFlight {
				reader.Update(key, "HGETALL", reply)
				if _, ok := c.record(key, now); !ok {
					t.Fatal("the read's answer was not cached")
				}
			}
			told.Delete(tc.news)
			if tc.inFlight {
				reader.Update(key, "HGETALL", reply)
			}
			if _, ok := c.record(key, now); ok != tc.kept {
				t.Fatalf("after the news the cache holds the key: %v, want %v", ok, tc.kept)
			}
		})
	}
}
