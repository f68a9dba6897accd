package integration_test

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// fixedApp is an app that answers every request with status and the
// header fields given as "Name: value", whatever the request's test
// orders say (the request forwarded to a second app carries the first
// one's orders), and echoes the request as hostileApp does, streamed.
func fixedApp(t *testing.T, status int, fields ...string) string {
	t.Helper()
	app := new(hostileApp)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Test-Header")
		for _, f := range fields {
			r.Header.Add("Test-Header", f)
		}
		r.Header.Set("Test-Status", strconv.Itoa(status))
		// Streamed: a Content-Length copied from one answer would not
		// fit the other's body.
		r.Header.Set("Test-Flush", "1")
		app.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TestStatusOfAChainedResponseDecides: a response that reverse_proxy's
// handle_response (or intercept's) makes of an app's 5xx by asking a
// second app is still an answer to a request the first app did not carry
// out: no command on it applies, neither the first app's that
// copy_response_headers carried over nor the second app's own (README,
// "The app's status decides"). Caddy keeps only the latest upstream
// status in {http.reverse_proxy.status_code}, the second app's. A
// response that a retry took from another upstream is that upstream's
// answer, and its commands apply; so do those of a chain that began with
// a success.
func TestStatusOfAChainedResponseDecides(t *testing.T) {
	type app struct {
		status int
		fields []string
	}
	cases := []struct {
		name     string
		a, b     app
		handlers string // $A, $B: the two apps
		status   int    // what the client gets
		role     string // the role afterwards; "" if no command applied
	}{
		{"reverse_proxy handle_response copies the app's 503 into the 200 of a second app",
			app{503, []string{"X-Session-Set-Role: a"}}, app{200, nil}, `
		reverse_proxy $A {
			@e status 5xx
			handle_response @e {
				copy_response_headers
				reverse_proxy $B
			}
		}`, 200, ""},
		{"reverse_proxy handle_response answers the app's 503 with the 200 of a second app that has commands of its own",
			app{503, []string{"X-Session-Set-Role: a"}}, app{200, []string{"X-Session-Set-Role: b"}}, `
		reverse_proxy $A {
			@e status 5xx
			handle_response @e {
				reverse_proxy $B
			}
		}`, 200, ""},
		{"a chain of two handle_response, the first on the app's 502",
			app{502, []string{"X-Session-Set-Role: a"}}, app{200, []string{"X-Session-Set-Role: b"}}, `
		reverse_proxy $A {
			@e status 5xx
			handle_response @e {
				reverse_proxy $B {
					@ok status 2xx
					handle_response @ok {
						copy_response
					}
				}
			}
		}`, 200, ""},
		{"a session handler in the handle_response that answers the app's 503 with a second app's 200",
			app{503, []string{"X-Session-Set-Role: a"}}, app{200, nil}, `
		reverse_proxy $A {
			@e status 5xx
			handle_response @e {
				session {
					$STORE
				}
				copy_response_headers
				reverse_proxy $B
			}
		}`, 200, ""},
		{"intercept handle_response answers the app's 503 with the 200 of a second app",
			app{503, []string{"X-Session-Set-Role: a"}}, app{200, []string{"X-Session-Set-Role: b"}}, `
		intercept {
			@e status 5xx
			handle_response @e {
				reverse_proxy $B
			}
		}
		reverse_proxy $A`, 200, ""},
		{"reverse_proxy handle_response copies the app's 200 into the 503 of a second app",
			app{200, []string{"X-Session-Set-Role: a"}}, app{503, nil}, `
		reverse_proxy $A {
			@ok status 2xx
			handle_response @ok {
				copy_response_headers
				reverse_proxy $B
			}
		}`, 503, ""},
		{"reverse_proxy handle_response copies the app's 200 into the 200 of a second app",
			app{200, []string{"X-Session-Set-Role: a"}}, app{200, nil}, `
		reverse_proxy $A {
			@ok status 2xx
			handle_response @ok {
				copy_response_headers
				reverse_proxy $B
			}
		}`, 200, "a"},
		{"a retry after the first upstream's 503 takes the second's 200",
			app{503, []string{"X-Session-Set-Role: a"}}, app{200, []string{"X-Session-Set-Role: b"}}, `
		reverse_proxy $A $B {
			lb_policy first
			lb_retries 1
			fail_duration 1m
			max_fails 1
			unhealthy_status 503
			lb_retry_match {
				expression ` + "`{rp.status_code} == 503`" + `
			}
		}`, 200, "b"},
		{"a retry after the first upstream's 503 takes the second's 200, whose handle_response copies it",
			app{503, []string{"X-Session-Set-Role: a"}}, app{200, []string{"X-Session-Set-Role: b"}}, `
		reverse_proxy $A $B {
			lb_policy first
			lb_retries 1
			fail_duration 1m
			max_fails 1
			unhealthy_status 503
			lb_retry_match {
				expression ` + "`{rp.status_code} == 503`" + `
			}
			@ok status 2xx
			handle_response @ok {
				copy_response
			}
		}`, 200, "b"},
	}
	eachStore(t, func(t *testing.T, store string) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				handlers := strings.NewReplacer("$A", fixedApp(t, c.a.status, c.a.fields...), "$B", fixedApp(t, c.b.status, c.b.fields...)).Replace(c.handlers)
				s := newChainSite(t, store, "", handlers)
				alice := login(t, s, "alice")
				expectChainOutcome(t, s, alice, alice.get("/page"), c.status, c.role)
			})
		}
	})
}

// expectChainOutcome checks the response to alice's chained request: its
// status, no command of the apps on it, and alice's session afterwards,
// which holds role only if the commands applied ("" if none was to).
func expectChainOutcome(t *testing.T, s *site, alice *visitor, res *response, status int, role string) {
	t.Helper()
	expectStatus(t, res, status)
	if got := res.Header.Values("Set-Cookie"); len(got) != 0 && role == "" {
		t.Fatalf("the response set cookies %q, though no command was to apply", got)
	}
	if got := res.Header.Values("X-Session-Set-Role"); len(got) != 0 {
		t.Fatalf("a command reached the client: X-Session-Set-Role %q", got)
	}
	want := map[string]string{"user": "alice", "cart": "apple"}
	if role != "" {
		want["role"] = role
	}
	who := &visitor{site: s, sid: alice.sid}
	got := map[string]string{}
	for name, v := range who.get("/whoami").session() {
		got[strings.ToLower(strings.TrimPrefix(name, "X-Session-"))] = v
	}
	if !maps.Equal(got, want) {
		t.Fatalf("session afterwards = %v, want %v", got, want)
	}
}

// newChainSite starts a site whose session handler logs in and shows the
// session through the app, and sends every other request to handlers;
// before are routes defined ahead of the site (named routes).
func newChainSite(t *testing.T, store, before, handlers string) *site {
	t.Helper()
	s, _ := newSiteFrom(t, store, before+`
http://127.0.0.1:$PORT {
	session {
		$STORE
	}
	handle /login {
		reverse_proxy $APP
	}
	handle /whoami {
		reverse_proxy $APP
	}
	handle {`+handlers+`
	}
}
`)
	return s
}
