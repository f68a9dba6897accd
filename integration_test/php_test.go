package integration_test

// The README's PHP snippets, run as users run the plugin in front of PHP
// apps: under Debian's php-fpm, behind a Caddy of this repo with
// php_fastcgi, in the README's recipes with their reverse_proxy to
// 127.0.0.1:9000 (php-fpm's usual address) turned into php_fastcgi. The
// snippets are read from README.md when the tests run, so what the README
// shows is what is tested; where a snippet is a sketch, the lines it
// takes as given (a variable, a line that shows its result) are added
// here, each saying why.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/caddy-session/caddy-session/internal/browsertest"
	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/session"
)

// Each PHP snippet of the README is found by a line that no other has.
// TestEveryPHPSnippetIsTested fails for a snippet none of them finds, so
// that a new one comes with its test.
const (
	loginPHP   = "<?php // /login, once the password is checked"
	devicesPHP = "<?php // /account/devices"
	signPHP    = "function session_claims(array $jwks): ?array {"
	csrfPHP    = "$_SERVER['HTTP_X_SESSION_META_CSRF_TOKEN']"
	sealPHP    = "$key = hash_hkdf("
)

// readmePHP returns the README's ```php blocks in order, each without the
// indentation of a block in a list item.
func readmePHP(t *testing.T) []string {
	t.Helper()
	var blocks []string
	var block []string
	indent, in := "", false
	for _, line := range strings.Split(readExample(t, "README.md"), "\n") {
		switch {
		case !in && strings.TrimLeft(line, " \t") == "```php":
			indent, in, block = line[:len(line)-len("```php")], true, nil
		case in && line == indent+"```":
			blocks = append(blocks, strings.Join(block, "\n")+"\n")
			in = false
		case in:
			block = append(block, strings.TrimPrefix(line, indent))
		}
	}
	if in {
		t.Fatal("README.md: a ```php block is never closed")
	}
	return blocks
}

// phpSnippet returns the README's PHP snippet that holds anchor.
func phpSnippet(t *testing.T, anchor string) string {
	t.Helper()
	var found []string
	for _, block := range readmePHP(t) {
		if strings.Contains(block, anchor) {
			found = append(found, block)
		}
	}
	if len(found) != 1 {
		t.Fatalf("README.md has %d PHP snippets with %q, want 1", len(found), anchor)
	}
	return found[0]
}

// TestEveryPHPSnippetIsTested: each PHP snippet of the README is the one
// that exactly one of the tests' anchors finds.
func TestEveryPHPSnippetIsTested(t *testing.T) {
	anchors := []string{loginPHP, devicesPHP, signPHP, csrfPHP, sealPHP}
	blocks := readmePHP(t)
	if len(blocks) != len(anchors) {
		t.Errorf("README.md has %d PHP snippets, and the tests know %d", len(blocks), len(anchors))
	}
	for _, block := range blocks {
		n := 0
		for _, anchor := range anchors {
			if strings.Contains(block, anchor) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("this PHP snippet of README.md is found by %d of the tests' anchors, want 1:\n%s", n, block)
		}
	}
}

// phpApp is a PHP app: a document root of PHP files, which a php-fpm of
// the test's runs.
type phpApp struct {
	t    *testing.T
	root string
	fpm  *phpFPM
}

// startPHPApp starts the php-fpm of an app whose document root is empty
// until write fills it.
func startPHPApp(t *testing.T) *phpApp {
	t.Helper()
	return &phpApp{t: t, root: t.TempDir(), fpm: startPHPFPM(t)}
}

// write puts a PHP file in the document root: the site serves /<name>
// with <name>.php, and every other path with index.php.
func (a *phpApp) write(name, source string) {
	a.t.Helper()
	path := filepath.Join(a.root, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		a.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(source), 0o644); err != nil {
		a.t.Fatal(err)
	}
}

