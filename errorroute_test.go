package caddysession

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestSessionDirectiveGuardsErrorRoutes: the Caddyfile's session directive
// adds the guard as the first error route of its site, beside the site's
// own handle_errors blocks, and only for a session at the site's top
// level.
func TestSessionDirectiveGuardsErrorRoutes(t *testing.T) {
	const guard = `{"handle":[{"handler":"session_errors"}],"match":[{"path":["*"]}]}`
	site := func(routes ...string) string {
		out := `{"routes":[{"handle":[{"handler":"subroute","routes":[`
		for i, r := range routes {
			if i > 0 {
				out += ","
			}
			out += r
		}
		return out + `]}],"match":[{"host":["example.com"]}],"terminal":true}]}`
	}
	respond := func(body string) string {
		return `{"handle":[{"handler":"subroute","routes":[{"handle":[{"body":"` + body + `","handler":"static_response"}]}]}]}`
	}
	rows := []struct {
		name, caddyfile string
		want            string // the server's "errors", or "" for none
	}{
		{"no handle_errors: the guard alone", `example.com {
	session
	respond "ok"
}`, site(guard)},
		{"first, ahead of handle_errors with and without status codes", `example.com {
	session
	handle_errors {
		respond "error"
	}
	handle_errors 404 {
		respond "not here"
	}
	respond "ok"
}`, site(guard,
			`{"handle":[{"handler":"subroute","routes":[{"handle":[{"body":"not here","handler":"static_response"}]}]}],`+
				`"match":[{"expression":"{http.error.status_code} in [404]"}]}`,
			respond("error"))},
		{"the session's header prefix", `example.com {
	session {
		header_prefix X-Sess-
	}
	respond "ok"
}`, site(`{"handle":[{"handler":"session_errors","header_prefix":"X-Sess-"}],"match":[{"path":["*"]}]}`)},
		{"a session with a matcher guards every error of the site", `example.com {
	session /app/*
	respond "ok"
}`, site(guard)},
		{"nested in a route block: no guard", `example.com {
	route {
		session
		respond "ok"
	}
}`, ""},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(tc.caddyfile+"\n"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %v", warnings)
			}
			var cfg struct {
				Apps struct {
					HTTP struct {
						Servers map[string]struct {
							Errors json.RawMessage `json:"errors"`
						} `json:"servers"`
					} `json:"http"`
				} `json:"apps"`
			}
			if err := json.Unmarshal(adapted, &cfg); err != nil {
				t.Fatal(err)
			}
			got := normalize(t, cfg.Apps.HTTP.Servers["srv0"].Errors)
			if want := normalize(t, json.RawMessage(tc.want)); got != want {
				t.Errorf("errors:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// normalize compacts JSON with its object keys sorted, "" for none.
func normalize(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	if len(bytes.TrimSpace(raw)) == 0 {
		return ""
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	out, _ := json.Marshal(v) // maps marshal with sorted keys
	return string(out)
}
