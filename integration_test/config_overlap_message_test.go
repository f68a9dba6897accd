package integration_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// The refusal of two namespaces of one server where one lies within the
// other names a pair of prefixes to use instead, and that pair loads. It
// named the outer prefix and X-Admin-: for a site's X-Admin- (or X_Admin-)
// with a nested X-Admin-Session-, "such as X-Admin- and X-Admin-", one
// namespace twice (two sessions' headers the app cannot tell apart, the
// very thing refused), and for X.Admin-, "X.Admin- and X-Admin-", a pair
// the next check refuses.
func TestOverlapRefusalSuggestsAPairThatLoads(t *testing.T) {
	nested := func(outer, inner string) string {
		return fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	session {
		%s
		header_prefix %s
	}
	handle /admin/* {
		session {
			%s
			cookie asid
			header_prefix %s
		}
		respond admin
	}
	respond ok
}`, adminPort, freePort(t), withStore(t, ""), outer, withStore(t, ""), inner)
	}
	suggestion := regexp.MustCompile(`such as (\S+) and (\S+?)[",]`)
	for _, c := range []struct{ outer, inner string }{
		{"X-Session-", "X-Session-Admin-"},
		{"X-Admin-", "X-Admin-Session-"},
		{"X-Admin-Session-", "X-Admin-"},
		{"X_Admin-", "X-Admin-App-"},
		{"X.Admin-", "X-Admin-Users-"},
		{"X-Session-", "X-Session.Admin-"},
	} {
		t.Run(c.outer+" and "+c.inner, func(t *testing.T) {
			err := loadStarted(t, nested(c.outer, c.inner), "caddyfile")
			if err == nil {
				t.Fatalf("two namespaces where one lies within the other loaded")
			}
			msg := strings.ReplaceAll(err.Error(), `\"`, `"`)
			if !strings.Contains(msg, "lies within header_prefix") {
				t.Fatalf("refused for another reason: %s", msg)
			}
			m := suggestion.FindStringSubmatch(msg)
			if m == nil {
				t.Fatalf("the refusal names no pair of prefixes to use: %s", msg)
			}
			fold := strings.NewReplacer("_", "-", ".", "-")
			if strings.EqualFold(fold.Replace(m[1]), fold.Replace(m[2])) {
				t.Fatalf("the refusal suggests one namespace twice, %s and %s: %s", m[1], m[2], msg)
			}
			if err := loadStarted(t, nested(m[1], m[2]), "caddyfile"); err != nil {
				t.Fatalf("the pair the refusal suggests, %s and %s, is refused too: %v", m[1], m[2], err)
			}
		})
	}
}
