package integration_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
)

// apiSession is one session as the admin API shows it.
type apiSession struct {
	Hash             string            `json:"hash"`
	Realm            string            `json:"realm"`
	Created          time.Time         `json:"created"`
	LastSeen         time.Time         `json:"last_seen"`
	IdleDeadline     time.Time         `json:"idle_deadline"`
	AbsoluteDeadline time.Time         `json:"absolute_deadline"`
	Keys             []string          `json:"keys"`
	Values           map[string]string `json:"values"`
	Remembered       bool              `json:"remembered"`
}

// apiPage is one page of GET /session/sessions.
type apiPage struct {
	Sessions   []apiSession `json:"sessions"`
	NextCursor *string      `json:"next_cursor"`
}

// apiStore is one store of GET /session/stores.
type apiStore struct {
	Name     string `json:"name"`
	Backend  string `json:"backend"`
	Sessions int    `json:"sessions"`
}

// apiAnswer is an answer of the admin API.
type apiAnswer struct {
	status int
	header http.Header
	body   []byte
}

// sessionAPI sends a request to the admin endpoint of the running Caddy.
func sessionAPI(t *testing.T, method, path, body string) *apiAnswer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, fmt.Sprintf("http://localhost:%d%s", adminPort, path), rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" || method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	return doAPI(t, req)
}

// doAPI sends a request to the admin endpoint and reads the answer.
func doAPI(t *testing.T, req *http.Request) *apiAnswer {
	t.Helper()
	method, path := req.Method, req.URL.RequestURI()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return &apiAnswer{status: res.StatusCode, header: res.Header, body: b}
}

