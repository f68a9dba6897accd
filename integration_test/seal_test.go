package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/redis/rueidis"

	"github.com/caddy-session/caddy-session/internal/redistest"
)

// Values sealed at rest (seal_values), through a real Caddy on bolt and
// Redis: what the store holds, byte for byte, shows no value, no user name
// and no User-Agent, while the app, the matcher, revocation by user and
// sessions stored before sealing all work as without it.

// sealIndexKey is the index secret of the Redis sites.
const sealIndexKey = "seal-test-index-secret-0123456789abcdef"

// sealedSite is a site under test and a raw dump of its store.
type sealedSite struct {
	*site
	dump func(t *testing.T) []byte
	// sealOptions are the options that turn sealing on for its store.
	sealOptions string
}

// onEachSealedStore runs test on bolt (with the index secret generated
// and kept in Caddy's storage) and on Redis (with one configured), each
// site starting with options and sealing off.
func onEachSealedStore(t *testing.T, defs, options string, test func(t *testing.T, s sealedSite)) {
	t.Run("bolt", func(t *testing.T) {
		s := newSiteWith(t, "", defs, options)
		test(t, sealedSite{site: s, sealOptions: "seal_values", dump: func(t *testing.T) []byte {
			b, err := os.ReadFile(s.db)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}})
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		s := newSiteWith(t, "store redis "+srv.URL(), defs, options)
		test(t, sealedSite{site: s, sealOptions: "seal_values {\n\t\t\tindex_key " + sealIndexKey + "\n\t\t}", dump: func(t *testing.T) []byte {
			return redisDump(t, srv)
		}})
	})
}

