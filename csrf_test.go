package caddysession

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/session"
)

// TestJudgeOrigin is the decision table of the origin check: Fetch
// Metadata, else Origin, else Referer, else the request passes unless
// strict.
func TestJudgeOrigin(t *testing.T) {
	const self = "https://app.example.com"
	plain := &csrfGuard{trusted: map[string]bool{}}
	trusting := &csrfGuard{trusted: map[string]bool{"https://login.example.com": true, "http://localhost:8080": true}}
	sameSite := &csrfGuard{trusted: map[string]bool{}, sameSite: true}
	strict := &csrfGuard{trusted: map[string]bool{}, strict: true}
	rows := []struct {
		name                     string
		g                        *csrfGuard
		fetchSite, origin, refer string
		want                     csrfVerdict
	}{
		{"same-origin", plain, "same-origin", "", "", csrfPass},
		{"same-origin beats a foreign Origin", plain, "same-origin", "https://evil.example", "", csrfPass},
		{"none (typed, bookmarked)", plain, "none", "", "", csrfPass},
		{"cross-site", plain, "cross-site", "https://evil.example", "", csrfCrossSite},
		{"cross-site with our own Origin (a lie no browser tells)", plain, "cross-site", self, "", csrfCrossSite},
		{"cross-site from a trusted origin", trusting, "cross-site", "https://login.example.com", "", csrfPass},
		{"cross-site from a trusted origin, default port written", trusting, "cross-site", "https://login.example.com:443", "", csrfPass},
		{"cross-site from a trusted host on another port", trusting, "cross-site", "https://login.example.com:8443", "", csrfCrossSite},
		{"cross-site from a trusted host in another scheme", trusting, "cross-site", "http://login.example.com", "", csrfCrossSite},
		{"cross-site, trusted origin only in Referer", trusting, "cross-site", "", "https://login.example.com/form", csrfCrossSite},
		{"same-site", plain, "same-site", "https://blog.example.com", "", csrfSameSite},
		{"same-site, allowed", sameSite, "same-site", "https://blog.example.com", "", csrfPass},
		{"same-site from a trusted origin", trusting, "same-site", "https://login.example.com", "", csrfPass},
		{"an unknown Sec-Fetch-Site", plain, "cross-origin", self, "", csrfCrossSite},
		{"Sec-Fetch-Site in capitals (no browser)", plain, "Same-Origin", self, "", csrfCrossSite},
		{"Origin: ours", plain, "", self, "", csrfPass},
		{"Origin: ours, default port written", plain, "", "https://app.example.com:443", "", csrfPass},
		{"Origin: ours in capitals", plain, "", "HTTPS://APP.EXAMPLE.COM", "", csrfPass},
		{"Origin: ours in http", plain, "", "http://app.example.com", "", csrfOtherOrigin},
		{"Origin: ours on another port", plain, "", "https://app.example.com:8443", "", csrfOtherOrigin},
		{"Origin: a suffix of ours", plain, "", "https://app.example.com.evil.example", "", csrfOtherOrigin},
		{"Origin: another site", plain, "", "https://evil.example", "", csrfOtherOrigin},
		{"Origin: another site, our Referer (the Referer is not asked)", plain, "", "https://evil.example", self + "/form", csrfOtherOrigin},
		{"Origin: trusted", trusting, "", "http://localhost:8080", "", csrfPass},
		{"Origin: null", plain, "", "null", "", csrfNullOrigin},
		{"Origin: null, our Referer", plain, "", "null", self + "/", csrfNullOrigin},
		{"Origin: garbage", plain, "", "not an origin", "", csrfOtherOrigin},
		{"Origin: another scheme", plain, "", "ftp://app.example.com", "", csrfOtherOrigin},
		{"Referer: ours", plain, "", "", self + "/cart?x=1", csrfPass},
		{"Referer: another site", plain, "", "", "https://evil.example/" + self, csrfOtherReferer},
		{"Referer: ours as a userinfo trick", plain, "", "", "https://app.example.com@evil.example/", csrfOtherReferer},
		{"Referer: trusted", trusting, "", "", "https://login.example.com/form", csrfPass},
		{"Referer: garbage", plain, "", "", "::", csrfOtherReferer},
		{"none of them", plain, "", "", "", csrfPass},
		{"none of them, strict", strict, "", "", "", csrfNoHeaders},
		{"strict, our Origin", strict, "", self, "", csrfPass},
		{"strict, same-origin", strict, "same-origin", "", "", csrfPass},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.g.judgeOrigin(tc.fetchSite, tc.origin, tc.refer, self); got != tc.want {
				t.Fatalf("judgeOrigin(%q, %q, %q) = %q, want %q", tc.fetchSite, tc.origin, tc.refer, got, tc.want)
			}
		})
	}
}