// site loads config, a README recipe and possibly more sites, into Caddy
// with the app in PHP: its first site address (app.example.com) becomes
// a free loopback port, each `reverse_proxy 127.0.0.1:9000` becomes
// php_fastcgi to the app's php-fpm, and a session without a store line
// gets a bolt file of the test's. The site's client follows no redirect.
func (a *phpApp) site(config string) *site {
	a.t.Helper()
	const upstream = "reverse_proxy 127.0.0.1:9000"
	if !strings.Contains(config, upstream) {
		a.t.Fatalf("the recipe has no %q to serve the PHP app in place of:\n%s", upstream, config)
	}
	port := freePort(a.t)
	config = strings.Replace(config, "app.example.com", fmt.Sprintf("http://127.0.0.1:%d", port), 1)
	config = strings.ReplaceAll(config, upstream, fmt.Sprintf("root * %s\n\tphp_fastcgi %s {\n\t\ttry_files {path}.php index.php\n\t}", a.root, a.fpm.addr))
	if !strings.Contains(config, "\t\tstore ") {
		config = withTestStore(a.t, config)
	}
	s := &site{t: a.t, tester: caddytest.NewTester(a.t), port: port}
	s.tester.Client.Jar = nil
	s.tester.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s.tester.InitServer(fmt.Sprintf("{\n\tadmin localhost:%d\n}\n", adminPort)+config, "caddyfile")
	return s
}

// submit posts form to path as a browser submits a form, with more
// request headers as name, value pairs (a User-Agent).
func (v *visitor) submit(path string, form url.Values, headers ...string) *response {
	v.site.t.Helper()
	headers = append([]string{"Content-Type", "application/x-www-form-urlencoded"}, headers...)
	return v.doBody(http.MethodPost, path, strings.NewReader(form.Encode()), headers...)
}

// loginPage is the README's login snippet as /login. The snippet runs
// "once the password is checked", with the user in $user: here the user
// is the form's, as the README's login form posts it, and every password
// is right. The line before its own <?php prints nothing: PHP drops the
// newline after ?>.
func loginPage(t *testing.T) string {
	t.Helper()
	return "<?php $user = $_POST['user']; ?>\n" + phpSnippet(t, loginPHP)
}

// logIn logs the visitor in through the README's login snippet, as user.
func (v *visitor) logIn(user string, headers ...string) {
	v.site.t.Helper()
	r := v.submit("/login", url.Values{"user": {user}}, headers...)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" || v.sid == "" {
		v.site.t.Fatalf("logging in as %s: %d, Location %q, Set-Cookie %q; want a 303 to / with a session",
			user, r.StatusCode, r.Header.Get("Location"), r.Header.Values("Set-Cookie"))
	}
}

// whoamiPage is the protected area's app besides its login: not a
// snippet of the README, it shows whom the session says the visitor is.
const whoamiPage = `<?php echo 'Hello, ', htmlspecialchars($_SERVER['HTTP_X_SESSION_USER'] ?? 'stranger');`

// TestPHPLoginSnippet runs the README's login snippet as the /login of
// the protected-area recipe, as the README's "remember me" section has
// it: a login with the box ticked gets a persistent cookie of 30 days, one
// without it a browser-session cookie, and each cookie then opens the
// area as its user.
func TestPHPLoginSnippet(t *testing.T) {
	app := startPHPApp(t)
	s := app.site(recipe(t, "<!-- recipe: protected area -->"))
	app.write("login.php", loginPage(t))
	app.write("index.php", whoamiPage)

	if r := s.visitor().get("/"); r.StatusCode != http.StatusFound || r.Header.Get("Location") != "/login?next=%2F" {
		t.Fatalf("an anonymous visitor got %d, Location %q; want the recipe's redirect to the login", r.StatusCode, r.Header.Get("Location"))
	}
	for _, row := range []struct {
		user     string
		remember bool
	}{
		{"alice", true},
		{"bob", false},
	} {
		v := s.visitor()
		form := url.Values{"user": {row.user}, "password": {"right"}}
		if row.remember {
			form.Set("remember", "1")
		}
		r := v.submit("/login", form)
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
			t.Fatalf("%s's login: %d, Location %q; want a 303 to /", row.user, r.StatusCode, r.Header.Get("Location"))
		}
		if row.remember {
			expectPersistent(t, r, "", 30*24*time.Hour)
		} else {
			expectBrowserSession(t, r, "")
		}
		if r := v.get("/"); r.StatusCode != http.StatusOK || string(r.body) != "Hello, "+row.user {
			t.Fatalf("%s's cookie opens / with %d %q, want 200 %q", row.user, r.StatusCode, r.body, "Hello, "+row.user)
		}
	}
}