// redisDump is every key of the Redis as its DUMP and its contents: the
// fields and values of a hash, the members and scores of a sorted set.
func redisDump(t *testing.T, srv *redistest.Server) []byte {
	t.Helper()
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	var out bytes.Buffer
	cursor := uint64(0)
	for {
		entry, err := client.Do(ctx, client.B().Scan().Cursor(cursor).Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range entry.Elements {
			out.WriteString(key + "\n")
			dump, err := client.Do(ctx, client.B().Dump().Key(key).Build()).ToString()
			if err != nil {
				t.Fatalf("DUMP %s: %v", key, err)
			}
			out.WriteString(dump + "\n")
			typ, err := client.Do(ctx, client.B().Type().Key(key).Build()).ToString()
			if err != nil {
				t.Fatal(err)
			}
			var contents []string
			switch typ {
			case "hash":
				var fields map[string]string
				fields, err = client.Do(ctx, client.B().Hgetall().Key(key).Build()).AsStrMap()
				for f, v := range fields {
					contents = append(contents, f, v)
				}
			case "zset":
				contents, err = client.Do(ctx, client.B().Zrange().Key(key).Min("0").Max("-1").Withscores().Build()).AsStrSlice()
			}
			if err != nil {
				t.Fatalf("reading %s %s: %v", typ, key, err)
			}
			out.WriteString(strings.Join(contents, "\n") + "\n")
		}
		if cursor = entry.Cursor; cursor == 0 {
			return out.Bytes()
		}
	}
}

// expectInDump checks which of secrets the store's dump holds: all of
// them when found, none otherwise.
func expectInDump(t *testing.T, dump []byte, found bool, secrets ...string) {
	t.Helper()
	for _, secret := range secrets {
		if bytes.Contains(dump, []byte(secret)) != found {
			if found {
				t.Errorf("the store's dump does not hold %q, which it must for the test to mean anything", secret)
			} else {
				t.Errorf("the store's dump holds %q in the clear", secret)
			}
		}
	}
}

func TestSealValues(t *testing.T) {
	const (
		ua     = "SealProbe/1.0 (unique-ua-7f3a)"
		user   = "zelda.sealed"
		cart   = "cart-of-secret-things"
		flash  = "flash-secret-notice"
		oldie  = "walter.plain"
		oldOne = "plain-era-cart"
		later  = "set-once-sealed"
	)
	defs := "@zelda session user " + user + "\n\trequest_header @zelda X-Matched-Zelda yes"
	onEachSealedStore(t, defs, "record_user_agent", func(t *testing.T, s sealedSite) {
		// A session stored before sealing: plain, as the dump shows.
		old := s.visitor()
		expectStatus(t, old.get("/login", "X-Session-Set-User: "+oldie, "X-Session-Set-Cart: "+oldOne), http.StatusOK)
		expectInDump(t, s.dump(t), true, oldie, oldOne)

		s.options = "record_user_agent\n\t\t" + s.sealOptions
		s.load()

		// It still works, and is sealed at its next write.
		expectSession(t, old.get("/"), map[string]string{"X-Session-User": oldie, "X-Session-Cart": oldOne})
		expectStatus(t, old.get("/", "X-Session-Set-Theme: "+later), http.StatusOK)
		expectSession(t, old.get("/"), map[string]string{"X-Session-User": oldie, "X-Session-Cart": oldOne, "X-Session-Theme": later})

		// A login while sealing is on, with a flash value, on two devices.
		login := func(v *visitor) {
			t.Helper()
			r := v.do(http.MethodGet, "/login", "User-Agent", ua,
				"Test-Header", "X-Session-Set-User: "+user,
				"Test-Header", "X-Session-Set-Cart: "+cart,
				"Test-Header", "X-Session-Flash-Notice: "+flash)
			expectStatus(t, r, http.StatusOK)
			if v.sid == "" {
				t.Fatal("the login issued no session")
			}
		}
		phone, laptop := s.visitor(), s.visitor()
		login(phone)
		login(laptop)

		dump := s.dump(t)
		expectInDump(t, dump, false, user, cart, flash, ua, later, phone.sid, laptop.sid)
		if strings.Contains(s.store, "redis") {
			// Redis rewrote the fields in place; bolt may keep the old
			// bytes in free pages until they are reused (see README).
			expectInDump(t, dump, false, oldie, oldOne)
		}

		// The app gets the values, the flash value once, and the matcher
		// sees the user.
		r := phone.do(http.MethodGet, "/", "Sec-Fetch-Mode", "navigate")
		expectStatus(t, r, http.StatusOK)
		if got := r.session(); got["X-Session-User"] != user || got["X-Session-Cart"] != cart || got["X-Session-Flash-Notice"] != flash {
			t.Fatalf("the app saw %v", got)
		}
		if r.seen.Headers.Get("X-Matched-Zelda") != "yes" {
			t.Error("the session matcher did not match the sealed session's user")
		}
		if got := phone.do(http.MethodGet, "/", "Sec-Fetch-Mode", "navigate").session(); got["X-Session-Flash-Notice"] != "" {
			t.Errorf("the flash value came twice: %v", got)
		}

		// A login as another user rotates the sealed session: its values
		// follow it under the new ID.
		before := phone.sid
		expectStatus(t, phone.get("/", "X-Session-Set-User: "+user+"2"), http.StatusOK)
		if phone.sid == before {
			t.Fatal("a change of user kept the ID")
		}
		expectSession(t, phone.get("/"), map[string]string{"X-Session-User": user + "2", "X-Session-Cart": cart})
		expectStatus(t, phone.get("/", "X-Session-Set-User: "+user), http.StatusOK)

		// The admin API shows keys, never values.
		var shown struct {
			Keys   []string          `json:"keys"`
			Values map[string]string `json:"values"`
			Sealed bool              `json:"sealed"`
		}
		a := sessionAPI(t, http.MethodGet, "/session/sessions/"+laptop.adminHash()+"?values=true", "")
		if err := json.Unmarshal(a.body, &shown); err != nil || a.status != http.StatusOK {
			t.Fatalf("admin GET: %d %s", a.status, a.body)
		}
		if !shown.Sealed || shown.Values != nil || !slices.Equal(shown.Keys, []string{"cart", "user"}) {
			t.Errorf("admin API showed %s; want the keys, sealed, and no values", a.body)
		}
		for _, secret := range []string{user, cart, ua} {
			if strings.Contains(string(a.body), secret) {
				t.Errorf("the admin API showed %q", secret)
			}
		}

		// Logout everywhere ends the user's other sealed session.
		expectStatus(t, phone.get("/", "X-Session-Destroy-All: true"), http.StatusOK)
		expectUser(t, laptop, "")
		expectUser(t, old, oldie) // another user's

		// So does the admin API's revocation by user.
		tablet := s.visitor()
		login(tablet)
		var revoked struct{ Revoked int }
		sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "`+user+`"}`).decode(t, http.StatusOK, &revoked)
		if revoked.Revoked != 1 {
			t.Errorf("admin revoke by user ended %d sessions, want 1", revoked.Revoked)
		}
		expectUser(t, tablet, "")
		// And the session sealed at its write after sealing began.
		sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "`+oldie+`"}`).decode(t, http.StatusOK, &revoked)
		if revoked.Revoked != 1 {
			t.Errorf("admin revoke of the user of the session stored before sealing ended %d sessions, want 1", revoked.Revoked)
		}
		expectUser(t, old, "")
	})
}

