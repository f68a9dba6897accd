package caddysession

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestCaddyfileMatcherIsTheHandlers: `session <matcher>` adapts to a
// handler that carries the matcher as its own `match`, on a route with no
// matcher, so that every request of the site passes through the handler
// (unmatched.go); a route matcher would let the others by untouched.
func TestCaddyfileMatcherIsTheHandlers(t *testing.T) {
	for _, tc := range []struct{ name, directive, match string }{
		{"a path", "session /app/*", `"match":[{"path":["/app/*"]}]`},
		{"a named matcher", "@app path /app/* /api/*\n\tsession @app", `"match":[{"path":["/app/*","/api/*"]}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte("example.com {\n\t"+tc.directive+"\n\trespond ok\n}\n"), nil)
			if err != nil {
				t.Fatal(err)
			}
			js := string(adapted)
			i := strings.Index(js, `"handler":"session"`)
			if i < 0 {
				t.Fatalf("no session handler in %s", js)
			}
			route := js[strings.LastIndex(js[:i], `{"handle":[`):]
			route = route[:strings.Index(route, "}]")+2]
			if !strings.Contains(route, tc.match) {
				t.Fatalf("the session handler has no match %s: %s", tc.match, route)
			}
			// The route opens with the handler: no matcher comes first.
			if !strings.Contains(js, `{"handle":[{"handler":"session","match":`) {
				t.Fatalf("the session's route has a matcher of its own: %s", js)
			}
		})
	}
}
