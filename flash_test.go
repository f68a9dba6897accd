package caddysession

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// flashStore counts the updates that take or put back flash values, and
// fails those that fail says to.
type flashStore struct {
	store.Store
	takes, restores, others atomic.Int64
	fail                    func(u store.Update) bool
}

func (f *flashStore) Update(ctx context.Context, u store.Update) (store.Result, error) {
	switch {
	case u.TakeFlash:
		f.takes.Add(1)
	case len(u.RestoreFlash) > 0:
		f.restores.Add(1)
	default:
		f.others.Add(1)
	}
	if f.fail != nil && f.fail(u) {
		return store.Result{}, errors.New("the store is down")
	}
	return f.Store.Update(ctx, u)
}

// TestFlashHandler sends one request of a session holding the flash
// value notice=Saved through a handler, and checks who took it: the app
// gets it on a request that matches flash_on, the store keeps it for
// another request when the response fails, and a session without flash
// values costs nothing.
func TestFlashHandler(t *testing.T) {
	navigate := []string{"Sec-Fetch-Mode", "navigate"}
	type row struct {
		name       string
		noFlash    bool     // the session holds no flash value
		headers    []string // request headers, as name, value pairs
		configured bool     // flash_on is the counting matcher, which matches /account
		path       string   // default /account
		status     int      // the app's status; default 200
		appErr     error    // the app returns this error, writing nothing
		fail       func(u store.Update) bool

		saw      bool // the app got X-Session-Flash-Notice: Saved
		takes    int
		restores int
		calls    int  // matcher runs
		kept     bool // the store still holds it afterwards
		errCode  int  // the status of ServeHTTP's error, 0 for none
	}
	rows := []row{
		{name: "a navigation takes it", headers: navigate, saw: true, takes: 1},
		{name: "Sec-Fetch-Mode is read in any case", headers: []string{"Sec-Fetch-Mode", "Navigate"}, saw: true, takes: 1},
		{name: "fetch() leaves it", headers: []string{"Sec-Fetch-Mode", "cors", "Accept", "text/html"}, kept: true},
		{name: "an image leaves it", headers: []string{"Sec-Fetch-Mode", "no-cors", "Accept", "image/avif,*/*"}, kept: true},
		{name: "without Sec-Fetch-Mode, Accept text/html takes it", headers: []string{"Accept", "Text/HTML,application/xhtml+xml;q=0.9"}, saw: true, takes: 1},
		{name: "without Sec-Fetch-Mode, Accept */* leaves it", headers: []string{"Accept", "*/*"}, kept: true},
		{name: "a request with neither leaves it", kept: true},
		{name: "flash_on matches", configured: true, saw: true, takes: 1, calls: 1},
		{name: "flash_on does not match a navigation", configured: true, path: "/page", headers: navigate, kept: true, calls: 1},
		{name: "no flash value: no matcher, no write", noFlash: true, configured: true},
		{name: "no flash value, a navigation: no write", noFlash: true, headers: navigate},
		{name: "a 500 puts it back", headers: navigate, status: 500, saw: true, takes: 1, restores: 1, kept: true},
		{name: "a 503 of the app puts it back", headers: navigate, status: 503, saw: true, takes: 1, restores: 1, kept: true},
		{name: "a 4xx consumes it", headers: navigate, status: 404, saw: true, takes: 1},
		{name: "a redirect consumes it", headers: navigate, status: 303, saw: true, takes: 1},
		{name: "an error of the app puts it back", headers: navigate, appErr: caddyhttp.Error(http.StatusBadGateway, errors.New("no upstream")),
			saw: true, takes: 1, restores: 1, kept: true, errCode: http.StatusBadGateway},
		{name: "an error without a status puts it back", headers: navigate, appErr: errors.New("broken"),
			saw: true, takes: 1, restores: 1, kept: true, errCode: -1},
		// Caddy's own refusal, no upstream's answer (file_server's 404): no
		// app answered, and the value waits for the next navigation.
		{name: "a 404 error no upstream answered puts it back", headers: navigate, appErr: caddyhttp.Error(http.StatusNotFound, errors.New("no file")),
			saw: true, takes: 1, restores: 1, kept: true, errCode: http.StatusNotFound},
		{name: "a 503 of the plugin puts it back", headers: append([]string{"Test-Set", "1"}, navigate...),
			fail: func(u store.Update) bool { return u.Patch != nil },
			saw:  true, takes: 1, restores: 1, kept: true, errCode: http.StatusServiceUnavailable},
		{name: "a take that fails is the client's 503", headers: navigate,
			fail: func(u store.Update) bool { return u.TakeFlash }, takes: 1, kept: true, errCode: http.StatusServiceUnavailable},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := testHandler(t)
			fs := &flashStore{Store: h.store}
			h.store = fs
			m := &countingMatcher{match: func(r *http.Request) (bool, error) { return r.URL.Path == "/account", nil }}
			if tc.configured {
				h.flashOn = caddyhttp.MatcherSets{{m}}
			}
			id, hash := newSessionID()
			startSession(t, h, *hash, clock.Now().Add(-time.Second))
			if !tc.noFlash {
				setFlash(t, h, *hash, map[string]string{"notice": "Saved"})
			}
			fs.takes.Store(0)
			fs.others.Store(0)
			fs.fail = tc.fail

			var saw http.Header
			reached := false
			next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				reached = true
				saw = r.Header.Clone()
				if tc.appErr != nil {
					return tc.appErr
				}
				if r.Header.Get("Test-Set") != "" {
					w.Header().Set("X-Session-Set-Cart", "1")
				}
				status := tc.status
				if status == 0 {
					status = http.StatusOK
				}
				w.WriteHeader(status)
				return nil
			})
			if tc.path == "" {
				tc.path = "/account"
			}
			u, _ := url.Parse("http://app.example.com" + tc.path)
			header := http.Header{"Cookie": {"sid=" + id}}
			for i := 0; i+1 < len(tc.headers); i += 2 {
				header.Add(tc.headers[i], tc.headers[i+1])
			}
			err := h.ServeHTTP(&discard{h: http.Header{}}, newBenchRequest(u, header), next)

			var he caddyhttp.HandlerError
			switch {
			case tc.errCode == 0 && err != nil:
				t.Fatalf("ServeHTTP: %v", err)
			case tc.errCode == -1 && err == nil:
				t.Fatal("ServeHTTP succeeded, want the app's error")
			case tc.errCode > 0 && (!errors.As(err, &he) || he.StatusCode != tc.errCode):
				t.Fatalf("ServeHTTP = %v, want an error with status %d", err, tc.errCode)
			}
			if got := saw.Get("X-Session-Flash-Notice") == "Saved"; got != tc.saw {
				t.Errorf("the app got the flash value: %v, want %v (headers %v)", got, tc.saw, saw)
			}
			if tc.saw && len(saw.Values("X-Session-Flash-Notice")) != 1 {
				t.Errorf("the app got %q", saw.Values("X-Session-Flash-Notice"))
			}
			if tc.fail != nil && tc.takes == 1 && !tc.saw && reached {
				t.Error("a request whose take failed reached the app")
			}
			if got := fs.takes.Load(); got != int64(tc.takes) {
				t.Errorf("%d takes, want %d", got, tc.takes)
			}
			if got := fs.restores.Load(); got != int64(tc.restores) {
				t.Errorf("%d restores, want %d", got, tc.restores)
			}
			if got := fs.others.Load(); tc.noFlash && got != 0 {
				t.Errorf("%d other updates on the read path, want none", got)
			}
			if m.calls != tc.calls {
				t.Errorf("the matcher ran %d times, want %d", m.calls, tc.calls)
			}
			if tc.noFlash {
				return
			}
			rec, err := h.store.Load(context.Background(), *hash, clock.Now(), h.timeouts)
			if err != nil {
				t.Fatal(err)
			}
			if kept := rec.Flash["notice"] == "Saved"; kept != tc.kept {
				t.Errorf("the store holds %v; want it kept: %v", rec.Flash, tc.kept)
			}
		})
	}
}

