package caddysession

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
)

const day = 24 * time.Hour

// TestRememberConfig: the remember block in the Caddyfile and JSON, its
// defaults, and the timeouts refused when the config loads.
func TestRememberConfig(t *testing.T) {
	parsed := []adaptCase{
		{"both", "session {\n remember {\n idle_timeout 7d\n absolute_timeout 90d\n }\n}",
			`{"remember":{"idle_timeout":604800000000000,"absolute_timeout":7776000000000000}}`},
		{"empty block", "session {\n remember\n}", `{"remember":{}}`},
	}
	checkAdapts(t, parsed)
	checkRefused(t, map[string]string{
		"an argument":       "session {\n remember 7d\n}",
		"unknown setting":   "session {\n remember {\n max_age 7d\n }\n}",
		"setting twice":     "session {\n remember {\n idle_timeout 7d\n idle_timeout 8d\n }\n}",
		"no duration":       "session {\n remember {\n idle_timeout\n }\n}",
		"bad duration":      "session {\n remember {\n absolute_timeout forever\n }\n}",
		"block given twice": "session {\n remember {\n idle_timeout 7d\n }\n remember {\n absolute_timeout 9d\n }\n}",
	})

	d := func(v time.Duration) caddy.Duration { return caddy.Duration(v) }
	loaded := []struct {
		name      string
		idle, abs caddy.Duration // idle_timeout and absolute_timeout
		remember  *RememberConfig
		want      [2]time.Duration // the remember timeouts
		err       string
	}{
		{name: "defaults", want: [2]time.Duration{14 * day, 30 * day}},
		{name: "configured", remember: &RememberConfig{IdleTimeout: d(7 * day), AbsoluteTimeout: d(90 * day)}, want: [2]time.Duration{7 * day, 90 * day}},
		// A config with long timeouts, from before remember-me, loads.
		{name: "defaults follow longer normal timeouts", idle: d(20 * day), abs: d(60 * day), want: [2]time.Duration{20 * day, 60 * day}},
		{name: "remember idle equal to the normal one", idle: d(time.Hour), remember: &RememberConfig{IdleTimeout: d(time.Hour)}, want: [2]time.Duration{time.Hour, 30 * day}},
		{name: "remember idle shorter than the normal one", idle: d(time.Hour), remember: &RememberConfig{IdleTimeout: d(59 * time.Minute)},
			err: "remember: idle_timeout (59m0s) is shorter than idle_timeout (1h0m0s)"},
		{name: "remember absolute shorter than the normal one", remember: &RememberConfig{AbsoluteTimeout: d(11 * time.Hour)},
			err: "remember: absolute_timeout (11h0m0s) is shorter than absolute_timeout (12h0m0s)"},
		{name: "remember absolute shorter than remember idle", remember: &RememberConfig{IdleTimeout: d(40 * day)},
			err: "remember: absolute_timeout (720h0m0s) is shorter than its idle_timeout (960h0m0s)"},
	}
	for _, c := range loaded {
		t.Run(c.name, func(t *testing.T) {
			h := &Handler{IdleTimeout: c.idle, AbsoluteTimeout: c.abs, Remember: c.remember}
			err := h.provisionSettings()
			if err == nil {
				err = h.Validate()
			}
			got := [2]time.Duration{h.timeouts.RememberIdle, h.timeouts.RememberAbsolute}
			switch {
			case c.err != "":
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one saying %q", err, c.err)
				}
			case err != nil:
				t.Fatal(err)
			case got != c.want || h.rules.timeouts != h.timeouts:
				t.Fatalf("remember timeouts %v (rules %+v), want %v", got, h.rules.timeouts, c.want)
			}
		})
	}
}

