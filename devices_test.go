package caddysession

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// TestAppendASCIIString: whatever a client put in its User-Agent, the
// JSON string is printable ASCII, and reads back as the text it came from
// (invalid UTF-8 as U+FFFD).
func TestAppendASCIIString(t *testing.T) {
	tests := []struct {
		name, in, want string
		back           string // what a JSON decoder reads; default in
	}{
		{name: "plain", in: "curl/8.5.0", want: `"curl/8.5.0"`},
		{name: "empty", in: "", want: `""`},
		{name: "quotes and backslashes", in: `a "b" \c`, want: `"a \"b\" \\c"`},
		{name: "controls", in: "a\tb\x00c\x1fd\x7f", want: `"a\u0009b\u0000c\u001fd\u007f"`},
		{name: "markup", in: "<script>&", want: `"\u003cscript\u003e\u0026"`},
		{name: "Latin-1", in: "Café", want: `"Caf\u00e9"`},
		{name: "CJK", in: "浏览器", want: `"\u6d4f\u89c8\u5668"`},
		{name: "beyond the BMP", in: "🦊 Firefox", want: `"\ud83e\udd8a Firefox"`},
		{name: "line separators", in: "a\u2028b\u2029", want: `"a\u2028b\u2029"`},
		{name: "invalid UTF-8", in: "a\xffb\xc3", want: `"a\ufffdb\ufffd"`, back: "a\ufffdb\ufffd"},
		{name: "a replacement character", in: "\ufffd", want: `"\ufffd"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(appendASCIIString([]byte("x"), tc.in))
			if got != "x"+tc.want {
				t.Fatalf("appendASCIIString(%q) = %s, want %s", tc.in, got[1:], tc.want)
			}
			for i := 0; i < len(got); i++ {
				if got[i] < 0x20 || got[i] > 0x7e {
					t.Fatalf("byte %#x at %d is not printable ASCII: %q", got[i], i, got)
				}
			}
			var back string
			if err := json.Unmarshal([]byte(got[1:]), &back); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			want := tc.back
			if want == "" {
				want = tc.in
			}
			if back != want {
				t.Fatalf("reads back as %q, want %q", back, want)
			}
		})
	}
}

// TestAppendDevicesEveryByte: a User-Agent of every byte value, and of
// every rune of a range, still makes a header value of printable ASCII
// that decodes as JSON.
func TestAppendDevicesEveryByte(t *testing.T) {
	var all []byte
	for b := range 256 {
		all = append(all, byte(b))
	}
	runes := make([]rune, 0, 0x3000)
	for r := rune(0x2000); r < 0x5000; r++ {
		runes = append(runes, r)
	}
	for _, ua := range []string{string(all), string(runes), session.TruncateUserAgent(string(runes))} {
		rec := &session.Record{Created: time.Unix(0, 0), LastSeen: time.Unix(0, 0), UserAgent: ua}
		hash := session.HashID("x")
		got := appendDevices(nil, []store.Entry{{Hash: hash, Record: rec}}, hash)
		for i, c := range got {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("byte %#x at %d is not printable ASCII", c, i)
			}
		}
		var list []map[string]any
		if err := json.Unmarshal(got, &list); err != nil || len(list) != 1 {
			t.Fatalf("not a JSON list of one: %v (%d)", err, len(list))
		}
	}
}

// device is a session of the tests, created at created and last seen at
// seen (minutes after t0).
func device(name string, created, seen int) store.Entry {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	timeouts := session.Timeouts{Idle: time.Hour, Absolute: 24 * time.Hour, TouchInterval: time.Minute}
	rec := timeouts.NewRecord(t0.Add(time.Duration(created) * time.Minute))
	timeouts.Touch(rec, t0.Add(time.Duration(seen)*time.Minute))
	rec.Values["user"] = "alice"
	return store.Entry{Hash: session.HashID(name), Record: rec}
}

var devicesTimeouts = session.Timeouts{Idle: time.Hour, Absolute: 24 * time.Hour, TouchInterval: time.Minute}

// devicesNow is when the tests list devices: 2 hours after t0, so that a
// session last seen before minute 60 has idled out.
var devicesNow = time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)

// TestListDevices: the current session first, then the others from the
// most recently seen (ties by creation, then by hash), the ended ones
// left out, at most maxDevices in all.
func TestListDevices(t *testing.T) {
	names := func(list []store.Entry) []string {
		out := make([]string, len(list))
		for i, e := range list {
			out[i] = e.Hash.Short()
		}
		return out
	}
	current := device("current", 70, 75)
	t.Run("order", func(t *testing.T) {
		a, b, c, tie1, tie2 := device("a", 61, 100), device("b", 62, 110), device("c", 63, 90), device("tie1", 64, 95), device("tie2", 65, 95)
		idle := device("idle", 0, 59) // idled out at minute 119
		entries := []store.Entry{a, idle, b, current, c, tie1, tie2}
		got := listDevices(entries, current.Hash, current.Record, devicesNow, devicesTimeouts)
		want := []store.Entry{current, b, a, tie2, tie1, c}
		if fmt.Sprint(names(got)) != fmt.Sprint(names(want)) {
			t.Fatalf("listed %v, want %v", names(got), names(want))
		}
		// Seen half an hour after now: before the clock stepped back,
		// so before every session seen since.
		ahead := device("ahead", 66, 150)
		got = listDevices(append(entries, ahead), current.Hash, current.Record, devicesNow, devicesTimeouts)
		want = append(want, ahead)
		if fmt.Sprint(names(got)) != fmt.Sprint(names(want)) {
			t.Fatalf("after a step back, listed %v, want %v", names(got), names(want))
		}
	})
	t.Run("the current one when the store left it out", func(t *testing.T) {
		got := listDevices([]store.Entry{device("a", 61, 100)}, current.Hash, current.Record, devicesNow, devicesTimeouts)
		if len(got) != 2 || got[0].Hash != current.Hash || got[0].Record != current.Record {
			t.Fatalf("listed %v, want the current one first", names(got))
		}
	})
	t.Run("alone", func(t *testing.T) {
		got := listDevices(nil, current.Hash, current.Record, devicesNow, devicesTimeouts)
		if len(got) != 1 || got[0].Hash != current.Hash {
			t.Fatalf("listed %v, want the current one", names(got))
		}
	})
	for _, n := range []int{maxDevices - 2, maxDevices - 1, maxDevices, maxDevices + 1, store.MaxListByIdentity} {
		t.Run(fmt.Sprint(n, " others"), func(t *testing.T) {
			entries := []store.Entry{current}
			for i := range n {
				entries = append(entries, device(fmt.Sprint("d", i), 61, 61+i%59))
			}
			got := listDevices(entries, current.Hash, current.Record, devicesNow, devicesTimeouts)
			if want := min(n+1, maxDevices); len(got) != want {
				t.Fatalf("listed %d, want %d", len(got), want)
			}
			if got[0].Hash != current.Hash {
				t.Fatal("the current session is not first")
			}
			for i := 2; i < len(got); i++ {
				if leastRecentFirst(got[i-1], got[i]) <= 0 {
					t.Fatalf("%s before %s: not from the most recently seen", got[i-1].Hash.Short(), got[i].Hash.Short())
				}
			}
			// The most recently seen are the ones kept.
			listed := map[session.Hash]bool{}
			for _, e := range got {
				listed[e.Hash] = true
			}
			last := got[len(got)-1]
			for _, e := range entries {
				if !listed[e.Hash] && leastRecentFirst(e, last) > 0 {
					t.Fatalf("%s is left out, though seen after %s, the last listed", e.Hash.Short(), last.Hash.Short())
				}
			}
		})
	}
}

// TestAppendDevices: the JSON of the list, as the app reads it.
func TestAppendDevices(t *testing.T) {
	current, other := device("current", 70, 75), device("other", 61, 100)
	other.Record.UserAgent = "Mozilla/5.0 (Macintosh) Safari/605.1.15"
	got := appendDevices(nil, []store.Entry{current, other}, current.Hash)
	want := `[{"session":"` + current.Hash.Short() + `","created":"2026-11-29T13:10:00Z","last_seen":"2026-11-29T13:15:00Z","current":true},` +
		`{"session":"` + other.Hash.Short() + `","created":"2026-11-29T13:01:00Z","last_seen":"2026-11-29T13:40:00Z","current":false,"user_agent":"Mozilla/5.0 (Macintosh) Safari/605.1.15"}]`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	// Times in another zone, and with fractions, are given in UTC seconds.
	rec := current.Record.Clone()
	rec.Created = time.Date(2026, 11, 29, 14, 10, 0, 999999999, time.FixedZone("CET", 3600))
	got = appendDevices(nil, []store.Entry{{Hash: current.Hash, Record: rec}}, other.Hash)
	if !strings.Contains(string(got), `"created":"2026-11-29T13:10:00Z"`) || !strings.Contains(string(got), `"current":false`) {
		t.Fatalf("got %s", got)
	}
	if got := appendDevices(nil, nil, current.Hash); string(got) != "[]" {
		t.Fatalf("no sessions: %s", got)
	}
}

// TestEvictable: the sessions a login ends to keep its user within the
// cap: the least recently seen others, never the login, and none that has
// ended already.
func TestEvictable(t *testing.T) {
	login := device("login", 119, 119)
	a, b, c := device("a", 61, 100), device("b", 62, 110), device("c", 63, 90)
	tie1, tie2 := device("tie1", 64, 95), device("tie2", 65, 95)
	idle := device("idle", 0, 59)
	fresh := device("fresh", 120, 120)
	// ahead was seen half an hour after devicesNow: before the clock
	// stepped back, longer ago than any session seen since the step.
	// justAhead is within session.MaxClockLag: a login in flight.
	ahead, justAhead := device("ahead", 66, 150), device("justAhead", 121, 121)
	tests := []struct {
		name    string
		entries []store.Entry
		limit   int
		want    []store.Entry
	}{
		{"under the cap", []store.Entry{login, a}, 3, nil},
		{"at the cap", []store.Entry{login, a, b}, 3, nil},
		{"one over", []store.Entry{a, login, b, c}, 3, []store.Entry{c}},
		{"two over", []store.Entry{a, login, b, c}, 2, []store.Entry{c, a}},
		{"a cap of one", []store.Entry{a, login, b, c}, 1, []store.Entry{c, a, b}},
		{"the login not listed yet", []store.Entry{a, b, c}, 2, []store.Entry{c, a}},
		{"ended sessions do not count", []store.Entry{idle, login, a, b}, 3, nil},
		{"ties by creation", []store.Entry{tie2, tie1, login, b}, 2, []store.Entry{tie1, tie2}},
		// fresh was seen when the login began (devicesNow): another login
		// in flight, which it must not end.
		{"a session seen since the login began counts", []store.Entry{a, login, fresh}, 2, []store.Entry{a}},
		{"but is never ended", []store.Entry{login, fresh}, 1, nil},
		{"even when that leaves the user over the cap", []store.Entry{fresh, a, login}, 1, []store.Entry{a}},
		{"seen before the clock stepped back: ended first", []store.Entry{a, login, ahead}, 2, []store.Entry{ahead}},
		{"seen before the step, then the least recently seen", []store.Entry{b, ahead, login, a}, 2, []store.Entry{ahead, a}},
		{"seen within the clock lag ahead: a login in flight", []store.Entry{login, justAhead}, 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := evictable(tc.entries, login.Hash, tc.limit, devicesNow, devicesNow, devicesTimeouts)
			if len(got) != len(tc.want) {
				t.Fatalf("evicts %d, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i].Hash != tc.want[i].Hash {
					t.Fatalf("evicts %s at %d, want %s", got[i].Hash.Short(), i, tc.want[i].Hash.Short())
				}
			}
		})
	}
	// Ties by hash: the smaller hash goes first, whatever the order listed.
	tie3 := store.Entry{Hash: session.HashID("tie3"), Record: tie1.Record}
	first, second := evictable([]store.Entry{tie1, tie3}, login.Hash, 2, devicesNow, devicesNow, devicesTimeouts), evictable([]store.Entry{tie3, tie1}, login.Hash, 2, devicesNow, devicesNow, devicesTimeouts)
	if len(first) != 1 || len(second) != 1 || first[0].Hash != second[0].Hash {
		t.Fatalf("a tie evicts %v and %v depending on the order listed", first, second)
	}
}

// TestDevicesCaddyfile: the subdirectives of the cap and the devices, and
// what is refused.
func TestDevicesCaddyfile(t *testing.T) {
	site := func(session string) string {
		return "example.com {\n\t@devices path /account/devices\n\t" + session + "\n\trespond ok\n}\n"
	}
	good := []struct{ name, session, field, want string }{
		{"devices", "session {\n\t\tdevices @devices /me/sessions\n\t}", "devices",
			`[{"path":["/account/devices"]},{"path":["/me/sessions"]}]`},
		{"max", "session {\n\t\tmax_sessions_per_identity 3\n\t}", "max_sessions_per_identity", `3`},
		{"record_user_agent", "session {\n\t\trecord_user_agent\n\t}", "record_user_agent", `true`},
		{"none", "session", "devices", ``},
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
			got := normalize(t, findHandlerField(t, adapted, tc.field))
			if want := normalize(t, json.RawMessage(tc.want)); got != want {
				t.Errorf("%s:\n got %s\nwant %s", tc.field, got, want)
			}
		})
	}
	bad := map[string]struct{ session, says string }{
		"devices without a matcher":  {"session {\n\t\tdevices\n\t}", "wrong argument count"},
		"devices of every request":   {"session {\n\t\tdevices *\n\t}", "every request"},
		"devices not a matcher":      {"session {\n\t\tdevices account\n\t}", `"account" is not a matcher`},
		"devices unknown matcher":    {"session {\n\t\tdevices @account\n\t}", "@account"},
		"devices twice":              {"session {\n\t\tdevices @devices\n\t\tdevices /me\n\t}", "given twice"},
		"max of none":                {"session {\n\t\tmax_sessions_per_identity 0\n\t}", "positive whole number"},
		"max negative":               {"session {\n\t\tmax_sessions_per_identity -1\n\t}", "positive whole number"},
		"max not a number":           {"session {\n\t\tmax_sessions_per_identity many\n\t}", "positive whole number"},
		"max without a number":       {"session {\n\t\tmax_sessions_per_identity\n\t}", "wrong argument count"},
		"max with two":               {"session {\n\t\tmax_sessions_per_identity 1 2\n\t}", "wrong argument count"},
		"record_user_agent with arg": {"session {\n\t\trecord_user_agent yes\n\t}", "wrong argument count"},
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

// A negative cap in JSON is refused when the config loads.
func TestMaxSessionsNegative(t *testing.T) {
	h := &Handler{MaxSessionsPerIdentity: -1}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := h.Provision(ctx)
	if err == nil || !strings.Contains(err.Error(), "max_sessions_per_identity") {
		t.Fatalf("Provision = %v, want an error naming max_sessions_per_identity", err)
	}
}
