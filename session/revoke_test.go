package session

import (
	"errors"
	"net/http"
	"testing"
)

// TestTakeCommandsRevoke: X-Session-Revoke takes one short hash, in any
// case and with spaces around it, and not beside a logout.
func TestTakeCommandsRevoke(t *testing.T) {
	tests := []struct {
		name   string
		h      http.Header
		want   string // the patch's Revoke
		reason string // non-empty: a *RuleError with this Reason
	}{
		{name: "a short hash", h: http.Header{"X-Session-Revoke": {"0123456789abcdef"}}, want: "0123456789abcdef"},
		{name: "in upper case, with spaces", h: http.Header{"X-Session-Revoke": {" 0123456789ABCDEF\t"}}, want: "0123456789abcdef"},
		{name: "underscored command", h: http.Header{"X_Session_Revoke": {"0123456789abcdef"}}, want: "0123456789abcdef"},
		{name: "with a set and a renewal", h: http.Header{"X-Session-Revoke": {"0123456789abcdef"}, "X-Session-Set-Cart": {"1"}, "X-Session-Renew": {"true"}},
			want: "0123456789abcdef"},
		{name: "too short", h: http.Header{"X-Session-Revoke": {"0123456789abcde"}}, reason: "invalid_value"},
		{name: "too long", h: http.Header{"X-Session-Revoke": {"0123456789abcdef0"}}, reason: "invalid_value"},
		{name: "the whole hash", h: http.Header{"X-Session-Revoke": {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}, reason: "invalid_value"},
		{name: "not hex", h: http.Header{"X-Session-Revoke": {"0123456789abcdeg"}}, reason: "invalid_value"},
		{name: "empty", h: http.Header{"X-Session-Revoke": {""}}, reason: "invalid_value"},
		{name: "two in one line", h: http.Header{"X-Session-Revoke": {"0123456789abcdef, fedcba9876543210"}}, reason: "invalid_value"},
		{name: "sent twice", h: http.Header{"X-Session-Revoke": {"0123456789abcdef", "fedcba9876543210"}}, reason: "conflict"},
		{name: "beside a logout", h: http.Header{"X-Session-Revoke": {"0123456789abcdef"}, "X-Session-Destroy": {"true"}}, reason: "conflict"},
		{name: "beside a logout everywhere", h: http.Header{"X-Session-Revoke": {"0123456789abcdef"}, "X-Session-Destroy-All": {"true"}}, reason: "conflict"},
	}
	p := NewProtocol(DefaultHeaderPrefix, nil, DefaultLimits())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			patch, err := p.TakeCommands(tt.h)
			if len(tt.h) != 0 {
				t.Errorf("headers left: %v", tt.h)
			}
			if tt.reason != "" {
				var re *RuleError
				if !errors.As(err, &re) || re.Reason != tt.reason || re.Detail == "" {
					t.Fatalf("TakeCommands() = %+v, %v; want a *RuleError %q", patch, err, tt.reason)
				}
				return
			}
			if err != nil || patch == nil {
				t.Fatalf("TakeCommands() = %+v, %v", patch, err)
			}
			if patch.Revoke != tt.want {
				t.Fatalf("Revoke = %q, want %q", patch.Revoke, tt.want)
			}
		})
	}
}

// A short hash of a session is what X-Session-Revoke takes.
func TestValidShort(t *testing.T) {
	h := HashID(NewID())
	if !validShort(h.Short()) {
		t.Fatalf("validShort(%q) = false", h.Short())
	}
	if validShort(h.String()) {
		t.Fatal("validShort of a whole hash")
	}
}