// TestSealTampered changes a sealed session in Redis by hand, one attack
// per row: a ciphertext moved from another session or another field, cut
// short, or a plain value where a sealed one belongs. Each must fail the
// request with 503 before the app runs (a store whose data was changed is
// a failure, not a session), and never hand the app a value.
func TestSealTampered(t *testing.T) {
	srv := redistest.Start(t)
	s := newSiteWith(t, "store redis "+srv.URL(), "", "seal_values {\n\t\t\tindex_key "+sealIndexKey+"\n\t\t}")
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	key := func(v *visitor) string { return "caddy-session:{" + v.adminHash() + "}" }
	field := func(v *visitor, f string) string {
		t.Helper()
		got, err := client.Do(ctx, client.B().Hget().Key(key(v)).Field(f).Build()).ToString()
		if err != nil {
			t.Fatalf("HGET %s %s: %v", key(v), f, err)
		}
		return got
	}
	set := func(v *visitor, f, value string) {
		t.Helper()
		if err := client.Do(ctx, client.B().Hset().Key(key(v)).FieldValue().FieldValue(f, value).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		tamper func(victim, other *visitor)
	}{
		{"value moved from another session", func(victim, other *visitor) { set(victim, "cart", field(other, "cart")) }},
		{"value moved from another field", func(victim, _ *visitor) { set(victim, "cart", field(victim, "user")) }},
		{"value cut short", func(victim, _ *visitor) { set(victim, "cart", field(victim, "cart")[:20]) }},
		{"value with a bit flipped", func(victim, _ *visitor) {
			b := []byte(field(victim, "cart"))
			b[len(b)-1] ^= 1
			set(victim, "cart", string(b))
		}},
		{"plain value in a sealed session", func(victim, _ *visitor) { set(victim, "cart", "planted") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			victim, other := s.visitor(), s.visitor()
			expectStatus(t, victim.get("/login", "X-Session-Set-User: victim", "X-Session-Set-Cart: victims-cart"), http.StatusOK)
			expectStatus(t, other.get("/login", "X-Session-Set-User: other", "X-Session-Set-Cart: others-cart"), http.StatusOK)
			tc.tamper(victim, other)
			// Caddy's cached copy goes when Redis's invalidation reaches
			// it: until then the request sees the session as it was.
			deadline := time.Now().Add(revocationBound)
			for {
				r := victim.get("/")
				if r.StatusCode == http.StatusServiceUnavailable {
					if len(r.session()) != 0 || r.seen.URI != "" {
						t.Errorf("the app was called with %v", r.session())
					}
					break
				}
				if got := r.session(); r.StatusCode != http.StatusOK || got["X-Session-Cart"] != "victims-cart" || time.Now().After(deadline) {
					t.Fatalf("status %d, the app saw %v; want 503", r.StatusCode, got)
				}
			}
			expectUser(t, other, "other")
		})
	}
}

// TestSealDevices: the cap on a user's sessions, their list and the
// revocation of one of them find the user's sealed sessions by the keyed
// hash of the name. The list shows the User-Agent of the request's own
// session, which its ID opens, and not those of the others, which only
// their own IDs open.
func TestSealDevices(t *testing.T) {
	onEachSealedStore(t, "", "", func(t *testing.T, s sealedSite) {
		s.options = "record_user_agent\n\t\tmax_sessions_per_identity 2\n\t\tdevices /devices\n\t\t" + s.sealOptions
		s.load()
		login := func(ua string) *visitor {
			t.Helper()
			v := s.visitor()
			expectStatus(t, v.do(http.MethodGet, "/login", "User-Agent", ua, "Test-Header", "X-Session-Set-User: yuki.sealed"), http.StatusOK)
			return v
		}
		first := login("Device/1 first-ua")
		second := login("Device/2 second-ua")
		third := login("Device/3 third-ua") // over the cap: the first ends
		expectUser(t, first, "")
		expectUser(t, second, "yuki.sealed")

		list := third.do(http.MethodGet, "/devices", "User-Agent", "Device/3 third-ua").devices(t)
		if len(list) != 2 || list[0].Session != third.adminHash()[:16] || list[1].Session != second.adminHash()[:16] {
			t.Fatalf("devices = %+v, want the third then the second", list)
		}
		if list[0].UserAgent != "Device/3 third-ua" || list[1].UserAgent != "" {
			t.Errorf("devices showed User-Agents %q and %q; want the own session's only", list[0].UserAgent, list[1].UserAgent)
		}
		expectStatus(t, third.get("/devices", "X-Session-Revoke: "+list[1].Session), http.StatusOK)
		expectUser(t, second, "")
		expectUser(t, third, "yuki.sealed")
	})
}

// TestSealRecipe runs the README's seal_values recipe as written, with
// only its site address, Redis and upstream replaced, and its index
// secret in the environment it names.
func TestSealRecipe(t *testing.T) {
	srv := redistest.Start(t)
	t.Setenv("SESSION_INDEX_KEY", sealIndexKey)
	up := startUpstream(t)
	port := freePort(t)
	config := recipe(t, "<!-- recipe: seal -->")
	config = strings.Replace(config, "app.example.com", fmt.Sprintf("http://127.0.0.1:%d", port), 1)
	config = strings.Replace(config, "127.0.0.1:9000", up.addr(), 1)
	config = strings.Replace(config, "redis://127.0.0.1:6379", srv.URL(), 1)
	s := &site{t: t, tester: caddytest.NewTester(t), port: port, up: up}
	s.tester.Client.Jar = nil
	s.tester.InitServer(fmt.Sprintf("{\n\tadmin localhost:%d\n}\n", adminPort)+config, "caddyfile")

	v := s.visitor()
	expectStatus(t, v.get("/login", "X-Session-Set-User: recipe.user", "X-Session-Set-Cart: recipe-cart"), http.StatusOK)
	expectSession(t, v.get("/"), map[string]string{"X-Session-User": "recipe.user", "X-Session-Cart": "recipe-cart"})
	expectInDump(t, redisDump(t, srv), false, "recipe.user", "recipe-cart")
	var revoked struct{ Revoked int }
	sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "recipe.user"}`).decode(t, http.StatusOK, &revoked)
	if revoked.Revoked != 1 {
		t.Fatalf("revoke by user ended %d sessions, want 1", revoked.Revoked)
	}
	expectUser(t, v, "")
}

// TestSealTurnedOff: once seal_values is removed from the config, sealed
// sessions still open with their IDs, and each is written back plain at
// its next write.
func TestSealTurnedOff(t *testing.T) {
	onEachSealedStore(t, "", "", func(t *testing.T, s sealedSite) {
		s.options = s.sealOptions
		s.load()
		v := s.visitor()
		expectStatus(t, v.get("/login", "X-Session-Set-User: ursula.sealed", "X-Session-Set-Cart: cart-sealed-then-plain"), http.StatusOK)
		expectInDump(t, s.dump(t), false, "ursula.sealed", "cart-sealed-then-plain")

		s.options = ""
		s.load()
		expectSession(t, v.get("/"), map[string]string{"X-Session-User": "ursula.sealed", "X-Session-Cart": "cart-sealed-then-plain"})
		expectStatus(t, v.get("/", "X-Session-Set-Theme: plain-again"), http.StatusOK)
		expectSession(t, v.get("/"), map[string]string{"X-Session-User": "ursula.sealed", "X-Session-Cart": "cart-sealed-then-plain", "X-Session-Theme": "plain-again"})
		expectInDump(t, s.dump(t), true, "ursula.sealed", "cart-sealed-then-plain", "plain-again")
		// Indexed by the name again: revocation by user finds it.
		var revoked struct{ Revoked int }
		sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "ursula.sealed"}`).decode(t, http.StatusOK, &revoked)
		if revoked.Revoked != 1 {
			t.Fatalf("revoke by user ended %d sessions, want 1", revoked.Revoked)
		}
		expectUser(t, v, "")
	})
}

