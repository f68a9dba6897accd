package store

import "context"

// freshKey marks a context whose loads must not be served from a cache.
type freshKey struct{}

// Fresh returns ctx marked so that a Load with it reads what the store
// holds now. A store whose cache may lag behind another instance's writes
// (Redis's tracked cache: until the invalidation arrives) reads past it.
// Reads that decide a revocation use it: a lagging copy of a session that
// was renewed elsewhere would hide the forward record to its successor,
// and a lagging copy of one that ended would make it look live. Every
// other read may use the cache, as the revocation window allows.
func Fresh(ctx context.Context) context.Context {
	return context.WithValue(ctx, freshKey{}, true)
}

// IsFresh reports whether ctx was marked by Fresh.
func IsFresh(ctx context.Context) bool {
	fresh, _ := ctx.Value(freshKey{}).(bool)
	return fresh
}