// shownDevice is one device as the README's devices page shows it.
type shownDevice struct {
	browser string // the User-Agent, as HTML
	this    bool   // marked as the device the page is shown on
	logOut  string // the session its Log out button posts; none for this device
}

// devicesPageEntry is one device of the README's devices page.
var devicesPageEntry = regexp.MustCompile(`(.*?), last seen \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ` +
	`(?:( \(this device\))|<form method="post"><button name="session" value="([^"]*)">Log out</button></form>)`)

// devicesShown reads the devices of the README's devices page, and fails
// the test if the page holds anything else.
func devicesShown(t *testing.T, r *response) []shownDevice {
	t.Helper()
	expectStatus(t, r, http.StatusOK)
	page := string(r.body)
	var devices []shownDevice
	end := 0
	for _, m := range devicesPageEntry.FindAllStringSubmatchIndex(page, -1) {
		if m[0] != end {
			break
		}
		d := shownDevice{browser: page[m[2]:m[3]], this: m[4] >= 0}
		if m[6] >= 0 {
			d.logOut = html.UnescapeString(page[m[6]:m[7]])
		}
		devices, end = append(devices, d), m[1]
	}
	if end != len(page) {
		t.Fatalf("the devices page is not a list of devices from byte %d: %q", end, page)
	}
	return devices
}

// TestPHPDevicesSnippet runs the README's devices page in its devices
// recipe: logged in as alice on a laptop and a phone, the laptop's page
// lists the laptop (this device) then the phone with a Log out button,
// each with its browser, HTML-escaped; the button's POST ends the phone's
// session, whose cookie then opens no list, and the laptop's page lists
// the laptop alone.
func TestPHPDevicesSnippet(t *testing.T) {
	app := startPHPApp(t)
	s := app.site(recipe(t, "<!-- recipe: devices -->"))
	app.write("login.php", loginPage(t))
	app.write("account/devices.php", phpSnippet(t, devicesPHP))

	const laptopUA, phoneUA = "Mozilla/5.0 (Laptop)", "Mozilla/5.0 (Phone) <script>alert(1)</script>"
	laptop, phone := s.visitor(), s.visitor()
	laptop.logIn("alice", "User-Agent", laptopUA)
	phone.logIn("alice", "User-Agent", phoneUA)
	page := func(v *visitor, headers ...string) []shownDevice {
		t.Helper()
		return devicesShown(t, v.do(http.MethodGet, "/account/devices", headers...))
	}

	got := page(laptop)
	want := []shownDevice{
		{browser: laptopUA, this: true},
		{browser: "Mozilla/5.0 (Phone) &lt;script&gt;alert(1)&lt;/script&gt;", logOut: phone.shortHash()},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the laptop's devices page shows %+v, want %+v", got, want)
	}
	if got := page(phone); len(got) != 2 || !got[0].this || got[1].logOut != laptop.shortHash() {
		t.Fatalf("the phone's devices page shows %+v, want the phone then the laptop", got)
	}

	r := laptop.submit("/account/devices", url.Values{"session": {want[1].logOut}})
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/account/devices" {
		t.Fatalf("logging the phone out: %d, Location %q; want a 303 back to the page", r.StatusCode, r.Header.Get("Location"))
	}
	if got := page(phone); len(got) != 0 {
		t.Fatalf("the phone's cookie still opens the devices page: %+v", got)
	}
	// PHP reads X_Session_Meta_Devices as X-Session-Meta-Devices: a client's
	// own list, in that spelling, must not reach the page either.
	forged := `[{"session":"0000000000000000","last_seen":"2026-01-01T00:00:00Z","current":true}]`
	if got := page(phone, "X_Session_Meta_Devices", forged); len(got) != 0 {
		t.Fatalf("the page showed a client's own list: %+v", got)
	}
	if got := page(laptop); len(got) != 1 || !got[0].this {
		t.Fatalf("after the phone's logout the laptop's page shows %+v, want the laptop alone", got)
	}
}

