package integration_test

import (
	"strings"
	"testing"
)

// TestStatusDecidesInNamedRoutesAndOnTooEarly: the app's status decides
// whether its commands apply (README, "The app's status decides") also
// where the earlier fix (TestStatusOfAChainedResponseDecides) did not
// reach:
//
//   - a reverse_proxy in a named route (`&(name)`, run by `invoke`) that
//     a site with a session handler invokes: the walk gave the named route
//     a scope of its own, found no session handler on its way, and left
//     its handle_response unmarked, so a 5xx's commands that
//     copy_response_headers carried over, or a second app's own, applied;
//   - an app's 425 Too Early that a handler answers with another status:
//     only a replaced 5xx counted, so the commands on a 425 (a request the
//     app did not carry out, perhaps a replay of early data) applied once
//     reverse_proxy's handle_response, replace_status or intercept turned
//     it into a 200.
//
// A first app's success keeps its commands in every such config.
func TestStatusDecidesInNamedRoutesAndOnTooEarly(t *testing.T) {
	type app struct {
		status int
		fields []string
	}
	const chained = `
&(app) {
	reverse_proxy $A {
		@e status 5xx 425
		handle_response @e {
			copy_response_headers
			reverse_proxy $B
		}
	}
}`
	const chainedOwn = `
&(app) {
	reverse_proxy $A {
		@e status 5xx 425
		handle_response @e {
			reverse_proxy $B
		}
	}
}`
	const copied = `
&(app) {
	reverse_proxy $A {
		@ok status 2xx
		handle_response @ok {
			copy_response_headers
			reverse_proxy $B
		}
	}
}`
	const nested = `
&(inner) {
	reverse_proxy $A {
		@e status 5xx 425
		handle_response @e {
			copy_response_headers
			reverse_proxy $B
		}
	}
}
&(app) {
	invoke inner
}`
	const invokeApp = `
		invoke app`
	cases := []struct {
		name     string
		a, b     app
		named    string // named routes, before the site
		handlers string // $A, $B: the two apps
		status   int    // what the client gets
		role     string // the role afterwards; "" if no command applied
	}{
		{"named route copies the app's 503 into a second app's 200",
			app{503, []string{"X-Session-Set-Role: a"}}, app{200, nil}, chained, invokeApp, 200, ""},
		{"named route copies the app's 500 into a second app's 200",
			app{500, []string{"X-Session-Set-Role: a"}}, app{200, nil}, chained, invokeApp, 200, ""},
		{"named route answers the app's 502 with a second app's 200 and its own commands",
			app{502, []string{"X-Session-Set-Role: a"}}, app{200, []string{"X-Session-Set-Role: b"}}, chainedOwn, invokeApp, 200, ""},
		{"named route answers the app's 425 with a second app's 200 and its own commands",
			app{425, []string{"X-Session-Set-Role: a"}}, app{200, []string{"X-Session-Set-Role: b"}}, chainedOwn, invokeApp, 200, ""},
		{"named route invoked through another named route copies the app's 503",
			app{503, []string{"X-Session-Set-Role: a"}}, app{200, nil}, nested, invokeApp, 200, ""},
		{"named route invoked through another named route copies the app's 425",
			app{425, []string{"X-Session-Set-Role: a"}}, app{200, nil}, nested, invokeApp, 200, ""},
		{"named route invoked in a route block copies the app's 503",
			app{503, []string{"X-Session-Set-Role: a"}}, app{200, nil}, chained, `
		route {
			invoke app
		}`, 200, ""},
		{"named route copies the app's 200 into a second app's 200",
			app{200, []string{"X-Session-Set-Role: a"}}, app{200, nil}, copied, invokeApp, 200, "a"},
		{"named route invoked through another named route passes the app's 200",
			app{200, []string{"X-Session-Set-Role: a"}}, app{200, nil}, nested, invokeApp, 200, "a"},
		{"named route answers the app's 200 itself",
			app{200, []string{"X-Session-Set-Role: a"}}, app{200, []string{"X-Session-Set-Role: b"}}, chainedOwn, invokeApp, 200, "a"},
		{"reverse_proxy handle_response copies the app's 425 into a second app's 200",
			app{425, []string{"X-Session-Set-Role: a"}}, app{200, nil}, "", `
		reverse_proxy $A {
			@e status 425
			handle_response @e {
				copy_response_headers
				reverse_proxy $B
			}
		}`, 200, ""},
		{"reverse_proxy handle_response answers the app's 425 with 200, its fields copied",
			app{425, []string{"X-Session-Set-Role: a"}}, app{200, nil}, "", `
		reverse_proxy $A {
			@e status 425
			handle_response @e {
				copy_response_headers
				respond "retry" 200
			}
		}`, 200, ""},
		{"reverse_proxy replace_status turns the app's 425 into 200",
			app{425, []string{"X-Session-Set-Role: a"}}, app{200, nil}, "", `
		reverse_proxy $A {
			@e status 425
			replace_status @e 200
		}`, 200, ""},
		{"intercept replace_status turns the app's 425 into 200",
			app{425, []string{"X-Session-Set-Role: a"}}, app{200, nil}, "", `
		intercept {
			@e status 425
			replace_status @e 200
		}
		reverse_proxy $A`, 200, ""},
		{"intercept handle_response answers the app's 425 with 200",
			app{425, []string{"X-Session-Set-Role: a"}}, app{200, nil}, "", `
		intercept {
			@e status 425
			handle_response @e {
				respond "retry" 200
			}
		}
		reverse_proxy $A`, 200, ""},
		{"reverse_proxy replace_status turns the app's 200 into 202",
			app{200, []string{"X-Session-Set-Role: a"}}, app{200, nil}, "", `
		reverse_proxy $A {
			@ok status 200
			replace_status @ok 202
		}`, 202, "a"},
	}
	eachStore(t, func(t *testing.T, store string) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := strings.NewReplacer("$A", fixedApp(t, c.a.status, c.a.fields...), "$B", fixedApp(t, c.b.status, c.b.fields...))
				s := newChainSite(t, store, r.Replace(c.named), r.Replace(c.handlers))
				alice := login(t, s, "alice")
				expectChainOutcome(t, s, alice, alice.get("/page"), c.status, c.role)
			})
		}
	})
}
