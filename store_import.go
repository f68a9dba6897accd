package caddysession

import (
	"context"
	"errors"
	"time"

	"github.com/caddy-session/caddy-session/store"
)

// Import runs one import on the acquired store.
func (s *sharedStore) Import(ctx context.Context, imp store.Import) ([]store.ImportStatus, error) {
	st, borrowed, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer s.done(borrowed)
	return st.Import(ctx, imp)
}

// Import times an import and counts its failures; a refused entry is an
// answer, not a failure of the store.
func (s instrumented) Import(ctx context.Context, imp store.Import) ([]store.ImportStatus, error) {
	start := time.Now()
	statuses, err := s.Store.Import(ctx, imp)
	var refused *store.ImportError
	if errors.As(err, &refused) {
		s.observe("import", start, nil)
	} else {
		s.observe("import", start, err)
	}
	return statuses, err
}
