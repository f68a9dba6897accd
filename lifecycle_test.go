package caddysession

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-session/caddy-session/session"
)

func TestPlanCommit(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	r := rules{
		timeouts: session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour, TouchInterval: time.Minute},
		limits:   session.Limits{Keys: 3, ValueSize: 100, SessionSize: 1000},
		renewOn:  []string{"user", "role_id"},
		identity: "user",
	}
	fresh := r.timeouts.NewRecord(now)
	fresh.Values = map[string]string{"user": "alice", "role_id": "7", "cart": "apple"}
	stale := fresh.Clone()
	stale.LastSeen = now.Add(-2 * time.Minute)
	set := func(kv ...string) *session.Patch {
		p := &session.Patch{Set: map[string]string{}}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Set[kv[i]] = kv[i+1]
		}
		return p
	}
	many := set("a", "1", "b", "2", "c", "3", "d", "4")
	many.DestroyAll = true
	many.Destroy = true

	untouched := func(p *session.Patch) *session.Patch { p.NoTouch = true; return p }

	cases := []struct {
		name    string
		loaded  *session.Record
		moved   bool
		patch   *session.Patch
		want    step
		endAll  bool
		dropped string
		rule    bool
		noTouch bool
	}{
		{name: "anonymous read", want: stepNone},
		{name: "anonymous set starts a session", patch: set("cart", "x"), want: stepCreate},
		{name: "anonymous delete starts nothing", patch: &session.Patch{Delete: []string{"cart"}}, want: stepNone},
		{name: "anonymous renew starts nothing", patch: &session.Patch{Renew: true}, want: stepNone},
		{name: "anonymous destroy starts nothing", patch: &session.Patch{Destroy: true}, want: stepNone},
		{name: "anonymous destroy-all starts nothing", patch: &session.Patch{Destroy: true, DestroyAll: true}, want: stepNone},
		{name: "rotated-away ID may not start a session", moved: true, patch: set("cart", "x"), dropped: droppedRotatedAway},
		{name: "rotated-away ID reading", moved: true, want: stepNone},
		{name: "fresh read", loaded: fresh, want: stepNone},
		{name: "read past the touch interval", loaded: stale, want: stepTouch},
		{name: "set a key", loaded: fresh, patch: set("cart", "pear"), want: stepChange},
		{name: "same user again keeps the ID", loaded: fresh, patch: set("user", "alice"), want: stepChange},
		{name: "login as another user rotates", loaded: fresh, patch: set("user", "bob"), want: stepRotate},
		{name: "renew_on key in the hyphen spelling rotates", loaded: fresh, patch: set("role-id", "8"), want: stepRotate},
		{name: "deleting a renew_on key rotates", loaded: fresh, patch: &session.Patch{Delete: []string{"user"}}, want: stepRotate},
		{name: "renew", loaded: fresh, patch: &session.Patch{Renew: true}, want: stepRotate},
		{name: "destroy", loaded: fresh, patch: &session.Patch{Destroy: true}, want: stepDestroy},
		{name: "destroy and set restarts", loaded: fresh, patch: func() *session.Patch { p := set("cart", "x"); p.Destroy = true; return p }(), want: stepRestart},
		{name: "destroy-all", loaded: fresh, patch: &session.Patch{Destroy: true, DestroyAll: true}, want: stepDestroy, endAll: true},
		{name: "destroy-all with a batch over the limits ends nothing", loaded: fresh, patch: many, rule: true},
		{name: "touch false past the touch interval: no touch", loaded: stale, patch: untouched(&session.Patch{}), want: stepNone, noTouch: true},
		{name: "touch false with a set", loaded: stale, patch: untouched(set("cart", "pear")), want: stepChange, noTouch: true},
		{name: "touch false with a login", loaded: stale, patch: untouched(set("user", "bob")), want: stepRotate, noTouch: true},
		{name: "touch false on an anonymous set still starts a session", patch: untouched(set("cart", "x")), want: stepCreate, noTouch: true},
		{name: "touch false on an anonymous read", patch: untouched(&session.Patch{}), want: stepNone, noTouch: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := planCommit(c.loaded, c.moved, c.patch, now, r)
			var ruleErr *session.RuleError
			if c.rule {
				if !errors.As(err, &ruleErr) {
					t.Fatalf("err = %v, want a rule error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.step != c.want || p.endAll != c.endAll || p.dropped != c.dropped || p.noTouch != c.noTouch {
				t.Fatalf("plan = step %d endAll %v dropped %q noTouch %v, want step %d endAll %v dropped %q noTouch %v",
					p.step, p.endAll, p.dropped, p.noTouch, c.want, c.endAll, c.dropped, c.noTouch)
			}
		})
	}
}

func TestHostsOverlap(t *testing.T) {
	cases := []struct {
		a, b []string
		want bool
	}{
		{nil, []string{"example.com"}, true},
		{[]string{"example.com"}, []string{"EXAMPLE.com"}, true},
		{[]string{"example.com"}, []string{"example.org"}, false},
		{[]string{"*.example.com"}, []string{"shop.example.com"}, true},
		{[]string{"*.example.com"}, []string{"a.b.example.com"}, false},
		{[]string{"*.example.com"}, []string{"example.org"}, false},
		{[]string{"*.example.com"}, []string{"*.example.com"}, true},
	}
	for _, c := range cases {
		if got := hostsOverlap(c.a, c.b); got != c.want {
			t.Errorf("hostsOverlap(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestDefaultRealm(t *testing.T) {
	a := site{listen: []string{":443"}, path: []string{"www.example.com", "example.com"}}
	b := site{listen: []string{":443"}, path: []string{"example.com", "www.example.com", "example.com"}}
	if a.realm() != b.realm() || a.realm() != "example.com,www.example.com@:443" {
		t.Fatalf("realms %q and %q, want both example.com,www.example.com@:443", a.realm(), b.realm())
	}
	if got := (site{listen: []string{":8081"}}).realm(); got != "*@:8081" {
		t.Fatalf("realm of a site with no host = %q", got)
	}
}

func TestWarnsOfCookiesSharedAcrossRealms(t *testing.T) {
	handler := func(realm, cookie string) *Handler {
		return &Handler{realm: realm, cookie: &session.Cookie{Name: cookie}}
	}
	shop, blog, api := handler("*@:8081", "sid"), handler("*@:8082", "sid"), handler("*@:8083", "apisid")
	sameRealm := handler("*@:8081", "sid")
	sites := map[*Handler]site{
		shop: {listen: []string{":8081"}}, blog: {listen: []string{":8082"}},
		api: {listen: []string{":8083"}}, sameRealm: {listen: []string{":8081"}},
	}
	cases := []struct {
		name     string
		handlers []*Handler
		warned   bool
	}{
		{"two realms, one cookie, any host", []*Handler{shop, blog}, true},
		{"two realms, two cookies", []*Handler{shop, api}, false},
		{"one realm, one cookie", []*Handler{shop, sameRealm}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			core, logs := observer.New(zap.WarnLevel)
			a := &App{logger: zap.New(core)}
			a.warnSharedCookies(c.handlers, sites)
			if got := logs.Len() > 0; got != c.warned {
				t.Fatalf("warned = %v, want %v: %v", got, c.warned, logs.All())
			}
		})
	}
}
