package caddysession

import (
	"encoding/json"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	cases := []adaptCase{
		{"bare", `session`, `{}`},
		{"everything", `session {
			store bolt /var/lib/sessions.db {
				lock_timeout 2s
				no_sync
			}
			cookie __Host-sid {
				path /
				secure always
				same_site none
				partitioned
				priority high
			}
			idle_timeout 15m
			absolute_timeout 8h
			touch_interval 30s
			header_prefix X-Sess-
			renew_on user role
			writable user role cart
			forward_cookie
			limits {
				keys 10
				value_size 1KiB
				session_size 8KiB
			}
		}`, `{"store":{"backend":"bolt","lock_timeout":2000000000,"no_sync":true,"path":"/var/lib/sessions.db"},` +
			`"cookie":{"name":"__Host-sid","path":"/","secure":"always","same_site":"none","partitioned":true,"priority":"high"},` +
			`"idle_timeout":900000000000,"absolute_timeout":28800000000000,"touch_interval":30000000000,` +
			`"header_prefix":"X-Sess-","renew_on":["user","role"],"writable":["user","role","cart"],"forward_cookie":true,` +
			`"limits":{"keys":10,"value_size":1024,"session_size":8192}}`},
		{"tunnels interval", `session {
			tunnels 30s
		}`, `{"tunnels":{"check_interval":30000000000}}`},
		{"tunnels keep", `session {
			tunnels keep
		}`, `{"tunnels":{"keep":true}}`},
		{"shared_cache allow", `session {
			shared_cache allow
		}`, `{"shared_cache":"allow"}`},
		{"shared_cache private", `session {
			shared_cache private
		}`, `{"shared_cache":"private"}`},
		{"cookie name only", `session {
			cookie app_session
		}`, `{"cookie":{"name":"app_session"}}`},
		{"priority in any case", `session {
			cookie {
				priority Low
			}
		}`, `{"cookie":{"priority":"Low"}}`},
		// Refused when the config loads, beside same_site none without
		// secure always, not when it is adapted.
		{"partitioned alone", `session {
			cookie {
				partitioned
			}
		}`, `{"cookie":{"partitioned":true}}`},
	}
	checkAdapts(t, cases)
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	cases := map[string]string{
		"argument on the directive": `session foo`,
		"unknown subdirective":      "session {\n colour blue \n}",
		"duration missing":          "session {\n idle_timeout \n}",
		"negative duration":         "session {\n idle_timeout -1m \n}",
		"two durations":             "session {\n idle_timeout 1m 2m \n}",
		"bad renew_on key":          "session {\n renew_on a.b \n}",
		"empty writable":            "session {\n writable \n}",
		"forward_cookie arg":        "session {\n forward_cookie yes \n}",
		"shared_cache missing":      "session {\n shared_cache \n}",
		"shared_cache unknown":      "session {\n shared_cache public \n}",
		"shared_cache two":          "session {\n shared_cache allow private \n}",
		"bad value_size":            "session {\n limits {\n value_size lots \n}\n}",
		"zero keys":                 "session {\n limits {\n keys 0 \n}\n}",
		"unknown limit":             "session {\n limits {\n depth 3 \n}\n}",
		"cookie setting no value":   "session {\n cookie {\n domain \n}\n}",
		"bad same_site":             "session {\n cookie {\n same_site loose \n}\n}",
		"bad priority":              "session {\n cookie {\n priority urgent \n}\n}",
		"priority missing":          "session {\n cookie {\n priority \n}\n}",
		"partitioned arg":           "session {\n cookie {\n partitioned yes \n}\n}",
		"repeated cookie setting":   "session {\n cookie {\n path /a \n path /b \n}\n}",
		"unknown cookie setting":    "session {\n cookie {\n max_age 1h \n}\n}",
		"bad prefix":                "session {\n header_prefix X-Session \n}",
		"unknown bolt option":       "session {\n store bolt {\n compress \n}\n}",
		"unknown store":             "session {\n store cassandra \n}",
	}
	checkRefused(t, cases)
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatal(err)
	}
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return string(xs) == string(ys)
}

// subdirectiveRow is a line of the session block and what it adapts to:
// the JSON of the field it sets, or "" for an error.
type subdirectiveRow struct{ line, want string }

// checkSubdirective adapts each row's line inside a session block and
// checks the JSON of the field that field returns.
func checkSubdirective(t *testing.T, rows []subdirectiveRow, field func(*Handler) any) {
	t.Helper()
	for _, c := range rows {
		t.Run(c.line, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("session {\n" + c.line + "\n}"))
			if c.want == "" {
				if err == nil {
					t.Fatalf("no error; got %+v", field(&h))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(field(&h))
			if !jsonEqual(t, string(got), c.want) {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

// adaptCase is a session block and the JSON of the handler it adapts to.
type adaptCase struct{ name, input, want string }

// checkAdapts adapts each case's block and checks the handler's JSON.
func checkAdapts(t *testing.T, cases []adaptCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h Handler
			if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.input)); err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(h)
			if !jsonEqual(t, string(got), c.want) {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

// checkRefused adapts each block, by name, which must fail.
func checkRefused(t *testing.T, inputs map[string]string) {
	t.Helper()
	for name, input := range inputs {
		t.Run(name, func(t *testing.T) {
			var h Handler
			if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err == nil {
				t.Fatalf("no error for %q", input)
			}
		})
	}
}
