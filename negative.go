package caddysession

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// checkNegative refuses a negative duration or limit, which only JSON can
// give (the Caddyfile takes positive ones): it was read as left out, and
// the handler ran with the default without a word, though the config
// asked for something else.
func (h *Handler) checkNegative() error {
	type setting struct {
		name string
		d    caddy.Duration
	}
	durations := []setting{
		{"idle_timeout", h.IdleTimeout},
		{"absolute_timeout", h.AbsoluteTimeout},
		{"touch_interval", h.TouchInterval},
	}
	if h.Remember != nil {
		durations = append(durations,
			setting{"remember idle_timeout", h.Remember.IdleTimeout},
			setting{"remember absolute_timeout", h.Remember.AbsoluteTimeout})
	}
	if h.Sign != nil {
		durations = append(durations,
			setting{"sign lifetime", h.Sign.Lifetime},
			setting{"sign rotate", h.Sign.Rotate})
	}
	if h.Tunnels != nil {
		durations = append(durations, setting{"tunnels check_interval", h.Tunnels.CheckInterval})
	}
	if h.OnStoreError != nil {
		// Else stale with a negative duration was told that a duration
		// goes with stale, and 503 or anonymous kept one without a word.
		durations = append(durations, setting{"on_store_error within", h.OnStoreError.Within})
	}
	for _, d := range durations {
		if d.d < 0 {
			return fmt.Errorf("%s (%s) is negative: give a positive duration, or leave it out for the default", d.name, time.Duration(d.d))
		}
	}
	if l := h.Limits; l != nil {
		for name, n := range map[string]int{"keys": l.Keys, "value_size": l.ValueSize, "session_size": l.SessionSize} {
			if n < 0 {
				return fmt.Errorf("limits %s (%d) is negative: give a positive number, or leave it out for the default", name, n)
			}
		}
	}
	return nil
}
