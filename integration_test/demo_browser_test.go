package integration_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/caddy-session/caddy-session/internal/browsertest"
)

// TestDemoInABrowser runs the README's first command's config,
// Caddyfile.example, and uses its page as a person would, in chromium:
// log in, fill the cart, see the headers the app received, find the
// session cookie out of the page's reach, log out, and log out
// everywhere.
func TestDemoInABrowser(t *testing.T) {
	slow(t, "it starts a browser in another process")
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf("{\n\tadmin localhost:%d\n}\n", adminPort)+readExample(t, "Caddyfile.example"), "caddyfile")
	const page = "http://localhost:8080/"

	b := browsertest.Start(t)
	if status := b.Navigate(page); status != http.StatusOK {
		t.Fatalf("the demo page: %d", status)
	}
	if got := b.Text("#account"); !strings.Contains(got, "User name") {
		t.Fatalf("an anonymous visit shows %q, want the login form", got)
	}
	b.Do(chromedp.SetValue("#user-name", "bob"))
	if status := b.Click("#login button"); status != http.StatusOK {
		t.Fatalf("logging in led to %d", status)
	}
	if got := b.Text("#user"); got != "bob" {
		t.Fatalf("after the login the page shows user %q", got)
	}
	for _, step := range []struct{ button, cart string }{{"#add-apple", "apple"}, {"#add-pear", "apple pear"}} {
		if status := b.Click(step.button); status != http.StatusOK {
			t.Fatalf("%s led to %d", step.button, status)
		}
		if got := b.Text("#cart-items"); got != step.cart {
			t.Fatalf("after %s the cart is %q, want %q", step.button, got, step.cart)
		}
	}
	headers := b.Text("#headers")
	for _, want := range []string{"X-Session-User\tbob", "X-Session-Cart\tapple pear"} {
		if !strings.Contains(headers, want) {
			t.Fatalf("the panel of headers shows %q, want a row %q", headers, want)
		}
	}

	// The browser holds the session cookie, and the page cannot read it.
	cookies, err := chromedp.Call(b.Context(), network.GetCookies, network.GetCookiesParams{URLs: []string{page}})
	if err != nil {
		t.Fatal(err)
	}
	var sid *network.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == "sid" {
			sid = c
		}
	}
	if sid == nil || !sid.HTTPOnly {
		t.Fatalf("the browser's session cookie: %+v, want an HttpOnly sid", sid)
	}
	if got := b.Text("#js-cookies"); strings.Contains(got, "sid") || strings.Contains(got, sid.Value) {
		t.Fatalf("the page's JavaScript read %s", got)
	}

	// Log out.
	if status := b.Click("#logout"); status != http.StatusOK || !strings.Contains(b.Text("#account"), "User name") {
		t.Fatalf("logging out led to %d, %q", status, b.Text("#account"))
	}

	// Log out everywhere: bob's session on another device ends too.
	other := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := other.Post(page+"login?user=bob", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var device string
	for _, c := range res.Cookies() {
		if c.Name == "sid" {
			device = c.Value
		}
	}
	if device == "" {
		t.Fatalf("the other device's login: %s, no cookie", res.Status)
	}
	loggedIn := func() bool {
		req, _ := http.NewRequest(http.MethodGet, page+"whoami", nil)
		req.Header.Set("Cookie", "sid="+device)
		res, err := other.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(string(body), "You are: bob")
	}
	if !loggedIn() {
		t.Fatal("the other device is not logged in")
	}
	b.Navigate(page)
	b.Do(chromedp.SetValue("#user-name", "bob"))
	b.Click("#login button")
	if status := b.Click("#logout-everywhere"); status != http.StatusOK || !strings.Contains(b.Text("#account"), "User name") {
		t.Fatalf("logging out everywhere led to %d, %q", status, b.Text("#account"))
	}
	if loggedIn() {
		t.Fatal("the other device is still logged in after logging out everywhere")
	}
}