// TestPlanCommitRemember: X-Session-Remember gives a new ID when it
// changes the persistence of the loaded session, and does nothing else.
func TestPlanCommitRemember(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	r := rules{
		timeouts: session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute, RememberIdle: 14 * day, RememberAbsolute: 30 * day},
		limits:   session.DefaultLimits(),
		renewOn:  []string{"user"},
		identity: "user",
	}
	plain := r.timeouts.NewRecord(now)
	plain.Values["user"] = "alice"
	kept := plain.Clone()
	r.timeouts.SetRemembered(kept, true)
	asked := func(rem session.Remember, kv ...string) *session.Patch {
		p := &session.Patch{Remember: rem}
		for i := 0; i+1 < len(kv); i += 2 {
			if p.Set == nil {
				p.Set = map[string]string{}
			}
			p.Set[kv[i]] = kv[i+1]
		}
		return p
	}
	for _, c := range []struct {
		name   string
		loaded *session.Record
		patch  *session.Patch
		want   step
	}{
		{"anonymous, remember alone: nothing", nil, asked(session.RememberOn), stepNone},
		{"anonymous, remember false alone: nothing", nil, asked(session.RememberOff), stepNone},
		{"anonymous login remembered starts a session", nil, asked(session.RememberOn, "user", "alice"), stepCreate},
		{"remember a plain session: a new ID", plain, asked(session.RememberOn), stepRotate},
		{"forget a remembered session: a new ID", kept, asked(session.RememberOff), stepRotate},
		{"remember a remembered session: nothing", kept, asked(session.RememberOn), stepNone},
		{"forget a plain session: nothing", plain, asked(session.RememberOff), stepNone},
		{"remember a remembered session, with a set: in place", kept, asked(session.RememberOn, "cart", "1"), stepChange},
		{"logout and remembered login", plain, func() *session.Patch { p := asked(session.RememberOn, "user", "bob"); p.Destroy = true; return p }(), stepRestart},
		{"logout with remember alone", kept, func() *session.Patch { p := asked(session.RememberOn); p.Destroy = true; return p }(), stepDestroy},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := planCommit(c.loaded, false, c.patch, now, r)
			if err != nil || p.step != c.want {
				t.Fatalf("step %d, %v; want %d", p.step, err, c.want)
			}
		})
	}
}

// TestRememberThroughTheHandler: a login with the box ticked gets a
// persistent cookie to the absolute deadline and the app then sees
// X-Session-Meta-Remembered, which a client can never send it;
// X-Session-Remember: false gets a new browser-session cookie.
func TestRememberThroughTheHandler(t *testing.T) {
	h, _ := testHandler(t)
	var got http.Header
	serve := func(cookie string, header http.Header, commands ...string) *discard {
		t.Helper()
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			got = r.Header.Clone()
			for _, c := range commands {
				name, value, _ := strings.Cut(c, ":")
				w.Header().Add(name, strings.TrimSpace(value))
			}
			w.WriteHeader(http.StatusOK)
			return nil
		})
		if header == nil {
			header = http.Header{}
		}
		if cookie != "" {
			header.Set("Cookie", "sid="+cookie)
		}
		u, _ := url.Parse("http://app.example.com/login")
		w := &discard{h: http.Header{}}
		if err := h.ServeHTTP(w, newBenchRequest(u, header), next); err != nil {
			t.Fatal(err)
		}
		return w
	}
	cookieOf := func(w *discard) *http.Cookie {
		t.Helper()
		for _, c := range (&http.Response{Header: w.h}).Cookies() {
			if c.Name == "sid" {
				return c
			}
		}
		t.Fatalf("no session cookie in %v", w.h)
		return nil
	}
	forged := http.Header{"X-Session-Meta-Remembered": {"true"}, "X_Session_Meta_Remembered": {"true"}}

	w := serve("", forged.Clone(), "X-Session-Set-User: alice", "X-Session-Remember: true")
	if len(got.Values("X-Session-Meta-Remembered"))+len(got.Values("X_Session_Meta_Remembered")) != 0 {
		t.Fatalf("a client's X-Session-Meta-Remembered reached the app: %v", got)
	}
	c := cookieOf(w)
	// The clock of the request and of this test may differ by a second.
	if want := int((30 * day).Seconds()); c.MaxAge < want-1 || c.MaxAge > want {
		t.Fatalf("Max-Age %d, want %d", c.MaxAge, want)
	}
	rec, err := h.store.Load(t.Context(), session.HashID(c.Value), clock.Now(), h.timeouts)
	if err != nil || !rec.Remembered || rec.Values["user"] != "alice" {
		t.Fatalf("the session: %+v, %v", rec, err)
	}

	serve(c.Value, forged.Clone())
	if v := got.Values("X-Session-Meta-Remembered"); len(v) != 1 || v[0] != "true" || got.Get("X-Session-User") != "alice" {
		t.Fatalf("the app saw %v, want X-Session-Meta-Remembered: true once, and the user", got)
	}

	w = serve(c.Value, nil, "X-Session-Remember: false")
	forgotten := cookieOf(w)
	if forgotten.Value == c.Value || forgotten.MaxAge != 0 || strings.Contains(w.h.Get("Set-Cookie"), "Max-Age") {
		t.Fatalf("Set-Cookie %q: want a new ID in a browser-session cookie", w.h.Get("Set-Cookie"))
	}
	serve(forgotten.Value, forged.Clone())
	if len(got.Values("X-Session-Meta-Remembered")) != 0 || got.Get("X-Session-User") != "alice" {
		t.Fatalf("the app saw %v, want alice's session, not remembered", got)
	}
}
