package integration_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// A negative duration in JSON is refused wherever the handler takes one,
// as README promises ("a bad duration (in JSON, a negative duration ...)"
// is refused): sign's lifetime and rotate, tunnels' check_interval and the
// bolt store's lock_timeout were read as left out, and the handler ran on
// their defaults without a word (a -5m token lifetime gave 5 minutes).
func TestNegativeDurationsInJSONAreRefused(t *testing.T) {
	config := func(t *testing.T, port int, store, fields string) string {
		return fmt.Sprintf(`{
	"admin": {"listen": "localhost:%d"},
	"apps": {"http": {"servers": {"s": {
		"listen": [":%d"],
		"routes": [{"handle": [
			{"handler": "session", "store": {"backend": "bolt", "path": %q%s}%s},
			{"handler": "static_response", "body": "ok"}
		]}]
	}}}}
}`, adminPort, port, filepath.Join(t.TempDir(), "s.db"), store, fields)
	}
	const secret = `"secret": "0123456789abcdef0123456789abcdef0123"`
	refused := []struct{ store, fields, want string }{
		{"", `, "sign": {` + secret + `, "lifetime": "-5m"}`, "sign lifetime (-5m0s) is negative"},
		{"", `, "sign": {` + secret + `, "rotate": "-48h"}`, "sign rotate (-48h0m0s) is negative"},
		{"", `, "tunnels": {"check_interval": "-5s"}`, "tunnels check_interval (-5s) is negative"},
		{`, "lock_timeout": "-1s"`, "", "lock_timeout (-1s) is negative"},
	}
	for _, c := range refused {
		t.Run(c.want, func(t *testing.T) {
			configRefused(t, config(t, freePort(t), c.store, c.fields), "json", c.want)
		})
	}
	// Zero is left out, and positive values load.
	for _, c := range []struct{ store, fields string }{
		{`, "lock_timeout": 0`, `, "sign": {` + secret + `, "lifetime": 0}, "tunnels": {"check_interval": 0}`},
		{`, "lock_timeout": "2s"`, `, "sign": {` + secret + `, "lifetime": "2m", "rotate": "48h"}, "tunnels": {"check_interval": "30s"}`},
	} {
		t.Run(c.store+c.fields, func(t *testing.T) {
			port := freePort(t)
			tester := caddytest.NewTester(t)
			tester.InitServer(config(t, port, c.store, c.fields), "json")
			tester.AssertGetResponse(fmt.Sprintf("http://127.0.0.1:%d/", port), http.StatusOK, "ok")
		})
	}
}
