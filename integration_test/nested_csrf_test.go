package integration_test

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A request that passes two session handlers with csrf's token, or one
// twice, is checked by each. (The second answers with respond: the body
// is gone, and reverse_proxy would answer 502 for it, with or without a
// session handler; and intercept leaves the first app's Content-Length
// in the response, which the test removes.) The form's body that the first check read
// (and put back) is gone by the second when an app answered in between:
// a `session` in a `handle_response` runs after reverse_proxy sent the
// body to the first app. The second check must not refuse a POST whose
// token the first one found in that body; nor may it let through one
// that the first refused, or one that never showed the token.

// bodyApp is namedApp that reads the request's body first, as an app
// that parses a form does.
type bodyApp struct{ namedApp }

func (a bodyApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	a.namedApp.ServeHTTP(w, r)
}

// TestNestedCSRFTokenOfAConsumedForm: a logged-in visitor posts a form to
// a path that reaches a second handler with csrf's token after the first
// app answered 401 (for the handle, before any app). Each row gives where
// the token goes, and whether the second app is to get the request.
func TestNestedCSRFTokenOfAConsumedForm(t *testing.T) {
	const opts = "csrf {\n\t\t\ttoken\n\t\t}"
	form := func(tok string) (string, io.Reader) {
		return "application/x-www-form-urlencoded", strings.NewReader(url.Values{"csrf_token": {tok}, "cart": {"pear"}}.Encode())
	}
	multi := func(tok string) (string, io.Reader) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.WriteField("csrf_token", tok)
		mw.WriteField("cart", "pear")
		mw.Close()
		return mw.FormDataContentType(), &b
	}
	rows := []struct {
		name   string
		body   func(tok string) (string, io.Reader)
		header bool   // the token in X-CSRF-Token instead
		token  string // "" the session's; else this one
		want   int
	}{
		{"the token in a form", form, false, "", http.StatusOK},
		{"the token in a multipart form", multi, false, "", http.StatusOK},
		{"the token in the header", form, true, "", http.StatusOK},
		{"a wrong token in a form", form, false, "wrong-token-wrong-token-wrong-token-wrong00", http.StatusForbidden},
		{"no token", func(string) (string, io.Reader) {
			return "application/x-www-form-urlencoded", strings.NewReader("cart=pear")
		}, false, "", http.StatusForbidden},
	}
	eachStore(t, func(t *testing.T, store string) {
		for _, c := range twiceConfigs {
			t.Run(c.name, func(t *testing.T) {
				first, second := bodyApp{namedApp{"First"}}, bodyApp{namedApp{"Second"}}
				c := nestedConfig(c, opts, opts)
				c.sites = strings.Replace(c.sites, "reverse_proxy $SECOND", "header -Content-Length\n\t\t\trespond \"second\" 200", 1)
				s := newTwiceSite(t, c, store, "", first, second)
				v := s.visitor()
				expectStatus(t, v.do(http.MethodGet, "/login", "Test-First-Header", "X-Session-Set-User: alice"), http.StatusOK)
				r := v.do(http.MethodGet, "/page")
				expectStatus(t, r, http.StatusOK)
				tok := r.seen.Headers.Get("X-Session-Meta-Csrf-Token")
				if tok == "" {
					t.Fatal("the app got no CSRF token")
				}
				for _, row := range rows {
					t.Run(row.name, func(t *testing.T) {
						sent := tok
						if row.token != "" {
							sent = row.token
						}
						kind, body := row.body(sent)
						h := []string{"Content-Type", kind, "Origin", s.self(), "Sec-Fetch-Site", "same-origin", "Test-First-Status", "401"}
						if row.header {
							h = append(h, "X-CSRF-Token", sent)
						}
						r := v.doBody(http.MethodPost, "/again/form", body, h...)
						expectStatus(t, r, row.want)
						if answered := string(r.body) == "second"; answered != (row.want == http.StatusOK) {
							t.Fatalf("the second handler answered %q", r.body)
						}
					})
				}
			})
		}
	})
}