// TestRequestOrigin: the origin a request was sent to is the connection's
// scheme and the Host, or what a trusted proxy says it was, never what
// another client says.
func TestRequestOrigin(t *testing.T) {
	rows := []struct {
		name    string
		host    string
		tls     bool
		trusted bool
		proto   string // X-Forwarded-Proto
		fwHost  string // X-Forwarded-Host
		want    string
	}{
		{name: "http", host: "127.0.0.1:8080", want: "http://127.0.0.1:8080"},
		{name: "http, default port", host: "example.com:80", want: "http://example.com"},
		{name: "https", host: "Example.COM", tls: true, want: "https://example.com"},
		{name: "https, default port", host: "example.com:443", tls: true, want: "https://example.com"},
		{name: "IPv6", host: "[::1]:8443", tls: true, want: "https://[::1]:8443"},
		{name: "forwarded headers from an untrusted client", host: "internal:8080", proto: "https", fwHost: "app.example.com", want: "http://internal:8080"},
		{name: "forwarded headers from a trusted proxy", host: "internal:8080", trusted: true, proto: "https", fwHost: "app.example.com", want: "https://app.example.com"},
		{name: "a chain of proxies: the first", host: "internal:8080", trusted: true, proto: "https, http", fwHost: "app.example.com, internal", want: "https://app.example.com"},
		{name: "a trusted proxy that says only the scheme", host: "app.example.com", trusted: true, proto: "HTTPS", want: "https://app.example.com"},
		{name: "a trusted proxy with a scheme of no origin", host: "app.example.com", trusted: true, proto: "gopher", want: "http://app.example.com"},
		{name: "a trusted proxy that says nothing", host: "app.example.com", tls: true, trusted: true, want: "https://app.example.com"},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.Host = tc.host
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if tc.proto != "" {
				r.Header.Set("X-Forwarded-Proto", tc.proto)
			}
			if tc.fwHost != "" {
				r.Header.Set("X-Forwarded-Host", tc.fwHost)
			}
			vars := map[string]any{caddyhttp.TrustedProxyVarKey: tc.trusted}
			r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, vars))
			if got := requestOrigin(r); got != tc.want {
				t.Fatalf("requestOrigin = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseTrustedOrigin(t *testing.T) {
	good := map[string]string{
		"https://app.example.com":      "https://app.example.com",
		"https://App.Example.com:443":  "https://app.example.com",
		"http://localhost:8080":        "http://localhost:8080",
		"https://app.example.com/":     "https://app.example.com",
		"http://[::1]:9000":            "http://[::1]:9000",
		"https://login.example.com:80": "https://login.example.com:80",
	}
	for in, want := range good {
		if got, err := parseTrustedOrigin(in); err != nil || got != want {
			t.Errorf("parseTrustedOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"app.example.com", "*.example.com", "https://*.example.com", "ftp://app.example.com",
		"https://app.example.com/login", "https://user@app.example.com", "https://app.example.com?x", "https://", "null", ""} {
		if got, err := parseTrustedOrigin(bad); err == nil {
			t.Errorf("parseTrustedOrigin(%q) = %q, want an error", bad, got)
		}
	}
}

// TestCSRFTokenCheck: the token is taken from the header, or else from
// the first max_body bytes of a form; the body reaches the app as sent.
func TestCSRFTokenCheck(t *testing.T) {
	want := session.CSRFToken(session.NewID())
	other := session.CSRFToken(session.NewID())
	const maxBody = 1024
	tok, err := (&CSRFTokenConfig{MaxBody: maxBody}).build(session.NewProtocol(session.DefaultHeaderPrefix, nil, session.DefaultLimits()))
	if err != nil {
		t.Fatal(err)
	}
	form := func(fields ...string) (string, string) {
		return "application/x-www-form-urlencoded", strings.Join(fields, "&")
	}
	multi := func(fields ...string) (string, string) {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		for i := 0; i+1 < len(fields); i += 2 {
			if fields[i] == "file" {
				fw, _ := w.CreateFormFile("csrf_token", "token.txt")
				fw.Write([]byte(fields[i+1]))
				continue
			}
			w.WriteField(fields[i], fields[i+1])
		}
		w.Close()
		return w.FormDataContentType(), b.String()
	}
	padding := strings.Repeat("x", maxBody+100)
	type body func() (contentType, body string)
	rows := []struct {
		name    string
		headers []string // name, value pairs
		body    body
		want    csrfVerdict
	}{
		{name: "header", headers: []string{"X-Csrf-Token", want}, want: csrfPass},
		{name: "header, wrong", headers: []string{"X-CSRF-Token", other}, want: csrfTokenWrong},
		{name: "header, empty", headers: []string{"X-CSRF-Token", ""}, want: csrfTokenWrong},
		{name: "header twice", headers: []string{"X-CSRF-Token", want, "X-CSRF-Token", want}, want: csrfTokenTwice},
		{name: "header wrong, form right: the header decides", headers: []string{"X-CSRF-Token", other},
			body: func() (string, string) { return form("csrf_token=" + want) }, want: csrfTokenWrong},
		{name: "nothing", want: csrfTokenMissing},
		{name: "JSON", body: func() (string, string) { return "application/json", `{"csrf_token":"` + want + `"}` }, want: csrfTokenMissing},
		{name: "form", body: func() (string, string) { return form("amount=10", "csrf_token="+want, "to=bob") }, want: csrfPass},
		{name: "form, last field", body: func() (string, string) { return form("amount=10", "csrf_token="+want) }, want: csrfPass},
		{name: "form with a charset", body: func() (string, string) {
			return "application/x-www-form-urlencoded; charset=UTF-8", "csrf_token=" + want
		}, want: csrfPass},
		{name: "form, wrong", body: func() (string, string) { return form("csrf_token="+other, "amount=10") }, want: csrfTokenWrong},
		{name: "form, twice: the first decides", body: func() (string, string) { return form("csrf_token="+other, "csrf_token="+want) }, want: csrfTokenWrong},
		{name: "form, a malformed field before it", body: func() (string, string) { return form("a=%zz", "csrf_token="+want) }, want: csrfPass},
		{name: "form, no field", body: func() (string, string) { return form("amount=10") }, want: csrfTokenMissing},
		{name: "form, empty", body: func() (string, string) { return form() }, want: csrfTokenMissing},
		{name: "form, field beyond max_body", body: func() (string, string) { return form("pad="+padding, "csrf_token="+want) }, want: csrfTokenBeyondMax},
		{name: "form, field cut by max_body", body: func() (string, string) {
			return form("pad="+padding[:maxBody-len("pad=&csrf_token=")-10], "csrf_token="+want, "amount=10")
		}, want: csrfTokenBeyondMax},
		{name: "form, field ends at max_body, more after", body: func() (string, string) {
			return form("pad="+padding[:maxBody-len("pad=&csrf_token=&")-len(want)], "csrf_token="+want, "amount=10")
		}, want: csrfPass},
		{name: "form, field ends at max_body, the whole body", body: func() (string, string) {
			return form("pad="+padding[:maxBody-len("pad=&csrf_token=")-len(want)], "csrf_token="+want)
		}, want: csrfPass},
		{name: "form, field within max_body, a long body after", body: func() (string, string) { return form("csrf_token="+want, "pad="+padding+padding) }, want: csrfPass},
		{name: "multipart", body: func() (string, string) { return multi("amount", "10", "csrf_token", want, "to", "bob") }, want: csrfPass},
		{name: "multipart, wrong", body: func() (string, string) { return multi("csrf_token", other) }, want: csrfTokenWrong},
		{name: "multipart, no field", body: func() (string, string) { return multi("amount", "10") }, want: csrfTokenMissing},
		{name: "multipart, a file of the field's name", body: func() (string, string) { return multi("file", want) }, want: csrfTokenMissing},
		{name: "multipart, field beyond max_body", body: func() (string, string) { return multi("pad", padding, "csrf_token", want) }, want: csrfTokenBeyondMax},
		{name: "multipart, field first, a long file after", body: func() (string, string) { return multi("csrf_token", want, "pad", padding+padding) }, want: csrfPass},
		{name: "multipart without a boundary", body: func() (string, string) {
			_, b := multi("csrf_token", want)
			return "multipart/form-data", b
		}, want: csrfTokenMissing},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			var ct, sent string
			if tc.body != nil {
				ct, sent = tc.body()
			}
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(sent))
			if ct != "" {
				r.Header.Set("Content-Type", ct)
			}
			for i := 0; i+1 < len(tc.headers); i += 2 {
				r.Header.Add(tc.headers[i], tc.headers[i+1])
			}
			got, err := tok.check(r, want)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("check = %q, want %q", got, tc.want)
			}
			rest, err := io.ReadAll(r.Body)
			if err != nil || string(rest) != sent {
				t.Errorf("the app would read %d bytes (%v), want the %d sent", len(rest), err, len(sent))
			}
		})
	}
}

