package main

// redisMemory is Redis's memory per session after the login storm (case
// 3): used_memory before and after the whole case, over the sessions its
// Redis variant created. The storm's logins set one short key each, a
// distinct user, and nothing reads those sessions, so what is counted is
// the session, its indexes and its TTL, and no client-tracking state.
type redisMemory struct {
	before, after int64 // used_memory, bytes
	keys          int64 // keys the case added, to tell what a session is made of
	sessions      float64
	err           error
}

// measureRedisMemory runs the case in during and measures around it.
func measureRedisMemory(e *env, during func()) *redisMemory {
	m := &redisMemory{}
	created := createdSeries("redis")
	countBefore := mustScrape(e.admin)
	keysBefore, err := redisKeys(e.redisAddr)
	if err == nil {
		m.before, err = redisUsedMemory(e.redisAddr)
	}
	during()
	if m.err = err; err != nil {
		return m
	}
	m.sessions = delta(countBefore, mustScrape(e.admin), created)
	if m.after, m.err = redisUsedMemory(e.redisAddr); m.err != nil {
		return m
	}
	keysAfter, err := redisKeys(e.redisAddr)
	m.keys, m.err = keysAfter-keysBefore, err
	return m
}

func (m *redisMemory) perSession() float64 {
	return float64(m.after-m.before) / max(m.sessions, 1)
}
