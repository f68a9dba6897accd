package integration_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// A negative duration or limit in JSON is refused. The Caddyfile takes
// only positive ones, but JSON took "-30m" and -1 as left out: the
// handler ran with the default (an idle_timeout of an hour, say, for an
// operator who asked for something else), without a word.
func TestConfigNegativeSettingsInJSONAreRefused(t *testing.T) {
	config := func(t *testing.T, port int, fields string) string {
		return fmt.Sprintf(`{
	"admin": {"listen": "localhost:%d"},
	"apps": {"http": {"servers": {"s": {
		"listen": [":%d"],
		"routes": [{"handle": [
			{"handler": "session", "store": {"backend": "bolt", "path": %q}%s},
			{"handler": "static_response", "body": "ok"}
		]}]
	}}}}
}`, adminPort, port, filepath.Join(t.TempDir(), "s.db"), fields)
	}
	refused := []struct{ fields, want string }{
		{`"idle_timeout": "-30m"`, "idle_timeout (-30m0s) is negative"},
		{`"absolute_timeout": "-1h"`, "absolute_timeout (-1h0m0s) is negative"},
		{`"touch_interval": -1000000000`, "touch_interval (-1s) is negative"},
		{`"remember": {"idle_timeout": "-1h"}`, "remember idle_timeout (-1h0m0s) is negative"},
		{`"remember": {"absolute_timeout": "-720h"}`, "remember absolute_timeout (-720h0m0s) is negative"},
		{`"limits": {"keys": -1}`, "limits keys (-1) is negative"},
		{`"limits": {"value_size": -5}`, "limits value_size (-5) is negative"},
		{`"limits": {"session_size": -5}`, "limits session_size (-5) is negative"},
		{`"on_store_error": {"policy": "stale", "within": "-5m"}`, "on_store_error within (-5m0s) is negative"},
		{`"on_store_error": {"policy": "503", "within": "-5m"}`, "on_store_error within (-5m0s) is negative"},
	}
	for _, c := range refused {
		t.Run(c.fields, func(t *testing.T) {
			configRefused(t, config(t, freePort(t), ", "+c.fields), "json", c.want)
		})
	}
	// Zero is left out, as ever, and positive values load.
	for _, fields := range []string{
		`"idle_timeout": 0, "limits": {"keys": 0}`,
		`"idle_timeout": "30m", "absolute_timeout": "12h", "touch_interval": "1m", "limits": {"keys": 8}`,
	} {
		t.Run(fields, func(t *testing.T) {
			port := freePort(t)
			tester := caddytest.NewTester(t)
			tester.InitServer(config(t, port, ", "+fields), "json")
			tester.AssertGetResponse(fmt.Sprintf("http://127.0.0.1:%d/", port), http.StatusOK, "ok")
		})
	}
}
