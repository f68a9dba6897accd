package caddysession

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/session"
)

// TestCSRFThroughTheHandler: a refused request never reaches the next
// handler; the token reaches it on every request of a session, also when
// the session was loaded first by a handler of the same store and realm
// that does not check the token (a matcher's), which keeps no token.
func TestCSRFThroughTheHandler(t *testing.T) {
	h, id := benchHandler(t)
	h.CSRF = &CSRFConfig{Token: &CSRFTokenConfig{}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	t.Cleanup(cancel)
	if err := h.provisionCSRF(ctx); err != nil {
		t.Fatal(err)
	}
	want := session.CSRFToken(id)
	u, _ := url.Parse("http://app.example.com/cart")
	if err := h.ServeHTTP(&discard{h: http.Header{}}, newBenchRequest(u, browserHeader(id)), app); err != nil {
		t.Fatal(err) // and the handler has its realm
	}
	plain := *h // the same store, cookie and realm, without csrf
	plain.csrf = nil
	rows := []struct {
		name        string
		method      string
		headers     map[string]string
		loadedFirst *Handler // loads the request's session before h runs
		status      int      // the error's status; 0: the next handler runs
	}{
		{name: "GET", method: "GET"},
		{name: "GET, loaded by a handler without the token", method: "GET", loadedFirst: &plain},
		{name: "POST with the token", method: "POST", headers: map[string]string{"X-Csrf-Token": want}},
		{name: "POST with the token, loaded by a handler without it", method: "POST", headers: map[string]string{"X-Csrf-Token": want}, loadedFirst: &plain},
		{name: "POST without the token", method: "POST", status: http.StatusForbidden},
		{name: "POST without the token, loaded by a handler without it", method: "POST", loadedFirst: &plain, status: http.StatusForbidden},
		{name: "POST with the token, cross-site", method: "POST", headers: map[string]string{"X-Csrf-Token": want, "Sec-Fetch-Site": "cross-site"}, status: http.StatusForbidden},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			hdr := browserHeader(id)
			for k, v := range tc.headers {
				hdr.Set(k, v)
			}
			hdr.Set("X-Session-Meta-Csrf-Token", "forged by the client")
			r := newBenchRequest(u, hdr)
			r.Method = tc.method
			if tc.loadedFirst != nil {
				if _, err := tc.loadedFirst.requestState(r); err != nil {
					t.Fatal(err)
				}
			}
			called := false
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				called = true
				if got := r.Header.Values("X-Session-Meta-Csrf-Token"); len(got) != 1 || got[0] != want {
					t.Errorf("the app got the token %q, want the session's", got)
				}
				w.WriteHeader(http.StatusOK)
				return nil
			})
			err := h.ServeHTTP(&discard{h: http.Header{}}, r, next)
			var he caddyhttp.HandlerError
			switch {
			case tc.status == 0 && (err != nil || !called):
				t.Fatalf("ServeHTTP = %v, the app called: %v; want it called", err, called)
			case tc.status != 0 && (!errors.As(err, &he) || he.StatusCode != tc.status):
				t.Fatalf("ServeHTTP = %v, want an error with status %d", err, tc.status)
			case tc.status != 0 && called:
				t.Fatal("the app was called for a refused request")
			}
			// A refused request goes to the error routes without the
			// session: its token is off the request and the placeholder.
			shown, placeholder := want, "the session's token"
			if tc.status != 0 {
				shown, placeholder = "", "empty"
				if got := r.Header.Values("X-Session-Meta-Csrf-Token"); len(got) != 0 {
					t.Errorf("the refused request still carries the token header %q", got)
				}
			}
			repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
			if got, _ := repl.GetString(placeholderCSRFToken); got != shown {
				t.Errorf("{%s} = %q, want %s", placeholderCSRFToken, got, placeholder)
			}
		})
	}
}
