package caddysession

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// devices: the user's own list of sessions. On requests that match the
// devices matchers, the app gets the sessions of the current session's
// identity in the realm as X-Session-Meta-Devices, and may end one of them
// with X-Session-Revoke (revoke.go). A handler without devices runs no
// matcher and reads no list: the read path pays one nil check.

// maxDevices bounds the sessions X-Session-Meta-Devices lists: a page of
// devices, not an audit log, and a header an upstream's limits take.
const maxDevices = 20

// metaDevices is the key whose request header, under the reserved meta-
// prefix, carries the list: X-Session-Meta-Devices.
const metaDevices = "meta-devices"

// provisionDevices checks max_sessions_per_identity and loads the matcher
// sets of devices.
func (h *Handler) provisionDevices(ctx caddy.Context) error {
	if h.MaxSessionsPerIdentity < 0 {
		return fmt.Errorf("max_sessions_per_identity (%d) must be a positive number of sessions, or 0 for no cap", h.MaxSessionsPerIdentity)
	}
	if len(h.DevicesRaw) == 0 {
		return nil // h.devices stays nil: no matcher ever runs
	}
	mods, err := ctx.LoadModule(h, "DevicesRaw")
	if err != nil {
		return fmt.Errorf("loading devices matchers: %v", err)
	}
	if err := h.devices.FromInterface(mods); err != nil {
		return err
	}
	h.devicesAs = h.protocol.HeaderName(metaDevices)
	return nil
}

// forwardDevices adds the list of the user's sessions to the request
// headers hdr, if the request matches devices and its session has an
// identity. A store failure is the client's 503; an error of the
// matchers fails the request, as a route's would.
func (s *requestState) forwardDevices(hdr http.Header) error {
	h := s.handler
	user, ok := h.rules.identityOf(s.record)
	if !ok {
		return nil
	}
	matched, err := h.devices.AnyMatchWithError(s.request)
	if err != nil {
		h.logger.Error("matching the request against devices",
			zap.String("session", s.hash.Short()), zap.Error(err))
		return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("matching the request against devices: %w", err))
	}
	if !matched {
		return nil
	}
	entries, err := h.store.ListByIdentity(s.request.Context(), h.realm, h.identity, user, s.now)
	if err != nil {
		h.logger.Error("listing the sessions of a user for devices",
			zap.String("session", s.hash.Short()), zap.Error(err))
		if h.lenient(decisionNoDevices, s.hash, err) {
			return nil
		}
		return caddyhttp.Error(http.StatusServiceUnavailable, fmt.Errorf("listing the sessions of a user: %w", err))
	}
	list := listDevices(entries, s.hash, s.record, s.now, h.timeouts)
	hdr[h.devicesAs] = []string{string(appendDevices(nil, list, s.hash))}
	return nil
}

// listDevices is what X-Session-Meta-Devices lists of entries, the
// sessions of the user: the live ones (by the timeouts, which may be
// shorter than those the records were written with), the current one,
// under hash, first (it is being seen now, and is listed even if the
// store's listing left it out), then the others from the most recently
// seen, at most maxDevices in all.
func listDevices(entries []store.Entry, hash session.Hash, current *session.Record, now time.Time, t session.Timeouts) []store.Entry {
	list := make([]store.Entry, 1, min(len(entries)+1, maxDevices))
	list[0] = store.Entry{Hash: hash, Record: current}
	others := make([]store.Entry, 0, len(entries))
	for _, e := range entries {
		if e.Hash != hash && !t.Expired(e.Record, now) {
			others = append(others, e)
		}
	}
	leastRecent := leastRecentFirstAt(now)
	slices.SortFunc(others, func(a, b store.Entry) int { return leastRecent(b, a) })
	return append(list, others[:min(len(others), maxDevices-1)]...)
}

// leastRecentFirst orders sessions from the least recently seen, then the
// oldest, then by hash: an order every instance and every run agrees on,
// since last-seen times are only precise to touch_interval and often tie.
func leastRecentFirst(a, b store.Entry) int {
	if c := a.Record.LastSeen.Compare(b.Record.LastSeen); c != 0 {
		return c
	}
	if c := a.Record.Created.Compare(b.Record.Created); c != 0 {
		return c
	}
	return bytes.Compare(a.Hash[:], b.Hash[:])
}

// appendDevices appends the list as the JSON array of
// X-Session-Meta-Devices: for each session its short hash, its creation
// and last-seen times in RFC 3339 (UTC, whole seconds), whether it is the
// current one (under current), and its User-Agent if one was recorded.
// The JSON is ASCII only (see appendASCIIString), a valid header value.
func appendDevices(b []byte, list []store.Entry, current session.Hash) []byte {
	b = append(b, '[')
	for i, e := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"session":"`...)
		b = append(b, e.Hash.Short()...)
		b = append(b, `","created":"`...)
		b = e.Record.Created.UTC().AppendFormat(b, time.RFC3339)
		b = append(b, `","last_seen":"`...)
		b = e.Record.LastSeen.UTC().AppendFormat(b, time.RFC3339)
		b = append(b, `","current":`...)
		b = strconv.AppendBool(b, e.Hash == current)
		if ua := e.Record.UserAgent; ua != "" {
			b = append(b, `,"user_agent":`...)
			b = appendASCIIString(b, ua)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendASCIIString appends s as a JSON string of printable ASCII only:
// what a header value may safely hold, whatever the upstream's parser
// makes of other bytes. Every other character is escaped as \uXXXX (a
// surrogate pair above U+FFFF), and so are <, > and &, as Go's JSON
// encoder does, for an app that puts the list into a page's script; bytes
// that are not UTF-8 become \ufffd. A client chose the User-Agent.
func appendASCIIString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f || c == '<' || c == '>' || c == '&':
				b = appendEscape(b, rune(c))
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			b = appendEscape(appendEscape(b, r1), r2)
		} else {
			b = appendEscape(b, r)
		}
		i += size
	}
	return append(b, '"')
}

// appendEscape appends the JSON escape \uXXXX of a UTF-16 code unit.
func appendEscape(b []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}

// unmarshalDevices reads the matchers of devices, resolved as the site's
// directives resolve theirs.
func (h *Handler) unmarshalDevices(d *caddyfile.Dispenser) error {
	sets, err := h.unmarshalMatchers(d, "devices", "/account/devices", nil,
		"* would read the user's sessions from the store on every request; name the pages that show them (@name, or a path such as /account/devices)")
	h.DevicesRaw = append(h.DevicesRaw, sets...)
	return err
}

// unmarshalMaxSessions reads max_sessions_per_identity.
func (h *Handler) unmarshalMaxSessions(d *caddyfile.Dispenser) error {
	var val string
	if err := parseOneArg(d, &val); err != nil {
		return err
	}
	n, err := strconv.Atoi(val)
	if err != nil || n < 1 {
		return d.Errf("max_sessions_per_identity: %q is not a positive whole number", val)
	}
	h.MaxSessionsPerIdentity = n
	return nil
}

// unmarshalRecordUserAgent reads record_user_agent, which takes no
// argument.
func (h *Handler) unmarshalRecordUserAgent(d *caddyfile.Dispenser) error {
	h.RecordUserAgent = true
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}