// setFlash sets flash values of the session under hash, as a response
// does.
func setFlash(t *testing.T, h *Handler, hash session.Hash, values map[string]string) {
	t.Helper()
	_, err := h.store.Update(t.Context(), store.Update{
		Hash: hash, HasHash: true, Patch: &session.Patch{Flash: maps.Clone(values)}, NoTouch: true,
		Identity: h.identity, Seen: "alice", Realm: h.realm, Now: clock.Now(), Timeouts: h.timeouts, Limits: h.limits,
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFlashNotSeenByMatchersOrPlaceholders: a flash value is no key: the
// session matcher and the {http.session.*} placeholders see the keys
// only, and a client's X-Session-Flash-* never reaches the app.
func TestFlashNotSeenByMatchersOrPlaceholders(t *testing.T) {
	h, _ := testHandler(t)
	id, hash := newSessionID()
	startSession(t, h, *hash, clock.Now())
	setFlash(t, h, *hash, map[string]string{"notice": "Saved", "user": "a flash value"})
	matcher := MatchSession{Key: "notice", handler: h}
	userIsFlash := MatchSession{Key: "user", Values: []string{"a flash value"}, handler: h}

	u, _ := url.Parse("http://app.example.com/")
	header := http.Header{"Cookie": {"sid=" + id}, "Sec-Fetch-Mode": {"navigate"},
		"X-Session-Flash-Notice": {"forged"}, "X-Session-Flash-Other": {"forged"}}
	r := newBenchRequest(u, header)
	for _, m := range []MatchSession{matcher, userIsFlash} {
		if ok, err := m.MatchWithError(r); ok || err != nil {
			t.Fatalf("session matcher %+v before the handler: %v, %v", m, ok, err)
		}
	}
	var saw http.Header
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		saw = r.Header.Clone()
		for _, m := range []MatchSession{matcher, userIsFlash} {
			if ok, err := m.MatchWithError(r); ok || err != nil {
				t.Errorf("session matcher %+v inside the handler: %v, %v", m, ok, err)
			}
		}
		repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		for _, p := range []string{"{http.session.notice}", "{http.session.user}", "{http.session.flash-notice}", "{http.session_meta.flash-notice}"} {
			if got := repl.ReplaceAll(p, ""); strings.Contains(got, "Saved") || strings.Contains(got, "flash value") {
				t.Errorf("placeholder %s = %q", p, got)
			}
		}
		if got := repl.ReplaceAll("{http.session.user}", ""); got != "alice" {
			t.Errorf("{http.session.user} = %q, want alice", got)
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
	if err := h.ServeHTTP(&discard{h: http.Header{}}, r, next); err != nil {
		t.Fatal(err)
	}
	var flashes []string
	for name, v := range saw {
		if strings.HasPrefix(name, "X-Session-Flash-") {
			flashes = append(flashes, name+": "+strings.Join(v, ","))
		}
	}
	want := map[string]string{"X-Session-Flash-Notice": "Saved", "X-Session-Flash-User": "a flash value"}
	if len(flashes) != 2 || saw.Get("X-Session-Flash-Notice") != want["X-Session-Flash-Notice"] || saw.Get("X-Session-Flash-User") != want["X-Session-Flash-User"] {
		t.Fatalf("the app got %q, want %v", flashes, want)
	}
	if saw.Get("X-Session-User") != "alice" {
		t.Fatalf("the app got X-Session-User %q", saw.Get("X-Session-User"))
	}
}

// TestFlashNavigation is the default of flash_on.
func TestFlashNavigation(t *testing.T) {
	tests := []struct {
		header http.Header
		want   bool
	}{
		{http.Header{"Sec-Fetch-Mode": {"navigate"}}, true},
		{http.Header{"Sec-Fetch-Mode": {" NAVIGATE "}}, true},
		{http.Header{"Sec-Fetch-Mode": {"navigate", "cors"}}, false},
		// A frame's navigation is no top-level one: Sec-Fetch-Dest says
		// which, when the browser sends it.
		{http.Header{"Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"document"}}, true},
		{http.Header{"Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {" Document "}}, true},
		{http.Header{"Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"iframe"}}, false},
		{http.Header{"Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"frame"}}, false},
		{http.Header{"Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"embed"}}, false},
		{http.Header{"Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"object"}}, false},
		{http.Header{"Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"document", "iframe"}}, false},
		// A page loaded ahead of the user may never be shown.
		{http.Header{"Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"document"}, "Sec-Purpose": {"prefetch"}}, false},
		{http.Header{"Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"document"}, "Sec-Purpose": {"prefetch;prerender"}}, false},
		{http.Header{"Sec-Fetch-Mode": {"navigate"}, "Sec-Purpose": {""}}, false},
		{http.Header{"Accept": {"text/html"}, "Purpose": {"prefetch"}}, false},
		{http.Header{"Accept": {"text/html"}, "X-Moz": {"Prefetch"}}, false},
		{http.Header{"Accept": {"text/html"}, "X-Purpose": {"preview"}}, false},
		{http.Header{"Accept": {"text/html"}, "Purpose": {"other"}}, true},
		{http.Header{"Sec-Fetch-Mode": {"same-origin"}, "Accept": {"text/html"}}, false},
		{http.Header{"Sec-Fetch-Mode": {""}, "Accept": {"text/html"}}, false},
		{http.Header{"Accept": {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}}, true},
		{http.Header{"Accept": {"application/json", "TEXT/HTML"}}, true},
		{http.Header{"Accept": {"application/json"}}, false},
		{http.Header{}, false},
	}
	for _, tc := range tests {
		got, err := (&Handler{}).flashOnMatches(&http.Request{Header: tc.header})
		if err != nil || got != tc.want {
			t.Errorf("flashOnMatches(%v) = %v, %v; want %v", tc.header, got, err, tc.want)
		}
	}
}

// TestFlashOnCaddyfile: flash_on takes the site's named matchers, paths
// and *, each a matcher set of the JSON list.
func TestFlashOnCaddyfile(t *testing.T) {
	site := func(session string) string {
		return "example.com {\n\t@pages {\n\t\tpath /app/*\n\t\tmethod GET\n\t}\n\t" + session + "\n\trespond ok\n}\n"
	}
	good := []struct{ name, session, want string }{
		{"a named matcher and a path", "session {\n\t\tflash_on @pages /account\n\t}",
			`[{"method":["GET"],"path":["/app/*"]},{"path":["/account"]}]`},
		{"every request", "session {\n\t\tflash_on *\n\t}", `[{}]`},
		{"none", "session", ``},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(site(tc.session)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %v", warnings)
			}
			got := normalize(t, findHandlerField(t, adapted, "flash_on"))
			if want := normalize(t, json.RawMessage(tc.want)); got != want {
				t.Errorf("flash_on:\n got %s\nwant %s", got, want)
			}
		})
	}
	bad := map[string]struct{ session, says string }{
		"no matcher":      {"session {\n\t\tflash_on\n\t}", "wrong argument count"},
		"not a matcher":   {"session {\n\t\tflash_on pages\n\t}", `"pages" is not a matcher`},
		"unknown matcher": {"session {\n\t\tflash_on @posts\n\t}", "@posts"},
		"given twice":     {"session {\n\t\tflash_on @pages\n\t\tflash_on /x\n\t}", "given twice"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(site(tc.session)), nil)
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error %v, want one saying %q", err, tc.says)
			}
		})
	}
}
