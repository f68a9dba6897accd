package session

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// Tests of the shortcuts taken for speed: each must give what the plain
// way gives.

func TestHashIDAnyLength(t *testing.T) {
	for _, n := range []int{0, 1, 43, 63, 64, 65, 1000} {
		id := strings.Repeat("a", n)
		if got, want := HashID(id), Hash(sha256.Sum256([]byte(id))); got != want {
			t.Errorf("HashID of %d bytes = %x, want %x", n, got, want)
		}
	}
}

func TestHeaderNameCache(t *testing.T) {
	p := NewProtocol("X-Sess-", nil, DefaultLimits())
	for range 2 { // from the cache the second time
		for key, want := range map[string]string{"user": "X-Sess-User", "cart_items": "X-Sess-Cart-Items", "a-b": "X-Sess-A-B"} {
			if got := p.HeaderName(key); got != want {
				t.Fatalf("HeaderName(%q) = %q, want %q", key, got, want)
			}
		}
	}
	// Past the bound, names are still right, and the cache stops growing.
	for i := range maxNames + 100 {
		key := fmt.Sprintf("k%d", i)
		if got, want := p.HeaderName(key), "X-Sess-"+strings.ToUpper(key[:1])+key[1:]; got != want {
			t.Fatalf("HeaderName(%q) = %q, want %q", key, got, want)
		}
	}
	n := 0
	p.names.Range(func(_, _ any) bool { n++; return true })
	if n > maxNames || int(p.named.Load()) != n {
		t.Fatalf("the cache holds %d names (counted %d), bound %d", n, p.named.Load(), maxNames)
	}
}

func TestForwardValuesAreSeparate(t *testing.T) {
	p := NewProtocol(DefaultHeaderPrefix, nil, DefaultLimits())
	h := http.Header{}
	p.Forward(h, map[string]string{"a": "1", "b": "2", "c": "3"})
	// Headers share one array; adding to one must not change another.
	h.Add("X-Session-A", "more")
	if h.Get("X-Session-B") != "2" || h.Get("X-Session-C") != "3" || !slices.Equal(h["X-Session-A"], []string{"1", "more"}) {
		t.Fatalf("forwarded headers interfere: %v", h)
	}
}

func TestAppendCandidatesKeepsPrefix(t *testing.T) {
	a := NewID()
	c := &Cookie{Name: "sid"}
	r := requestWithCookies("sid=" + a + "; sid=" + a)
	got := c.AppendCandidates([]string{a, "other"}, r)
	if !slices.Equal(got, []string{a, "other", a}) {
		t.Fatalf("AppendCandidates = %q", got)
	}
}

func TestScrubConnection(t *testing.T) {
	p := NewProtocol(DefaultHeaderPrefix, nil, DefaultLimits())
	tests := []struct {
		lines, want []string
	}{
		{nil, nil},
		{[]string{"keep-alive"}, []string{"keep-alive"}},
		{[]string{" keep-alive ,  Upgrade"}, []string{" keep-alive ,  Upgrade"}}, // nothing named: untouched
		{[]string{"keep-alive, X-Session-User"}, []string{"keep-alive"}},
		{[]string{"x_session_cart"}, nil},
		{[]string{"Upgrade", "close, X-SESSION-a,,"}, []string{"Upgrade", "close"}},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.lines != nil {
			h["Connection"] = slices.Clone(tt.lines)
		}
		p.ScrubConnection(h)
		if got := h["Connection"]; !slices.Equal(got, tt.want) {
			t.Errorf("ScrubConnection(%q) = %q, want %q", tt.lines, got, tt.want)
		}
	}
}