// signPage is the README's token check as every page of the site. The
// snippet fetches the keys from the README's address, here the test's
// site; after it, the page shows the claims it accepted (null for none),
// and the token it was given, which the test replays elsewhere.
func signPage(t *testing.T, s *site) string {
	t.Helper()
	const readmeSite = "http://127.0.0.1:8080/"
	snippet := phpSnippet(t, signPHP)
	if !strings.Contains(snippet, readmeSite) {
		t.Fatalf("the token snippet fetches its keys from no %s", readmeSite)
	}
	return strings.Replace(snippet, readmeSite, s.self()+"/", 1) +
		"echo json_encode(['claims' => $claims, 'token' => $_SERVER['HTTP_X_SESSION_META_TOKEN'] ?? null]);\n"
}

// signPageResult is what signPage shows.
type signPageResult struct {
	Claims *tokenClaims `json:"claims"`
	Token  string       `json:"token"`
}

func decodeSignPage(t *testing.T, status int, body []byte) signPageResult {
	t.Helper()
	var got signPageResult
	if err := json.Unmarshal(body, &got); status != http.StatusOK || err != nil {
		t.Fatalf("the page answered %d %q (%v), want 200 and its JSON", status, body, err)
	}
	return got
}

// TestPHPSignedTokenSnippet runs the README's PHP token check behind its
// sign recipe. Through Caddy, it accepts alice's token on every request
// of hers, for its method and path as the client sent them, and there is
// none for an anonymous visitor. On a misrouted port that reaches the app
// without Caddy's session handler, a forged X-Session-User has no token
// beside it, and alice's token, replayed, opens only the URL it was
// issued for (within its minute, as the README says): not another path,
// method or host, and not with its payload changed.
func TestPHPSignedTokenSnippet(t *testing.T) {
	t.Setenv("SESSION_SIGN_SECRET", signSecret)
	app := startPHPApp(t)
	misrouted := freePort(t)
	s := app.site(recipe(t, "### A signed token for the app") +
		fmt.Sprintf("http://127.0.0.1:%d {\n\treverse_proxy 127.0.0.1:9000\n}\n", misrouted))
	app.write("login.php", loginPage(t))
	app.write("index.php", signPage(t, s))
	host := fmt.Sprintf("127.0.0.1:%d", s.port)

	if got := decodeSignPage(t, http.StatusOK, s.visitor().get("/orders").body); got.Claims != nil || got.Token != "" {
		t.Fatalf("an anonymous request: %+v, want no token and no claims", got)
	}
	alice := s.visitor()
	alice.logIn("alice")
	var token string
	for _, row := range []struct{ method, uri, path string }{
		{http.MethodGet, "/orders?page=2", "/orders"},
		{http.MethodPost, "/orders", "/orders"},
		{http.MethodGet, "/caf%C3%A9/r%C3%A9sum%C3%A9?q=%2F", "/caf%C3%A9/r%C3%A9sum%C3%A9"},
	} {
		r := alice.do(row.method, row.uri)
		got := decodeSignPage(t, r.StatusCode, r.body)
		if c := got.Claims; c == nil || c.Session["user"] != "alice" || c.Method != row.method || c.Path != row.path || c.Aud != host {
			t.Fatalf("%s %s through Caddy: the snippet accepted %+v, want alice's claims for %s %s on %s", row.method, row.uri, got.Claims, row.method, row.path, host)
		}
		if row.uri == "/orders?page=2" {
			token = got.Token
		}
	}

	for _, row := range []struct {
		name, method, path, host, token string
		accepted                        bool
	}{
		{"no token", http.MethodGet, "/orders", host, "", false},
		{"the token, for its URL", http.MethodGet, "/orders", host, token, true},
		{"the token, for another path", http.MethodGet, "/admin", host, token, false},
		{"the token, for another method", http.MethodPost, "/orders", host, token, false},
		{"the token, for another host", http.MethodGet, "/orders", fmt.Sprintf("127.0.0.1:%d", misrouted), token, false},
		{"the token, its payload changed", http.MethodGet, "/orders", host, tamperPayload(t, token, `"alice"`, `"mallo"`), false},
	} {
		req, err := http.NewRequest(row.method, fmt.Sprintf("http://127.0.0.1:%d%s", misrouted, row.path), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = row.host
		req.Header.Set("X-Session-User", "mallory")
		if row.token != "" {
			req.Header.Set("X-Session-Meta-Token", row.token)
		}
		res, err := s.tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got := decodeSignPage(t, res.StatusCode, body)
		if accepted := got.Claims != nil; accepted != row.accepted || accepted && got.Claims.Session["user"] != "alice" {
			t.Errorf("misrouted, %s: the snippet decided %+v, want accepted=%v", row.name, got.Claims, row.accepted)
		}
	}
}

// csrfPHPSite runs the README's csrf recipe with its token snippet as the
// page of every path, beside the README's login.
func csrfPHPSite(t *testing.T) *site {
	t.Helper()
	app := startPHPApp(t)
	s := app.site(recipe(t, "<!-- recipe: csrf -->"))
	app.write("login.php", loginPage(t))
	app.write("index.php", phpSnippet(t, csrfPHP))
	return s
}

// csrfPage is what a browser finds in the README's token snippet.
type csrfPage struct {
	action, field, token string // the form's action and its hidden field
	meta                 string // the csrf-token meta tag's content
}

var (
	csrfPageForm  = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	csrfPageField = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	csrfPageMeta  = regexp.MustCompile(`<meta name="csrf-token" content="([^"]*)">`)
)

func readCSRFPage(t *testing.T, r *response) csrfPage {
	t.Helper()
	expectStatus(t, r, http.StatusOK)
	page := string(r.body)
	form, field, meta := csrfPageForm.FindStringSubmatch(page), csrfPageField.FindStringSubmatch(page), csrfPageMeta.FindStringSubmatch(page)
	if form == nil || field == nil || meta == nil {
		t.Fatalf("the page has no form with a hidden field, or no csrf-token meta tag: %s", page)
	}
	u := html.UnescapeString
	return csrfPage{action: u(form[1]), field: u(field[1]), token: u(field[2]), meta: u(meta[1])}
}

// TestPHPCSRFTokenSnippet runs the README's CSRF token snippet as the page
// of its csrf recipe. Without a session the page carries an empty token;
// with alice's, the form's hidden field and the meta tag carry her token,
// and the form posted as rendered, or a script's request with the meta
// tag's token in X-CSRF-Token, gets through to the app, while one without
// the token or with bob's is refused.
func TestPHPCSRFTokenSnippet(t *testing.T) {
	s := csrfPHPSite(t)
	if page := readCSRFPage(t, s.visitor().get("/")); page.token != "" || page.meta != "" {
		t.Fatalf("without a session the page carries the token %q and %q, want none", page.token, page.meta)
	}
	alice, bob := s.visitor(), s.visitor()
	alice.logIn("alice")
	bob.logIn("bob")
	page, bobs := readCSRFPage(t, alice.get("/")), readCSRFPage(t, bob.get("/"))
	if page.token == "" || page.meta != page.token || page.action != "/transfer" || bobs.token == page.token {
		t.Fatalf("alice's page: %+v; bob's token %q", page, bobs.token)
	}

	for _, row := range []struct {
		name   string
		form   url.Values
		header string // the X-CSRF-Token a script sends; none if empty
		want   int
	}{
		{"the form as rendered", url.Values{page.field: {page.token}}, "", http.StatusOK},
		{"the form without its token", url.Values{"amount": {"10"}}, "", http.StatusForbidden},
		{"the form with bob's token", url.Values{page.field: {bobs.token}}, "", http.StatusForbidden},
		{"a script with the meta tag's token", nil, page.meta, http.StatusOK},
		{"a script with bob's token", nil, bobs.meta, http.StatusForbidden},
	} {
		var r *response
		if row.form != nil {
			r = alice.submit(page.action, row.form)
		} else {
			r = alice.do(http.MethodPost, "/api/cart", "X-CSRF-Token", row.header)
		}
		if r.StatusCode != row.want {
			t.Errorf("%s: %d, want %d", row.name, r.StatusCode, row.want)
		}
	}
}

// TestPHPCSRFTokenScriptInABrowser runs the script of the README's CSRF
// token snippet in chromium: the page, opened with alice's session, posts
// to /api/cart with the token of its meta tag, and gets through.
func TestPHPCSRFTokenScriptInABrowser(t *testing.T) {
	slow(t, "it starts a browser in another process")
	s := csrfPHPSite(t)
	alice := s.visitor()
	alice.logIn("alice")

	b := browsertest.Start(t)
	if _, err := chromedp.Call(b.Context(), network.SetCookie, network.SetCookieParams{Name: "sid", Value: alice.sid, URL: s.self() + "/"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.Context(), browsertest.Timeout)
	defer cancel()
	responses := chromedp.Events(ctx, network.ResponseReceived) // subscribed from here on
	if status := b.Navigate(s.self() + "/"); status != http.StatusOK {
		t.Fatalf("the page answered %d", status)
	}
	for ev, err := range responses {
		if err != nil {
			t.Fatalf("no response to the script's POST /api/cart: %v", err)
		}
		if ev.Response.URL == s.self()+"/api/cart" {
			if ev.Response.Status != http.StatusOK {
				t.Fatalf("the script's POST /api/cart got %d, want 200", ev.Response.Status)
			}
			return
		}
	}
	t.Fatal("no response to the script's POST /api/cart")
}

// sealPage is the README's PHP unsealing as the page of an upstream given
// the session cookie (forward_cookie), as the README has it. The snippet
// takes $sid and $sealed as given: $sid is the ID, as the cookie holds
// it; $sealed, which the README's upstream reads from Redis, is the
// sealed user that the test read there, sent in a request header. The
// page shows what the snippet opened, false for nothing.
func sealPage(t *testing.T) string {
	t.Helper()
	return "<?php\n$sid = $_COOKIE['sid'];\n$sealed = base64_decode($_SERVER['HTTP_TEST_SEALED']);\n" +
		phpSnippet(t, sealPHP) + "echo json_encode($user);\n"
}

// sealedUser is the user of the visitor's session as Redis holds it, at
// <prefix>{<hash>} as the README says.
func sealedUser(t *testing.T, srv *redistest.Server, v *visitor) []byte {
	t.Helper()
	key := "caddy-session:{" + session.HashID(v.sid).String() + "}"
	sealed, err := srv.Do("HGET", key, "user")
	if err != nil || len(sealed) < 1+24+16 || sealed[0] != 1 {
		t.Fatalf("HGET %s user: %q, %v; want a sealed value", key, sealed, err)
	}
	return []byte(sealed)
}

// TestPHPSealSnippet runs the README's PHP unsealing in its seal_values
// recipe, with forward_cookie added, as the README's upstream needs: with
// alice's ID it opens the user Redis holds sealed for her session;
// with bob's ID, or changed by one byte, it opens nothing.
func TestPHPSealSnippet(t *testing.T) {
	srv := redistest.Start(t)
	t.Setenv("SESSION_INDEX_KEY", sealIndexKey)
	app := startPHPApp(t)
	config := recipe(t, "<!-- recipe: seal -->")
	config = strings.Replace(config, "redis://127.0.0.1:6379", srv.URL(), 1)
	config = strings.Replace(config, "\tsession {\n", "\tsession {\n\t\tforward_cookie\n", 1)
	s := app.site(config)
	app.write("login.php", loginPage(t))
	app.write("index.php", sealPage(t))

	alice, bob := s.visitor(), s.visitor()
	alice.logIn("alice")
	bob.logIn("bob")
	sealed := sealedUser(t, srv, alice)
	changed := append([]byte(nil), sealed...)
	changed[len(changed)-1] ^= 1
	for _, row := range []struct {
		name   string
		v      *visitor
		sealed []byte
		want   string
	}{
		{"alice's user, with her ID", alice, sealed, `"alice"`},
		{"bob's user, with his ID", bob, sealedUser(t, srv, bob), `"bob"`},
		{"alice's user, with bob's ID", bob, sealed, "false"},
		{"alice's user changed by a byte, with her ID", alice, changed, "false"},
	} {
		r := row.v.do(http.MethodGet, "/", "Test-Sealed", base64.StdEncoding.EncodeToString(row.sealed))
		if r.StatusCode != http.StatusOK || string(r.body) != row.want {
			t.Errorf("%s: %d %q, want %s", row.name, r.StatusCode, r.body, row.want)
		}
	}
}
