package caddysession

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestHasDirective(t *testing.T) {
	rows := []struct {
		value string
		want  bool
	}{
		{"no-store", true},
		{"No-Store", true},
		{"NO-STORE", true},
		{"private, no-store", true},
		{"private,no-store,max-age=0", true},
		{" \tno-store\t ", true},
		{"no-store=1", true},   // an argument it should not have is ignored
		{`no-store="x"`, true}, // likewise quoted
		{`private="a,b", no-store`, true},
		{`private="a\"", no-store`, true}, // an escaped quote does not end the string
		{"", false},
		{"no-cache", false},
		{"x-no-store-ish", false},
		{"no-storex", false},
		{"xno-store", false},
		{"no-store-x, max-age=60", false},
		{"no store", false},
		{`private="x, no-store", max-age=60`, false}, // inside a quoted argument
		{`no-cache="no-store"`, false},
		{`private="a\", no-store"`, false}, // still inside the quoted string
		{"max-age=no-store", false},        // an argument, not a directive
	}
	for _, tc := range rows {
		if got := hasDirective(tc.value, "no-store"); got != tc.want {
			t.Errorf("hasDirective(%q, no-store) = %v, want %v", tc.value, got, tc.want)
		}
	}
}

func TestNoStore(t *testing.T) {
	rows := []struct {
		name string
		in   http.Header
		// Cache-Control afterwards, and the header names left
		want string
		kept []string
	}{
		{"nothing", http.Header{}, "no-store", nil},
		{"cacheable", http.Header{"Cache-Control": {"public, max-age=600"}}, "no-store", nil},
		{"the app's no-store kept as it is", http.Header{"Cache-Control": {"private, No-Store"}}, "private, No-Store", nil},
		{"no-store on a second line", http.Header{"Cache-Control": {"private", "no-store"}}, "private, no-store", nil},
		{"a lookalike is replaced", http.Header{"Cache-Control": {"x-no-store-ish"}}, "no-store", nil},
		{"CDN fields go", http.Header{
			"Cdn-Cache-Control":            {"max-age=600"},
			"Surrogate-Control":            {"max-age=600"},
			"Cloudflare-Cdn-Cache-Control": {"max-age=600"},
			"X-Accel-Expires":              {"600"}, // nginx's, obeyed before Cache-Control
			"Vary":                         {"Cookie"},
		}, "no-store", []string{"Vary"}},
		{"CDN fields go even beside the app's no-store", http.Header{
			"Cache-Control":     {"no-store"},
			"Cdn-Cache-Control": {"max-age=600"},
			"surrogate-control": {"max-age=600"}, // set without canonicalization
		}, "no-store", nil},
		{"names that only look alike stay", http.Header{
			"Xcdn-Cache-Control":  {"1"},
			"Cdn-Cache-Control-X": {"1"},
			"Surrogate-Key":       {"a b"},
			"X-Accel-Expiresx":    {"1"},
			"X-Accel-Buffering":   {"no"},
		}, "no-store", []string{"Cdn-Cache-Control-X", "Surrogate-Key", "X-Accel-Buffering", "X-Accel-Expiresx", "Xcdn-Cache-Control"}},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.in.Clone()
			noStore(h)
			if got := strings.Join(h.Values("Cache-Control"), ", "); got != tc.want {
				t.Errorf("Cache-Control %q, want %q", got, tc.want)
			}
			var names []string
			for name := range h {
				if name != "Cache-Control" {
					names = append(names, name)
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, tc.kept) {
				t.Errorf("headers left %q, want %q", names, tc.kept)
			}
		})
	}
}

// TestCookieConfig follows a cookie block from its JSON fields to the
// Set-Cookie field values, or to the error that refuses the config.
func TestCookieConfig(t *testing.T) {
	const id = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
	rows := []struct {
		name string
		cfg  *CookieConfig
		// the Set-Cookie that sets id over plain HTTP, and the one that
		// removes it; or the error
		set, remove, err string
	}{
		{name: "defaults", cfg: nil,
			set:    "sid=" + id + "; Path=/; HttpOnly; SameSite=Lax",
			remove: "sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; SameSite=Lax"},
		{name: "priority", cfg: &CookieConfig{Priority: "high"},
			set:    "sid=" + id + "; Path=/; HttpOnly; SameSite=Lax; Priority=High",
			remove: "sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; SameSite=Lax; Priority=High"},
		{name: "priority in any case", cfg: &CookieConfig{Priority: "LOW"},
			set:    "sid=" + id + "; Path=/; HttpOnly; SameSite=Lax; Priority=Low",
			remove: "sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; SameSite=Lax; Priority=Low"},
		{name: "partitioned", cfg: &CookieConfig{Name: "__Host-sid", Secure: "always", SameSite: "none", Partitioned: true, Priority: "medium"},
			set:    "__Host-sid=" + id + "; Path=/; HttpOnly; Secure; SameSite=None; Partitioned; Priority=Medium",
			remove: "__Host-sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Secure; SameSite=None; Partitioned; Priority=Medium"},
		{name: "partitioned with secure auto", cfg: &CookieConfig{Partitioned: true},
			err: "cookie partitioned needs secure always"},
		{name: "partitioned with secure never", cfg: &CookieConfig{Partitioned: true, Secure: "never"},
			err: "cookie partitioned needs secure always"},
		{name: "bad priority", cfg: &CookieConfig{Priority: "urgent"},
			err: `cookie: priority must be low, medium or high, not "urgent"`},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			h := &Handler{Cookie: tc.cfg}
			err := h.provisionSettings()
			if err == nil {
				err = h.Validate()
			}
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if got := h.cookie.IssueHeader(id, false); got != tc.set {
				t.Errorf("setting:\n\t%s\nwant\n\t%s", got, tc.set)
			}
			if got := h.cookie.ExpireHeader(false); got != tc.remove {
				t.Errorf("removing:\n\t%s\nwant\n\t%s", got, tc.remove)
			}
		})
	}
}
