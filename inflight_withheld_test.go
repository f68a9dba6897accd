package caddysession

import (
	"errors"
	"net/http"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// expectWithheld fails unless err is the refusal of an answer whose
// session ended while the app worked on it (withheld.go): a 403, none of
// the app's answer.
func expectWithheld(t *testing.T, err error) {
	t.Helper()
	var he caddyhttp.HandlerError
	if !errors.Is(err, errSessionEnded) || !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
		t.Fatalf("ServeHTTP: %v, want the answer withheld with a 403: its session ended while the app worked on it", err)
	}
}
