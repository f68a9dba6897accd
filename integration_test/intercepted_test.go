package integration_test

import (
	"maps"
	"net/http"
	"testing"
)

// TestCommandsOnAnInterceptedResponse: the app answers below 500 with
// commands, and intercept or reverse_proxy's handle_response answers the
// client in its own way (a login page in place of the app's 401, say).
// Where the handler keeps the app's header fields in the response
// (intercept, replace_status, copy_response_headers, copy_response), the commands are
// among them and apply; where it answers without them
// (reverse_proxy's handle_response, which drops the app's fields, its
// Set-Cookie too, unless copy_response_headers copies them), they are
// dropped with the rest (README, "Response from the upstream"). Either
// way none reaches the client.
func TestCommandsOnAnInterceptedResponse(t *testing.T) {
	configs := []struct {
		name, handlers string
		applied        bool
	}{
		{"intercept handle_response respond", `
	intercept {
		@s status 401
		handle_response @s {
			respond "login" 200
		}
	}
	reverse_proxy $APP`, true},
		{"intercept replace_status", `
	intercept {
		@s status 401
		replace_status @s 200
	}
	reverse_proxy $APP`, true},
		{"reverse_proxy replace_status", `
	reverse_proxy $APP {
		@s status 401
		replace_status @s 200
	}`, true},
		{"reverse_proxy handle_response respond", `
	reverse_proxy $APP {
		@s status 401
		handle_response @s {
			respond "login" 200
		}
	}`, false},
		{"reverse_proxy handle_response copy_response_headers and respond", `
	reverse_proxy $APP {
		@s status 401
		handle_response @s {
			copy_response_headers
			respond "login" 200
		}
	}`, true},
		{"reverse_proxy handle_response copy_response 200", `
	reverse_proxy $APP {
		@s status 401
		handle_response @s {
			copy_response 200
		}
	}`, true},
	}
	eachStore(t, func(t *testing.T, store string) {
		for _, c := range configs {
			t.Run(c.name, func(t *testing.T) {
				s, _ := newSiteFrom(t, store, `http://127.0.0.1:$PORT {
	session {
		$STORE
	}`+c.handlers+`
}
`)
				alice := login(t, s, "alice")
				// The app streams its answer, so that it has no
				// Content-Length that Caddy would keep on the shorter
				// replacement body.
				r := alice.do(http.MethodGet, "/", orders([]string{"Test-Status", "401", "Test-Flush", "1"}, "X-Session-Set-Role: guest", "X-Session-Delete: cart")...)
				expectStatus(t, r, http.StatusOK)
				want := map[string]string{"user": "alice", "cart": "apple"}
				if c.applied {
					want = map[string]string{"user": "alice", "role": "guest"}
				}
				if got := sessionOf(t, s, "sid="+alice.sid); !maps.Equal(got, want) {
					t.Fatalf("session afterwards = %v, want %v", got, want)
				}
			})
		}
	})
}
