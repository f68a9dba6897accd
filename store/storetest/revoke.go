package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// Revoke runs the tests of a revocation by user (DeleteByIdentity: "log
// out everywhere", the admin API's revoke by user) that races renewals of
// the user's session, against the stores that open returns, fresh and
// empty each time as for Run. pause stops the revocation before it
// deletes the session it found; where the store lets other writers run
// meanwhile (Redis), the renewals move the session on to new IDs then.
// SECURITY.md promises that a logout racing a renewal ends the renewed
// session: whatever the interleaving, no session that was the user's when
// the revocation began is left live as the user's, while one that a login
// as someone else took over is theirs, and not counted.
func Revoke(t *testing.T, open func(t *testing.T) store.Store, pause Pause) {
	tests := []struct {
		name string
		// users are the users the session has after each renewal while
		// the revocation is stopped, in order: alice for a renewal
		// (X-Session-Renew, a privilege change), another for a login as
		// them.
		users []string
	}{
		{"ARenewal", []string{"alice"}},
		{"TwoRenewalsInARow", []string{"alice", "alice"}},
		{"ALoginAsAnotherUser", []string{"bob"}},
		{"ARenewalThenALoginAsAnotherUser", []string{"alice", "bob"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := opened(t, open)
			revokeRacingRenewals(t, s, pause, tc.users)
		})
	}
}

// revokeRacingRenewals revokes alice's one session while renewals give it
// the users in turn.
func revokeRacingRenewals(t *testing.T, s store.Store, pause Pause, users []string) {
	hashes := []session.Hash{hashOf("laptop")}
	for i := range users {
		hashes = append(hashes, hashOf(fmt.Sprint("laptop, renewed ", i+1)))
	}
	createIn(t, s, shop, hashes[0], base, map[string]string{"user": "alice"})
	hook, stopped, release := stopFirst()
	interleaves := pause(s, hook)

	type revoked struct {
		n   int
		err error
	}
	revoking := make(chan revoked, 1)
	go func() {
		n, err := s.DeleteByIdentity(context.Background(), shop, identity, "alice")
		revoking <- revoked{n, err}
	}()
	<-stopped // the revocation has found the session and is about to delete it
	renewing := make(chan []error, 1)
	go func() { renewing <- renewInTurn(s, hashes, users) }()
	var errs []error
	if interleaves {
		errs = <-renewing // while the revocation waits to delete
	}
	close(release)
	got := <-revoking
	if !interleaves {
		errs = <-renewing
	}
	if got.err != nil {
		t.Fatalf("revoking every session of alice: %v", got.err)
	}

	now := base.Add(time.Minute)
	checkRevokeOutcome(t, s, interleaves, got.n, errs, hashes[len(hashes)-1], users[len(users)-1], now)
	wantListed(t, s, shop, identity, "alice", now)
	if n, err := s.DeleteByIdentity(t.Context(), shop, identity, "alice"); err != nil || n != 0 {
		t.Errorf("revoking alice again: %d, %v; want none left to end", n, err)
	}
}

// renewInTurn renews the session under hashes[0] to each next hash in
// turn, giving it the users in order: each renewal presents the ID the
// one before issued, as the laptop's next request does.
func renewInTurn(s store.Store, hashes []session.Hash, users []string) []error {
	var errs []error
	for i, user := range users {
		seen := "alice"
		if i > 0 {
			seen = users[i-1]
		}
		u := in(shop, hashes[i], seen, base.Add(time.Minute), &session.Patch{Renew: true, Set: map[string]string{"user": user}})
		u.NewHash = ptr(hashes[i+1])
		_, err := s.Update(context.Background(), u)
		errs = append(errs, err)
	}
	return errs
}

// checkRevokeOutcome checks what the revocation, which ended n sessions,
// and the renewals, which returned errs, left: the session under last,
// the last renewal's, is owner's.
func checkRevokeOutcome(t *testing.T, s store.Store, interleaves bool, n int, errs []error, last session.Hash, owner string, now time.Time) {
	t.Helper()
	switch {
	case !interleaves:
		// The revocation ended the session before the renewals read it.
		for i, err := range errs {
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("renewal %d of %d after the revocation: %v, want ErrNotFound", i+1, len(errs), err)
			}
		}
		if n != 1 {
			t.Errorf("the revocation ended %d sessions, want 1", n)
		}
		wantGone(t, s, last, now)
	case owner == "alice":
		for i, err := range errs {
			if err != nil {
				t.Fatalf("renewal %d of %d while the revocation waited: %v", i+1, len(errs), err)
			}
		}
		if n != 1 {
			t.Errorf("the revocation ended %d sessions, want 1: the session its renewals moved to", n)
		}
		if rec, err := s.Load(t.Context(), last, now, timeouts); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after revoking every session of alice, the session %d renewals moved hers to is still there: %+v, %v", len(errs), rec, err)
		}
	default:
		for i, err := range errs {
			if err != nil {
				t.Fatalf("renewal %d of %d while the revocation waited: %v", i+1, len(errs), err)
			}
		}
		// A login as someone else took the session over before the
		// revocation deleted it: it is theirs now, not alice's to end.
		if n != 0 {
			t.Errorf("the revocation ended %d sessions, want none: alice's became %s's", n, owner)
		}
		if rec := load(t, s, last, now); rec.Values["user"] != owner {
			t.Errorf("the session %s logged in to is %v", owner, rec.Values)
		}
	}
}
