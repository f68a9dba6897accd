package caddysession

import (
	"net/http"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-session/caddy-session/internal/clock"
)

// TestRememberedCookieAfterTheTimeoutWasShortened: the persistent cookie
// of a remembered session lasts to the session's absolute deadline "so the
// browser ... drops it when the session would end anyway" (README,
// "Remember me"; session.Cookie.IssuePersistentHeader: "the cookie never
// outlives the session"), and "a shortened timeout applies at once"
// (SECURITY.md, "Idle and absolute timeouts"). After a reload that
// shortens remember's absolute_timeout from 30 days to 7, a remembered
// session created under the old config ends 7 days after its creation
// (Timeouts.Expired), yet a renewal under the new config issues a cookie
// whose Max-Age runs to the stored 30-day deadline (issueCookie reads
// rec.AbsoluteDeadline alone): a persistent cookie, kept on disk, three
// weeks past the end of its session.
func TestRememberedCookieAfterTheTimeoutWasShortened(t *testing.T) {
	old := provisionedHandler(t, func(h *Handler) {
		h.Remember = &RememberConfig{IdleTimeout: caddyDays(7), AbsoluteTimeout: caddyDays(30)}
	})
	hdr, err := serveWith(t, old, "", "X-Session-Set-User: alice", "X-Session-Remember: true")
	if err != nil {
		t.Fatal(err)
	}
	id := issuedID(t, hdr)

	// The reload: the same file, remember absolute_timeout 7 days.
	h := provisionedHandler(t, func(h *Handler) {
		h.Remember = &RememberConfig{IdleTimeout: caddyDays(7), AbsoluteTimeout: caddyDays(7)}
	})
	h.store, h.realm = old.store, old.realm

	hdr, err = serveWith(t, h, id, "X-Session-Renew: true")
	if err != nil {
		t.Fatal(err)
	}
	var ck *http.Cookie
	for _, c := range (&http.Response{Header: hdr}).Cookies() {
		if c.Name == "sid" {
			ck = c
		}
	}
	if ck == nil {
		t.Fatalf("the renewal issued no cookie: %v", hdr)
	}
	rec, err := h.store.Load(t.Context(), issuedHash(t, hdr), clock.Now(), h.timeouts)
	if err != nil {
		t.Fatal(err)
	}
	ends := rec.Created.Add(h.timeouts.RememberAbsolute)
	if lasts := time.Duration(ck.MaxAge) * time.Second; clock.Now().Add(lasts).After(ends.Add(time.Second)) {
		t.Errorf("the renewed cookie has Max-Age %s, past the session's end by the current timeouts (%s from now)",
			lasts, ends.Sub(clock.Now()).Round(time.Second))
	}
}

func caddyDays(n int) caddy.Duration { return caddy.Duration(time.Duration(n) * 24 * time.Hour) }
