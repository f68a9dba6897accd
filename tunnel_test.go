package caddysession

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// TestTunnelCheckInterval: the check interval defaults to a minute, or
// touch_interval if shorter (so that a config with a short idle_timeout,
// valid before tunnels were checked, stays valid), keep turns checks off,
// and an interval that lets an open tunnel's session expire idle between
// two checks is refused.
func TestTunnelCheckInterval(t *testing.T) {
	tests := []struct {
		name    string
		h       Handler
		want    time.Duration
		refused string
	}{
		{"default", Handler{}, time.Minute, ""},
		{"short touch_interval", Handler{IdleTimeout: caddy.Duration(40 * time.Second), TouchInterval: caddy.Duration(10 * time.Second)}, 10 * time.Second, ""},
		{"given", Handler{Tunnels: &TunnelsConfig{CheckInterval: caddy.Duration(5 * time.Second)}}, 5 * time.Second, ""},
		{"keep", Handler{Tunnels: &TunnelsConfig{Keep: true}}, 0, ""},
		{"keep and an interval", Handler{Tunnels: &TunnelsConfig{Keep: true, CheckInterval: caddy.Duration(time.Second)}}, 0, "keep takes no check_interval"},
		{"not shorter than idle_timeout", Handler{Tunnels: &TunnelsConfig{CheckInterval: caddy.Duration(30 * time.Minute)}}, 30 * time.Minute, "must be shorter than idle_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			if err := h.provisionSettings(); err != nil {
				t.Fatal(err)
			}
			if h.tunnelCheck != tt.want {
				t.Errorf("check interval %s, want %s", h.tunnelCheck, tt.want)
			}
			err := h.validateTunnels()
			switch {
			case tt.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.refused != "" && (err == nil || !strings.Contains(err.Error(), tt.refused)):
				t.Fatalf("got %v, want an error saying %q", err, tt.refused)
			}
		})
	}
}