// TestSealTurnedOffStillRevokesIdleSealedSessions: on bolt, whose index
// secret seal_values generated and kept in Caddy's storage, a session
// sealed while seal_values was on and not used since it was turned off is
// still indexed under the keyed hash of its user: logout everywhere and
// revocation by user must find it, or a stolen cookie of an idle device
// outlives them. (A configured index_key goes with the option: README,
// "Turning it on and off".)
func TestSealTurnedOffStillRevokesIdleSealedSessions(t *testing.T) {
	cases := []struct {
		name   string
		revoke func(t *testing.T, s *site, user string) int
	}{
		{"admin revoke by user", func(t *testing.T, s *site, user string) int {
			var revoked struct{ Revoked int }
			sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "`+user+`"}`).decode(t, http.StatusOK, &revoked)
			return revoked.Revoked
		}},
		{"logout everywhere", func(t *testing.T, s *site, user string) int {
			other := s.visitor()
			expectStatus(t, other.get("/login", "X-Session-Set-User: "+user), http.StatusOK)
			expectStatus(t, other.get("/logout", "X-Session-Destroy-All: true"), http.StatusOK)
			expectUser(t, other, "")
			return -1
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSiteWith(t, "", "", "seal_values")
			user := "ivy.idle." + strings.ReplaceAll(c.name, " ", "-")
			idle := s.visitor()
			expectStatus(t, idle.get("/login", "X-Session-Set-User: "+user), http.StatusOK)
			s.options = ""
			s.load()
			if n := c.revoke(t, s, user); n != -1 && n != 1 {
				t.Fatalf("revoke by user ended %d sessions, want the idle sealed one", n)
			}
			expectUser(t, idle, "")
		})
	}
}

// TestSealExportImport: the export of a sealed session carries its keys
// and its sealed bytes, never its values; imported back (into a store
// that lost it), it opens with its ID as before, and revocation by user
// finds it by its tag.
func TestSealExportImport(t *testing.T) {
	onEachSealedStore(t, "", "", func(t *testing.T, s sealedSite) {
		s.options = "record_user_agent\n\t\t" + s.sealOptions
		s.load()
		v := s.visitor()
		expectStatus(t, v.do(http.MethodGet, "/login", "User-Agent", "Exporter/1.0 export-ua",
			"Test-Header", "X-Session-Set-User: xavier.sealed", "Test-Header", "X-Session-Set-Cart: exported-cart"), http.StatusOK)
		line := exportedLine(t, v)
		for _, secret := range []string{"xavier.sealed", "exported-cart", "export-ua"} {
			if strings.Contains(line, secret) {
				t.Errorf("the export holds %q: %s", secret, line)
			}
		}
		if !strings.Contains(line, `"sealed":true`) || !strings.Contains(line, `"v":2`) || !strings.Contains(line, `"cart"`) {
			t.Fatalf("the export of a sealed session: %s", line)
		}
		sessionAPI(t, http.MethodDelete, "/session/sessions/"+v.adminHash(), "").decode(t, http.StatusOK, &struct{ Revoked int }{})
		expectUser(t, v, "")

		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/session/import", adminPort), strings.NewReader(line+"\n"))
		req.Header.Set("Content-Type", "application/x-ndjson")
		var got struct {
			Imported, Unchanged, Kept int
			KeptHashes                []string `json:"kept_hashes"`
		}
		doAPI(t, req).decode(t, http.StatusOK, &got)
		if got.Imported != 1 {
			t.Fatalf("import = %+v", got)
		}
		expectSession(t, v.get("/"), map[string]string{"X-Session-User": "xavier.sealed", "X-Session-Cart": "exported-cart"})
		var revoked struct{ Revoked int }
		sessionAPI(t, http.MethodPost, "/session/revoke", `{"value": "xavier.sealed"}`).decode(t, http.StatusOK, &revoked)
		if revoked.Revoked != 1 {
			t.Fatalf("revoke by user after the import ended %d sessions, want 1", revoked.Revoked)
		}

		// A sealed line changed by hand is refused, naming why.
		for _, c := range []struct {
			name, want string
			change     func(l map[string]any)
		}{
			{"no identity tag", `"identity_tag" is missing`, func(l map[string]any) { delete(l, "identity_tag") }},
			{"a value cut short", "not sealed", func(l map[string]any) { l["values"].(map[string]any)["cart"] = "AQID" }},
		} {
			var l map[string]any
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatal(err)
			}
			c.change(l)
			req, _ = http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/session/import", adminPort), strings.NewReader(mustJSON(l)+"\n"))
			req.Header.Set("Content-Type", "application/x-ndjson")
			var e struct{ Error string }
			doAPI(t, req).decode(t, http.StatusBadRequest, &e)
			if !strings.Contains(e.Error, c.want) {
				t.Errorf("%s: error %q does not say %q", c.name, e.Error, c.want)
			}
		}
	})
}

// TestSealRequestInFlightAcrossARenewal: a request that loaded a sealed
// session before a renewal writes its change into the session under its
// new ID, whose key it learns from the forward record the renewal left:
// the late write lands, sealed under the new ID.
func TestSealRequestInFlightAcrossARenewal(t *testing.T) {
	for _, store := range []string{"bolt", "redis"} {
		t.Run(store, func(t *testing.T) {
			newSealed := func(t *testing.T, options string) *site {
				if store == "bolt" {
					return newSiteWith(t, "", "", "seal_values\n\t\t"+options)
				}
				return newSiteWith(t, "store redis "+redistest.Start(t).URL(), "", "seal_values {\n\t\t\tindex_key "+sealIndexKey+"\n\t\t}\n\t\t"+options)
			}
			s, g := gatedSite(t, newSealed)
			v := login(t, s, "alice")
			old := v.sid
			slow := v.start(g, "theme", "X-Session-Set-Theme: dark")
			expectStatus(t, v.get("/", "X-Session-Renew: true"), http.StatusOK)
			if v.sid == old {
				t.Fatal("the renewal kept the ID")
			}
			expectNoCookie(t, slow.finish(t), "a request in flight across a renewal of its session")
			want := map[string]string{"user": "alice", "cart": "apple", "theme": "dark"}
			if got := sessionWith(t, s, v.sid); !mapsEqual(got, want) {
				t.Fatalf("the renewed session is %v, want %v: the change of the request in flight was lost", got, want)
			}
			var shown struct {
				Sealed bool `json:"sealed"`
			}
			a := sessionAPI(t, http.MethodGet, "/session/sessions/"+v.adminHash(), "")
			if err := json.Unmarshal(a.body, &shown); err != nil || !shown.Sealed {
				t.Fatalf("the renewed session is not sealed: %s", a.body)
			}
		})
	}
}