// TestCSRFTokenBodyErrors: a body that cannot be read is the client's
// error, and one over Caddy's request_body limit a 413.
func TestCSRFTokenBodyErrors(t *testing.T) {
	tok, err := (&CSRFTokenConfig{}).build(session.NewProtocol(session.DefaultHeaderPrefix, nil, session.DefaultLimits()))
	if err != nil {
		t.Fatal(err)
	}
	rows := []struct {
		name   string
		body   func(w http.ResponseWriter) io.ReadCloser
		status int
	}{
		{"over request_body's max_size", func(w http.ResponseWriter) io.ReadCloser {
			return http.MaxBytesReader(w, io.NopCloser(strings.NewReader(strings.Repeat("a=b&", 100))), 10)
		}, http.StatusRequestEntityTooLarge},
		{"the client went away", func(http.ResponseWriter) io.ReadCloser {
			return io.NopCloser(io.MultiReader(strings.NewReader("a=b"), errReader{}))
		}, http.StatusBadRequest},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Body = tc.body(httptest.NewRecorder())
			_, err := tok.check(r, "x")
			var he caddyhttp.HandlerError
			if !errors.As(err, &he) || he.StatusCode != tc.status {
				t.Fatalf("check: %v, want a %d", err, tc.status)
			}
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestCSRFTokenConfigErrors(t *testing.T) {
	p := session.NewProtocol("X-Sess-", nil, session.DefaultLimits())
	for name, c := range map[string]CSRFTokenConfig{
		"header in the namespace":            {Header: "X-Sess-Csrf"},
		"header in the namespace, '_' for -": {Header: "x_sess_csrf"},
		"not a header name":                  {Header: "X CSRF"},
		"negative max_body":                  {MaxBody: -1},
		"max_body over 16MiB":                {MaxBody: 17 << 20},
	} {
		if _, err := c.build(p); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestUnmarshalCSRF(t *testing.T) {
	cases := []adaptCase{
		{"bare", "session {\n csrf \n}", `{"csrf":{}}`},
		{"everything but exempt", `session {
			csrf {
				trusted_origins https://login.example.com http://localhost:8080
				allow_same_site
				strict
				token {
					header X-XSRF-Token
					field _token
					max_body 1MiB
				}
			}
		}`, `{"csrf":{"trusted_origins":["https://login.example.com","http://localhost:8080"],"allow_same_site":true,"strict":true,` +
			`"token":{"header":"X-XSRF-Token","field":"_token","max_body":1048576}}}`},
		{"token with its defaults", "session {\n csrf {\n token \n}\n}", `{"csrf":{"token":{}}}`},
	}
	checkAdapts(t, cases)
	checkRefused(t, map[string]string{
		"an argument":             "session {\n csrf on \n}",
		"unknown setting":         "session {\n csrf {\n referer_only \n}\n}",
		"no trusted origin":       "session {\n csrf {\n trusted_origins \n}\n}",
		"a wildcard origin":       "session {\n csrf {\n trusted_origins https://*.example.com \n}\n}",
		"an origin with a path":   "session {\n csrf {\n trusted_origins https://example.com/app \n}\n}",
		"strict with an argument": "session {\n csrf {\n strict yes \n}\n}",
		"token with an argument":  "session {\n csrf {\n token on \n}\n}",
		"bad max_body":            "session {\n csrf {\n token {\n max_body lots \n}\n}\n}",
		"max_body too large":      "session {\n csrf {\n token {\n max_body 1GiB \n}\n}\n}",
		"exempt outside a site":   "session {\n csrf {\n exempt /hooks/* \n}\n}",
		"given twice":             "session {\n csrf \n csrf \n}",
	})
}

// FuzzCSRFForm: whatever the body of a form, looking for the token never
// fails, gives the app the body byte for byte, and accepts only a body
// that holds the token, as it is or encoded.
func FuzzCSRFForm(f *testing.F) {
	const want = "khxBOQxw4tTJBtFUPHsYxvKiFFihqpTEQe_uJ48AZsM"
	f.Add([]byte("amount=10&csrf_token="+want), false, uint16(64))
	f.Add([]byte("csrf_token="+want+"&csrf_token=x"), false, uint16(40))
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n"+want+"\r\n--b--\r\n"), true, uint16(200))
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n"+want), true, uint16(90))
	f.Add([]byte("%zz=1&csrf_token=%6bhxBOQxw4tTJBtFUPHsYxvKiFFihqpTEQe_uJ48AZsM"), false, uint16(1000))
	p := session.NewProtocol(session.DefaultHeaderPrefix, nil, session.DefaultLimits())
	f.Fuzz(func(t *testing.T, body []byte, multi bool, maxBody uint16) {
		tok, err := (&CSRFTokenConfig{MaxBody: int(maxBody%4096) + 1}).build(p)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if multi {
			r.Header.Set("Content-Type", "multipart/form-data; boundary=b")
		}
		verdict, err := tok.check(r, want)
		if err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(r.Body)
		if err != nil || !bytes.Equal(rest, body) {
			t.Fatalf("the app would read %q (%v), want %q", rest, err, body)
		}
		// The token is there as it is, or percent-encoded (a form's
		// encoding, which url.ParseQuery decodes, as the app does).
		if verdict == csrfPass && !bytes.Contains(body, []byte(want)) && !bytes.Contains(body, []byte("%")) && !bytes.Contains(body, []byte("Content-Transfer-Encoding")) {
			t.Fatalf("accepted %q, which holds no token", body)
		}
	})
}

// TestCSRFReasons: every refusal has a metric label of its own.
func TestCSRFReasons(t *testing.T) {
	seen := map[string]bool{}
	for verdict, reason := range csrfReasons {
		if verdict == csrfPass || seen[reason] || !regexp.MustCompile(`^[a-z_]+$`).MatchString(reason) {
			t.Errorf("verdict %q has label %q", verdict, reason)
		}
		seen[reason] = true
	}
	if len(seen) != 10 {
		t.Errorf("%d refusals have labels, want the 10 of csrf.go", len(seen))
	}
}