// decode checks the status and that the answer is JSON, and decodes it
// into out, refusing fields out does not know.
func (a *apiAnswer) decode(t *testing.T, want int, out any) {
	t.Helper()
	if a.status != want {
		t.Fatalf("status = %d, want %d; body: %s", a.status, want, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json; body: %s", ct, a.body)
	}
	dec := json.NewDecoder(strings.NewReader(string(a.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("decoding %s: %v", a.body, err)
	}
}

// adminHash is the hash under which the visitor's session is stored.
func (v *visitor) adminHash() string {
	v.site.t.Helper()
	if v.sid == "" {
		v.site.t.Fatal("the visitor has no session")
	}
	return session.HashID(v.sid).String()
}

// expectUser checks which user the upstream sees for the visitor; "" is
// anonymous (no session headers at all).
func expectUser(t *testing.T, v *visitor, user string) {
	t.Helper()
	r := v.get("/whoami")
	expectStatus(t, r, http.StatusOK)
	got := r.session()
	switch {
	case user == "" && len(got) != 0:
		t.Fatalf("upstream saw session %v, want an anonymous request", got)
	case user != "" && got["X-Session-User"] != user:
		t.Fatalf("upstream saw session %v, want user %s", got, user)
	}
}

// adminDestroyed is the count of sessions revoked through the admin API.
func adminDestroyed(t *testing.T) float64 {
	t.Helper()
	return scrapeMetrics(t)[`caddy_session_destroyed_total{cause="admin",store="bolt"}`]
}

func TestAdminListPaginates(t *testing.T) {
	s := newSite(t, "")
	before := clock.Now()
	want := map[string]map[string]string{} // hash → values
	for i := range 25 {
		v := s.visitor()
		values := map[string]string{"user": fmt.Sprintf("user%02d", i), "cart": fmt.Sprintf("item%d", i)}
		v.get("/login", "X-Session-Set-User: "+values["user"], "X-Session-Set-Cart: "+values["cart"])
		want[v.adminHash()] = values
	}
	after := clock.Now()
	anon := s.visitor()
	anon.get("/") // anonymous traffic stores nothing
	if len(want) != 25 {
		t.Fatalf("%d distinct sessions created, want 25", len(want))
	}

	// listAll pages through the listing and returns the sessions and the
	// number of pages.
	listAll := func(query string, limit int) ([]apiSession, int) {
		t.Helper()
		var all []apiSession
		cursor := ""
		for pages := 1; ; pages++ {
			q := url.Values{}
			if limit > 0 {
				q.Set("limit", fmt.Sprint(limit))
			}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			path := "/session/sessions?" + q.Encode() + query
			a := sessionAPI(t, http.MethodGet, path, "")
			var page apiPage
			a.decode(t, http.StatusOK, &page)
			if page.NextCursor == nil || page.Sessions == nil {
				t.Fatalf("GET %s: sessions or next_cursor missing: %s", path, a.body)
			}
			if query == "" && strings.Contains(string(a.body), `"values"`) {
				t.Fatalf("GET %s shows values without values=true: %s", path, a.body)
			}
			if limit > 0 && len(page.Sessions) > limit {
				t.Fatalf("GET %s: %d sessions on a page of %d", path, len(page.Sessions), limit)
			}
			all = append(all, page.Sessions...)
			if *page.NextCursor == "" {
				return all, pages
			}
			if pages > 10 {
				t.Fatalf("still paging after %d pages", pages)
			}
			cursor = *page.NextCursor
		}
	}

	cases := []struct {
		name      string
		query     string
		limit     int
		pages     int
		hasValues bool
	}{
		{"pages of 10", "", 10, 3, false},
		{"pages of 10 with values", "&values=true", 10, 3, true},
		{"pages of exactly 25", "", 25, 1, false},
		{"pages of 24", "", 24, 2, false},
		{"default limit", "", 0, 1, false},
		{"values=false", "&values=false", 7, 4, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			all, pages := listAll(c.query, c.limit)
			if pages != c.pages {
				t.Errorf("%d pages, want %d", pages, c.pages)
			}
			if len(all) != len(want) {
				t.Fatalf("listed %d sessions, want %d", len(all), len(want))
			}
			seen := map[string]bool{}
			for i, got := range all {
				values, ok := want[got.Hash]
				if !ok || seen[got.Hash] {
					t.Fatalf("listed hash %s: known %v, listed before %v", got.Hash, ok, seen[got.Hash])
				}
				seen[got.Hash] = true
				if i > 0 && all[i-1].Hash >= got.Hash {
					t.Errorf("listing not in hash order at %d", i)
				}
				if !slices.Equal(got.Keys, []string{"cart", "user"}) {
					t.Errorf("keys = %v, want [cart user]", got.Keys)
				}
				switch {
				case c.hasValues && !mapsEqual(got.Values, values):
					t.Errorf("values = %v, want %v", got.Values, values)
				case !c.hasValues && got.Values != nil:
					t.Errorf("values shown without values=true: %v", got.Values)
				}
				if got.Created.Before(before) || got.Created.After(after) {
					t.Errorf("created %v, not between %v and %v", got.Created, before, after)
				}
				if !got.LastSeen.Equal(got.Created) {
					t.Errorf("last_seen %v, want created %v for an untouched session", got.LastSeen, got.Created)
				}
				if d := got.IdleDeadline.Sub(got.LastSeen); d != 30*time.Minute {
					t.Errorf("idle_deadline is %v after last_seen, want the default idle timeout 30m", d)
				}
				if d := got.AbsoluteDeadline.Sub(got.Created); d != 12*time.Hour {
					t.Errorf("absolute_deadline is %v after created, want the default absolute timeout 12h", d)
				}
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestAdminGetAndRevokeOne(t *testing.T) {
	s := newSite(t, "")
	alice, bob := s.visitor(), s.visitor()
	alice.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Cart: apple")
	bob.get("/login", "X-Session-Set-User: bob")
	hash := alice.adminHash()

	var got apiSession
	a := sessionAPI(t, http.MethodGet, "/session/sessions/"+hash, "")
	a.decode(t, http.StatusOK, &got)
	if got.Hash != hash || !slices.Equal(got.Keys, []string{"cart", "user"}) || got.Values != nil {
		t.Fatalf("GET by hash = %s, want alice's session with keys [cart user] and no values", a.body)
	}
	if want := fmt.Sprintf("127.0.0.1@:%d", s.port); got.Realm != want {
		t.Fatalf("realm = %q, want the site's, %q", got.Realm, want)
	}
	if strings.Contains(string(a.body), alice.sid) {
		t.Fatal("the admin API showed the session ID")
	}
	got = apiSession{}
	sessionAPI(t, http.MethodGet, "/session/sessions/"+hash+"?values=true", "").decode(t, http.StatusOK, &got)
	if want := map[string]string{"user": "alice", "cart": "apple"}; !mapsEqual(got.Values, want) {
		t.Fatalf("values = %v, want %v", got.Values, want)
	}
	// Hex is hex in either case.
	sessionAPI(t, http.MethodGet, "/session/sessions/"+strings.ToUpper(hash), "").decode(t, http.StatusOK, &apiSession{})

	revokedBefore := adminDestroyed(t)
	var revoked struct{ Revoked int }
	sessionAPI(t, http.MethodDelete, "/session/sessions/"+hash, "").decode(t, http.StatusOK, &revoked)
	if revoked.Revoked != 1 {
		t.Fatalf("DELETE revoked %d sessions, want 1", revoked.Revoked)
	}
	if d := adminDestroyed(t) - revokedBefore; d != 1 {
		t.Fatalf("destroyed_total{cause=admin} grew by %v, want 1", d)
	}

	// The revoked session opens nothing; its cookie is ignored.
	expectUser(t, alice, "")
	expectUser(t, bob, "bob")
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		a := sessionAPI(t, method, "/session/sessions/"+hash, "")
		a.decode(t, http.StatusNotFound, &struct{ Error string }{})
		if strings.Contains(string(a.body), hash) {
			t.Errorf("the 404 of %s repeats the full hash: %s", method, a.body)
		}
	}
	if d := adminDestroyed(t) - revokedBefore; d != 1 {
		t.Fatalf("destroyed_total{cause=admin} grew by %v after a failed revoke, want 1", d)
	}

	// An expired session is unknown too.
	clock.Advance(31 * time.Minute)
	sessionAPI(t, http.MethodGet, "/session/sessions/"+bob.adminHash(), "").decode(t, http.StatusNotFound, &struct{ Error string }{})
}

func TestAdminRevokeByUser(t *testing.T) {
	s := newSite(t, "")
	var alices []*visitor
	for range 3 {
		v := s.visitor()
		v.get("/login", "X-Session-Set-User: alice")
		alices = append(alices, v)
	}
	bob := s.visitor()
	bob.get("/login", "X-Session-Set-User: bob")
	// A session where alice is not the user, only a value of another key.
	guest := s.visitor()
	guest.get("/", "X-Session-Set-Cart: alice")

	before := adminDestroyed(t)
	cases := []struct {
		name, body string
		revoked    int
	}{
		{"default key", `{"value": "alice"}`, 3},
		{"again", `{"value": "alice"}`, 0},
		{"explicit key, any case", `{"key": "USER", "value": "nobody"}`, 0},
	}
	total := 0
	for _, c := range cases {
		var got struct{ Revoked int }
		sessionAPI(t, http.MethodPost, "/session/revoke", c.body).decode(t, http.StatusOK, &got)
		if got.Revoked != c.revoked {
			t.Fatalf("%s: revoked %d, want %d", c.name, got.Revoked, c.revoked)
		}
		total += c.revoked
	}
	if d := adminDestroyed(t) - before; d != float64(total) {
		t.Fatalf("destroyed_total{cause=admin} grew by %v, want %d", d, total)
	}
	for i, v := range alices {
		r := v.get("/whoami")
		if len(r.session()) != 0 {
			t.Fatalf("alice's session %d survived: %v", i, r.session())
		}
	}
	expectUser(t, bob, "bob")
	r := guest.get("/")
	expectSession(t, r, map[string]string{"X-Session-Cart": "alice"})

	var stores []apiStore
	sessionAPI(t, http.MethodGet, "/session/stores", "").decode(t, http.StatusOK, &stores)
	if len(stores) != 1 || stores[0].Sessions != 2 {
		t.Fatalf("stores = %+v, want one with bob's and the guest's sessions", stores)
	}
}

func TestAdminRefusesBadInput(t *testing.T) {
	s := newSite(t, "")
	v := s.visitor()
	v.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Cart: apple")
	hash := v.adminHash()
	unknown := strings.Repeat("0", 64)
	store := url.QueryEscape("bolt:" + s.db)

	cases := []struct {
		name, method, path, body string
		status                   int
		want                     string // in the error message
	}{
		{"hash not hex", "GET", "/session/sessions/" + strings.Repeat("x", 64), "", 400, "64 hexadecimal digits"},
		{"hash too short", "GET", "/session/sessions/" + hash[:63], "", 400, "64 hexadecimal digits"},
		{"hash empty", "DELETE", "/session/sessions/", "", 400, "64 hexadecimal digits"},
		{"session ID for a hash", "GET", "/session/sessions/" + v.sid, "", 400, "64 hexadecimal digits"},
		{"hash with a tail", "GET", "/session/sessions/" + hash + "/x", "", 400, "64 hexadecimal digits"},
		{"unknown hash", "GET", "/session/sessions/" + unknown, "", 404, "no live session"},
		{"unknown hash revoked", "DELETE", "/session/sessions/" + unknown, "", 404, "no live session"},
		{"bad JSON", "POST", "/session/revoke", `{"value": `, 400, "send a JSON object"},
		{"not an object", "POST", "/session/revoke", `"alice"`, 400, "send a JSON object"},
		{"no body", "POST", "/session/revoke", "", 400, "send a JSON object"},
		{"unknown field", "POST", "/session/revoke", `{"user": "alice"}`, 400, `unknown field "user"`},
		// encoding/json matches field names case-insensitively and keeps
		// the last of duplicates: each of these would revoke someone.
		{"field in another case", "POST", "/session/revoke", `{"value": "bob", "Value": "alice"}`, 400, `field "Value" is not "value": field names are case-sensitive`},
		{"field in another case first", "POST", "/session/revoke", `{"VALUE": "bob", "value": "alice"}`, 400, `field "VALUE" is not "value"`},
		{"key in another case", "POST", "/session/revoke", `{"Key": "user", "value": "alice"}`, 400, `write "key"`},
		{"key with a Kelvin sign", "POST", "/session/revoke", `{"\u212aey": "user", "value": "alice"}`, 400, "case-sensitive"},
		{"field twice", "POST", "/session/revoke", `{"value": "bob", "value": "alice"}`, 400, `field "value" is given twice`},
		{"key twice", "POST", "/session/revoke", `{"key": "cart", "key": "user", "value": "alice"}`, 400, `field "key" is given twice`},
		{"two objects", "POST", "/session/revoke", `{"value": "alice"} {"value": "bob"}`, 400, "nothing after it"},
		{"missing value", "POST", "/session/revoke", `{"key": "user"}`, 400, `"value" is missing`},
		{"empty value", "POST", "/session/revoke", `{"value": ""}`, 400, `"value" is missing`},
		{"invalid key", "POST", "/session/revoke", `{"key": "us.er", "value": "alice"}`, 400, "is not a session key"},
		{"key that is no identity", "POST", "/session/revoke", `{"key": "cart", "value": "apple"}`, 400, `use "user"`},
		{"GET revoke", "GET", "/session/revoke", "", 405, "use POST"},
		{"POST stores", "POST", "/session/stores", "", 405, "use GET"},
		{"DELETE list", "DELETE", "/session/sessions", "", 405, "use GET"},
		{"PUT session", "PUT", "/session/sessions/" + hash, "", 405, "use GET or DELETE"},
		{"POST session", "POST", "/session/sessions/" + hash, "", 405, "use GET or DELETE"},
		{"unknown store list", "GET", "/session/sessions?store=bolt:/nowhere.db", "", 404, "no live session store"},
		{"unknown store get", "GET", "/session/sessions/" + hash + "?store=redis", "", 404, "no live session store"},
		{"unknown store revoke", "POST", "/session/revoke?store=bolt:/nowhere.db", `{"value": "alice"}`, 404, "no live session store"},
		{"unknown store delete", "DELETE", "/session/sessions/" + hash + "?store=nowhere", "", 404, "no live session store"},
		{"limit zero", "GET", "/session/sessions?limit=0", "", 400, "from 1 to 1000"},
		{"limit too big", "GET", "/session/sessions?limit=1001", "", 400, "from 1 to 1000"},
		{"limit not a number", "GET", "/session/sessions?limit=ten", "", 400, "from 1 to 1000"},
		{"bad cursor", "GET", "/session/sessions?cursor=page2", "", 400, "next_cursor"},
		{"bad values flag", "GET", "/session/sessions?values=please", "", 400, "true or false"},
		{"misspelled parameter", "GET", "/session/sessions?limt=5", "", 400, `unknown query parameter "limt"`},
		{"values on delete", "DELETE", "/session/sessions/" + hash + "?values=true", "", 400, "unknown query parameter"},
		{"parameter on stores", "GET", "/session/stores?store=" + store, "", 400, "takes none"},
	}
	before := adminDestroyed(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := sessionAPI(t, c.method, c.path, c.body)
			var e struct{ Error string }
			a.decode(t, c.status, &e)
			if !strings.Contains(e.Error, c.want) {
				t.Errorf("error %q does not say %q", e.Error, c.want)
			}
			if c.status == 405 && a.header.Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}
		})
	}
	// None of it changed anything.
	if d := adminDestroyed(t) - before; d != 0 {
		t.Fatalf("destroyed_total{cause=admin} grew by %v on refused requests", d)
	}
	expectSession(t, v.get("/"), map[string]string{"X-Session-User": "alice", "X-Session-Cart": "apple"})
	// The store named in full is found.
	sessionAPI(t, http.MethodGet, "/session/sessions/"+hash+"?store="+store, "").decode(t, http.StatusOK, &apiSession{})
}

// TestAdminRevokeNeedsJSON sends the body of POST /session/revoke with
// other content types than JSON: each is refused with 415 and a message
// that says what to send, and revokes nothing; JSON with parameters is
// accepted.
func TestAdminRevokeNeedsJSON(t *testing.T) {
	s := newSite(t, "")
	v := s.visitor()
	v.get("/login", "X-Session-Set-User: alice")
	body := `{"value": "alice"}`
	before := adminDestroyed(t)

	refused := []struct{ contentType, want string }{
		{"", "the Content-Type header is missing: send the body as JSON, with the header Content-Type: application/json"},
		{"application/x-www-form-urlencoded", "send the body as JSON"}, // what curl -d sends
		{"text/plain", "send the body as JSON"},
		{"application/jsonx", "send the body as JSON"},
		{"application/json-patch+json", "send the body as JSON"},
		{"application/json; charset=iso-8859-1", "JSON is UTF-8"},
		{"application/json; charset", "send the body as JSON"}, // malformed
	}
	for _, c := range refused {
		var e struct{ Error string }
		sessionAPIAs(t, http.MethodPost, "/session/revoke", c.contentType, body).decode(t, http.StatusUnsupportedMediaType, &e)
		if !strings.Contains(e.Error, c.want) {
			t.Errorf("Content-Type %q: error %q does not say %q", c.contentType, e.Error, c.want)
		}
	}
	if d := adminDestroyed(t) - before; d != 0 {
		t.Fatalf("refused requests revoked %v sessions", d)
	}
	expectUser(t, v, "alice")

	for _, ct := range []string{"application/json; charset=utf-8", "Application/JSON;charset=UTF-8"} {
		var got struct{ Revoked int }
		sessionAPIAs(t, http.MethodPost, "/session/revoke", ct, body).decode(t, http.StatusOK, &got)
	}
	expectUser(t, v, "")
	if d := adminDestroyed(t) - before; d != 1 {
		t.Fatalf("destroyed_total{cause=admin} grew by %v, want 1", d)
	}
}

func TestAdminStores(t *testing.T) {
	t.Run("no session handler", func(t *testing.T) {
		tester := caddytest.NewTester(t)
		tester.InitServer(fmt.Sprintf(`{
	admin localhost:%d
}
http://127.0.0.1:%d {
	respond ok
}`, adminPort, freePort(t)), "caddyfile")
		var stores []apiStore
		sessionAPI(t, http.MethodGet, "/session/stores", "").decode(t, http.StatusOK, &stores)
		if stores == nil || len(stores) != 0 {
			t.Fatalf("stores = %+v, want []", stores)
		}
		for _, path := range []string{"/session/sessions", "/session/sessions/" + strings.Repeat("a", 64)} {
			a := sessionAPI(t, http.MethodGet, path, "")
			a.decode(t, http.StatusNotFound, &struct{ Error string }{})
			if !strings.Contains(string(a.body), "no session store is live") {
				t.Errorf("GET %s: %s, want a 404 saying that no store is live", path, a.body)
			}
		}
	})

	t.Run("one store", func(t *testing.T) {
		s := newSite(t, "")
		count := func() int {
			t.Helper()
			var stores []apiStore
			sessionAPI(t, http.MethodGet, "/session/stores", "").decode(t, http.StatusOK, &stores)
			want := apiStore{Name: "bolt:" + s.db, Backend: "bolt"}
			if len(stores) != 1 || stores[0].Name != want.Name || stores[0].Backend != want.Backend {
				t.Fatalf("stores = %+v, want one named %s, backend bolt", stores, want.Name)
			}
			return stores[0].Sessions
		}
		if n := count(); n != 0 {
			t.Fatalf("a new store counts %d sessions", n)
		}
		a, b := s.visitor(), s.visitor()
		a.get("/login", "X-Session-Set-User: alice")
		b.get("/login", "X-Session-Set-User: bob")
		s.visitor().get("/")
		if n := count(); n != 2 {
			t.Fatalf("counted %d sessions, want 2", n)
		}
		b.get("/logout", "X-Session-Destroy: true")
		if n := count(); n != 1 {
			t.Fatalf("counted %d sessions after a logout, want 1", n)
		}
	})

	t.Run("two stores", func(t *testing.T) {
		tester := caddytest.NewTester(t)
		tester.Client.Jar = nil
		dir, up := t.TempDir(), startUpstream(t)
		one := &site{t: t, tester: tester, port: freePort(t), db: filepath.Join(dir, "one.db"), up: up}
		two := &site{t: t, tester: tester, port: freePort(t), db: filepath.Join(dir, "two.db"), up: up}
		tester.InitServer(fmt.Sprintf(`{
	admin localhost:%d
	http_port %d
	https_port %d
	skip_install_trust
}
http://127.0.0.1:%d {
	session {
		store bolt %s
	}
	reverse_proxy %s
}
http://127.0.0.1:%d {
	session {
		store bolt %s
		renew_on account
	}
	reverse_proxy %s
}
`, adminPort, one.port, freePort(t), one.port, one.db, up.addr(), two.port, two.db, up.addr()), "caddyfile")
		for _, user := range []string{"alice", "bob"} {
			one.visitor().get("/login", "X-Session-Set-User: "+user)
		}
		carol := two.visitor()
		carol.get("/login", "X-Session-Set-Account: carol")

		var stores []apiStore
		sessionAPI(t, http.MethodGet, "/session/stores", "").decode(t, http.StatusOK, &stores)
		want := []apiStore{{"bolt:" + one.db, "bolt", 2}, {"bolt:" + two.db, "bolt", 1}}
		if !slices.Equal(stores, want) {
			t.Fatalf("stores = %+v, want %+v", stores, want)
		}

		// Without ?store= the API does not guess.
		a := sessionAPI(t, http.MethodGet, "/session/sessions", "")
		a.decode(t, http.StatusBadRequest, &struct{ Error string }{})
		for _, name := range []string{one.db, two.db} {
			if !strings.Contains(string(a.body), name) {
				t.Errorf("the error %s does not name the store %s", a.body, name)
			}
		}
		sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "carol"}`).decode(t, http.StatusBadRequest, &struct{ Error string }{})

		for _, st := range []struct {
			site *site
			n    int
		}{{one, 2}, {two, 1}} {
			var page apiPage
			sessionAPI(t, http.MethodGet, "/session/sessions?store="+url.QueryEscape("bolt:"+st.site.db), "").decode(t, http.StatusOK, &page)
			if len(page.Sessions) != st.n {
				t.Errorf("store %s lists %d sessions, want %d", st.site.db, len(page.Sessions), st.n)
			}
		}

		// Each store revokes by its own identity key.
		storeTwo := "?store=" + url.QueryEscape("bolt:"+two.db)
		var e struct{ Error string }
		sessionAPI(t, http.MethodPost, "/session/revoke"+storeTwo, `{"key": "user", "value": "carol"}`).decode(t, http.StatusBadRequest, &e)
		if !strings.Contains(e.Error, `use "account"`) {
			t.Errorf("the error %q does not name the store's identity key", e.Error)
		}
		var got struct{ Revoked int }
		sessionAPI(t, http.MethodPost, "/session/revoke"+storeTwo, `{"value": "carol"}`).decode(t, http.StatusOK, &got)
		if got.Revoked != 1 {
			t.Fatalf("revoked %d of carol's sessions, want 1", got.Revoked)
		}
		if r := carol.get("/"); len(r.session()) != 0 {
			t.Fatalf("carol's session survived: %v", r.session())
		}
		sessionAPI(t, http.MethodGet, "/session/stores", "").decode(t, http.StatusOK, &stores)
		want[1].Sessions = 0
		if !slices.Equal(stores, want) {
			t.Fatalf("stores = %+v after the revoke, want %+v", stores, want)
		}
	})
}

func TestAdminFollowsShortenedTimeouts(t *testing.T) {
	s := newSite(t, "")
	var visitors []*visitor
	for i := range 12 {
		v := s.visitor()
		v.get("/login", fmt.Sprintf("X-Session-Set-User: user%d", i))
		visitors = append(visitors, v)
	}
	clock.Advance(10 * time.Minute)
	live := map[string]bool{}
	for _, v := range visitors[:4] {
		v.get("/") // a use, which pushes the idle deadline back
		live[v.adminHash()] = true
	}
	// Idle for 10 minutes is too long now; the store still holds the
	// sessions until their stored deadlines, but they are over.
	s.options = "idle_timeout 5m"
	s.load()

	var listed []string
	cursor, pages := "", 0
	for {
		var page apiPage
		sessionAPI(t, http.MethodGet, "/session/sessions?limit=2&cursor="+cursor, "").decode(t, http.StatusOK, &page)
		pages++
		if len(page.Sessions) != 2 {
			t.Fatalf("page %d holds %d sessions, want full pages of 2", pages, len(page.Sessions))
		}
		for _, got := range page.Sessions {
			listed = append(listed, got.Hash)
		}
		if cursor = *page.NextCursor; cursor == "" || pages > 5 {
			break
		}
	}
	if pages != 2 || len(listed) != len(live) {
		t.Fatalf("listed %d sessions on %d pages, want the %d used ones on 2", len(listed), pages, len(live))
	}
	for _, h := range listed {
		if !live[h] {
			t.Errorf("listed %s, a session over by the new idle timeout", h)
		}
	}
	sessionAPI(t, http.MethodGet, "/session/sessions/"+visitors[5].adminHash(), "").decode(t, http.StatusNotFound, &struct{ Error string }{})
	sessionAPI(t, http.MethodGet, "/session/sessions/"+visitors[0].adminHash(), "").decode(t, http.StatusOK, &apiSession{})
}

// TestAdminRevokeFollowsARenewal revokes a session by the hash a listing
// showed, after the session was given a new ID: the successor, the same
// device, ends. Once the forward record has expired, the old hash names
// nothing.
func TestAdminRevokeFollowsARenewal(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s := newSite(t, "")
		alice := s.visitor()
		alice.get("/login", "X-Session-Set-User: alice")
		listed := alice.adminHash()
		expectStatus(t, alice.get("/", "X-Session-Renew: true"), http.StatusOK)
		if alice.adminHash() == listed {
			t.Fatal("the renewal gave no new ID")
		}
		var revoked struct{ Revoked int }
		sessionAPI(t, http.MethodDelete, "/session/sessions/"+listed, "").decode(t, http.StatusOK, &revoked)
		if revoked.Revoked != 1 {
			t.Fatalf("revoked %d, want 1", revoked.Revoked)
		}
		expectSession(t, alice.get("/"), map[string]string{})

		bob := s.visitor()
		bob.get("/login", "X-Session-Set-User: bob")
		old := bob.adminHash()
		bob.get("/", "X-Session-Renew: true")
		clock.Advance(session.ForwardTTL + time.Second)
		sessionAPI(t, http.MethodDelete, "/session/sessions/"+old, "").decode(t, http.StatusNotFound, &struct{ Error string }{})
		expectSession(t, bob.get("/"), map[string]string{"X-Session-User": "bob"})
	})
}

// TestAdminShowFollowsARenewal: the hash a listing showed, of a session
// given a new ID since, names the session it became, as for a DELETE;
// GET showed the forward record the rotation left under it instead, as
// if it were a session of its own with no keys, ending two minutes
// later. Once the forward record has expired, the old hash names nothing.
func TestAdminShowFollowsARenewal(t *testing.T) {
	onEachStore(t, func(t *testing.T, newSite func(t *testing.T, options string) *site) {
		s := newSite(t, "")
		alice := s.visitor()
		alice.get("/login", "X-Session-Set-User: alice", "X-Session-Set-Cart: apple")
		listed := alice.adminHash()
		var before apiSession
		sessionAPI(t, http.MethodGet, "/session/sessions/"+listed, "").decode(t, http.StatusOK, &before)
		for i := range 2 { // two renewals: two forward records to follow
			expectStatus(t, alice.get("/", "X-Session-Renew: true"), http.StatusOK)
			if alice.adminHash() == listed {
				t.Fatalf("renewal %d gave no new ID", i+1)
			}
		}
		var got apiSession
		sessionAPI(t, http.MethodGet, "/session/sessions/"+listed+"?values=true", "").decode(t, http.StatusOK, &got)
		if got.Hash != alice.adminHash() || !slices.Equal(got.Keys, []string{"cart", "user"}) ||
			got.Values["user"] != "alice" || !got.Created.Equal(before.Created) || !got.AbsoluteDeadline.Equal(before.AbsoluteDeadline) {
			t.Fatalf("GET of the hash the session had before its renewals shows %+v, want the session it became, %s, created %v",
				got, alice.adminHash(), before.Created)
		}

		clock.Advance(session.ForwardTTL + time.Second)
		sessionAPI(t, http.MethodGet, "/session/sessions/"+listed, "").decode(t, http.StatusNotFound, &struct{ Error string }{})
		sessionAPI(t, http.MethodGet, "/session/sessions/"+alice.adminHash(), "").decode(t, http.StatusOK, &got)
	})
}
