package session

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

func newTestProtocol(writable ...string) *Protocol {
	return NewProtocol(DefaultHeaderPrefix, writable, DefaultLimits())
}

func TestValidPrefix(t *testing.T) {
	tests := map[string]bool{
		"X-Session-": true,
		"X-App-":     true,
		"x_s-":       true,
		"X-Session":  false, // would swallow X-Sessionize
		"-":          false,
		"":           false,
		"X Session-": false,
		"X:Session-": false,
		"Sé-":        false,
	}
	for prefix, want := range tests {
		if got := ValidPrefix(prefix); got != want {
			t.Errorf("ValidPrefix(%q) = %v, want %v", prefix, got, want)
		}
	}
}

func TestValidKey(t *testing.T) {
	tests := map[string]bool{
		"user":                  true,
		"User":                  true,
		"cart_items":            true,
		"cart-items":            true,
		"a":                     true,
		"0":                     true,
		"-":                     true,
		strings.Repeat("k", 64): true,
		strings.Repeat("k", 65): false,
		"":                      false,
		"a b":                   false,
		"a.b":                   false,
		"a,b":                   false,
		"a:b":                   false,
		"é":                     false,
		"\u212a":                false, // Kelvin sign, lowercases to 'k'
		"user\x00":              false,
		" user":                 false,
		// Reserved for what the plugin forwards about a session.
		"meta-created":  false,
		"META_created":  false,
		"flash-notice":  false,
		"Flash_notice":  false,
		"meta-":         false,
		"flash_":        false,
		"meta":          true,
		"flash":         true,
		"metadata":      true,
		"flashy-notice": true,
		"my-meta-data":  true,
		"m\u0435ta-x":   false, // Cyrillic e
	}
	for k, want := range tests {
		if got := ValidKey(k); got != want {
			t.Errorf("ValidKey(%q) = %v, want %v", k, got, want)
		}
	}
}

// CheckKey is the one wording of the key rule: it agrees with ValidKey and
// says what to change, including the reserved prefixes.
func TestCheckKey(t *testing.T) {
	tests := []struct {
		key  string
		want string // "" for nil; else the whole message
	}{
		{"user", ""},
		{"Cart_Items", ""},
		{"meta", ""},
		{"us.er", `"us.er" is not a session key: use 1 to 64 of a-z 0-9 - _, not beginning with meta- or flash-`},
		{"", `"" is not a session key: use 1 to 64 of a-z 0-9 - _, not beginning with meta- or flash-`},
		{strings.Repeat("k", 65), `"` + strings.Repeat("k", 65) + `" is not a session key: use 1 to 64 of a-z 0-9 - _, not beginning with meta- or flash-`},
		{"meta-created", `"meta-created" is not a session key: keys beginning with meta- or flash- (or meta_, flash_) are reserved for what the plugin forwards about a session; rename the key`},
		{"Flash_Notice", `"Flash_Notice" is not a session key: keys beginning with meta- or flash- (or meta_, flash_) are reserved for what the plugin forwards about a session; rename the key`},
	}
	for _, tt := range tests {
		err := CheckKey(tt.key)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("CheckKey(%q) = %q, want %q", tt.key, got, tt.want)
		}
		if ValidKey(tt.key) != (err == nil) {
			t.Errorf("ValidKey(%q) = %v, but CheckKey says %v", tt.key, ValidKey(tt.key), err)
		}
	}
}

func TestInNamespace(t *testing.T) {
	p := newTestProtocol()
	tests := map[string]bool{
		"X-Session-User":     true,
		"x-session-user":     true,
		"X_SESSION_USER":     true,
		"X_Session-User":     true,
		"x-SeSsIoN_uSeR":     true,
		"X-Session-":         true,
		"X-Session-Set-User": true,
		"X-Session_Delete":   true,
		// PHP reads '.' as '_' in $_SERVER names.
		"X.Session.User":       true,
		"x.session_user":       true,
		"X_Session.User":       true,
		"X-Session.":           true,
		"x.SESSION-set.user":   true,
		"X.Sessionx":           false,
		"X.Session":            false,
		"X.Sessions.User":      false,
		"X-Session,User":       false,
		"X-Sessionx":           false,
		"X-Sessio":             false,
		"X-Session":            false,
		"X-Sessions-User":      false,
		"X-Session+User":       false,
		"":                     false,
		"Session-User":         false,
		"Trailer:X-Session-A":  false, // Scrub strips the trailer prefix itself
		"X-Other-Session-User": false,
		"XX-Session-User":      false,
		"X-Sess\u0130on-User":  false,
		"Cookie":               false,
		"Content-Type":         false,
	}
	for name, want := range tests {
		if got := p.InNamespace(name); got != want {
			t.Errorf("InNamespace(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestInNamespaceCustomPrefix(t *testing.T) {
	p := NewProtocol("X-App-", nil, DefaultLimits())
	tests := map[string]bool{
		"X-App-User":     true,
		"x_app_user":     true,
		"X-Session-User": false,
		"X-Apps-User":    false,
		"X-App":          false,
	}
	for name, want := range tests {
		if got := p.InNamespace(name); got != want {
			t.Errorf("InNamespace(%q) = %v, want %v", name, got, want)
		}
	}
	if got := p.HeaderName("user"); got != "X-App-User" {
		t.Errorf("HeaderName(user) = %q, want X-App-User", got)
	}
}

func TestScrub(t *testing.T) {
	p := newTestProtocol()
	h := http.Header{
		"X-Session-User":             {"forged"},
		"x-session-role":             {"admin"},
		"X_SESSION_USER":             {"forged"},
		"X_Session-Cart":             {"1"},
		"X-Session-":                 {"x"},
		"X.Session.User":             {"forged"},
		"x.session_user":             {"forged"},
		"X_Session.User":             {"forged"},
		"Trailer:X.Session.Role":     {"forged"},
		"X.Sessionx":                 {"keep"},
		"Trailer:X-Session-User":     {"forged"},
		"Trailer:x_session_role":     {"forged"},
		"Content-Type":               {"text/plain"},
		"X-Sessionx":                 {"keep"},
		"X-Sessio":                   {"keep"},
		"Trailer:X-Other":            {"keep"},
		"Cookie":                     {"a=1", "b=2"},
		"X-Forwarded-X-Session-User": {"keep"},
	}
	want := http.Header{
		"Content-Type":               {"text/plain"},
		"X.Sessionx":                 {"keep"},
		"X-Sessionx":                 {"keep"},
		"X-Sessio":                   {"keep"},
		"Trailer:X-Other":            {"keep"},
		"Cookie":                     {"a=1", "b=2"},
		"X-Forwarded-X-Session-User": {"keep"},
	}
	p.Scrub(h)
	if !reflect.DeepEqual(h, want) {
		t.Errorf("after Scrub:\n got %v\nwant %v", h, want)
	}
	// Scrubbing nil or empty headers is harmless.
	p.Scrub(nil)
	p.Scrub(http.Header{})
}

func TestForward(t *testing.T) {
	p := newTestProtocol()
	h := http.Header{"Content-Type": {"text/plain"}}
	p.Forward(h, map[string]string{"user": "alice", "cart_items": "1,2", "role-name": "admin", "empty": ""})
	want := http.Header{
		"Content-Type":         {"text/plain"},
		"X-Session-User":       {"alice"},
		"X-Session-Cart-Items": {"1,2"},
		"X-Session-Role-Name":  {"admin"},
		"X-Session-Empty":      {""},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("after Forward:\n got %v\nwant %v", h, want)
	}
	for name := range want {
		if name != "Content-Type" && !p.InNamespace(name) {
			t.Errorf("forwarded header %q is not in the namespace, so Scrub would not remove it", name)
		}
	}
	// No forwarded name holds a '_', which nginx, waitress and Caddy drop.
	for name := range h {
		if strings.Contains(name, "_") {
			t.Errorf("forwarded header %q has an underscore", name)
		}
	}
	// Forward replaces rather than appends.
	p.Forward(h, map[string]string{"user": "bob"})
	if got := h["X-Session-User"]; len(got) != 1 || got[0] != "bob" {
		t.Errorf("X-Session-User = %q after a second Forward, want [bob]", got)
	}
	// http.Header.Get finds the forwarded values.
	if got := h.Get("x-session-role-name"); got != "admin" {
		t.Errorf("Get(x-session-role-name) = %q", got)
	}
}

func TestHeaderName(t *testing.T) {
	tests := []struct {
		prefix, key, want string
	}{
		{DefaultHeaderPrefix, "user", "X-Session-User"},
		{DefaultHeaderPrefix, "USER", "X-Session-User"},
		{DefaultHeaderPrefix, "user-id", "X-Session-User-Id"},
		{DefaultHeaderPrefix, "user_id", "X-Session-User-Id"},
		{DefaultHeaderPrefix, "Cart_Items", "X-Session-Cart-Items"},
		{DefaultHeaderPrefix, "a_b-c_", "X-Session-A-B-C-"},
		{"X_App-", "user_id", "X_app-User-Id"}, // the operator's prefix stays as given
		{"x-session-", "user", "X-Session-User"},
		{"X-App-", "user", "X-App-User"},
	}
	for _, tt := range tests {
		p := NewProtocol(tt.prefix, nil, DefaultLimits())
		if got := p.HeaderName(tt.key); got != tt.want {
			t.Errorf("NewProtocol(%q).HeaderName(%q) = %q, want %q", tt.prefix, tt.key, got, tt.want)
		}
	}
}

// cgiName is the variable a CGI or PHP app reads a request header as.
func cgiName(header string) string {
	return "HTTP_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(header))
}

// Both spellings of a key reach a CGI app as the variable it always had,
// under one header name that no server drops for its underscore.
func TestForwardedNameAsCGISeesIt(t *testing.T) {
	p := newTestProtocol()
	for _, key := range []string{"cart_items", "cart-items", "CART_items"} {
		name := p.HeaderName(key)
		if name != "X-Session-Cart-Items" || cgiName(name) != "HTTP_X_SESSION_CART_ITEMS" {
			t.Errorf("key %q is sent as %q, which CGI reads as %s", key, name, cgiName(name))
		}
	}
}

func TestProtocolLimits(t *testing.T) {
	l := Limits{Keys: 3, ValueSize: 10, SessionSize: 100}
	if got := NewProtocol(DefaultHeaderPrefix, nil, l).Limits(); got != l {
		t.Errorf("Limits() = %+v, want %+v", got, l)
	}
}

// assertNoCommands fails if any header of h is in p's commands'
// namespace, announced as a trailer or not.
func assertNoCommands(t *testing.T, p *Protocol, h http.Header) {
	t.Helper()
	for name := range h {
		if p.isCommand(strings.TrimPrefix(name, http.TrailerPrefix)) {
			t.Errorf("command header %q left in the map", name)
		}
	}
}

func TestTakeCommands(t *testing.T) {
	type want struct {
		set     map[string]string
		delete  []string // compared sorted
		renew   bool
		destroy bool
		noTouch bool
	}
	tests := []struct {
		name     string
		h        http.Header
		writable []string
		limits   *Limits
		want     *want  // nil: no patch
		reason   string // non-empty: a *RuleError with this Reason
	}{
		{name: "no headers", h: http.Header{}},
		{name: "no namespace headers", h: http.Header{"X-Sessionx": {"1"}}},
		{
			name: "set",
			h:    http.Header{"X-Session-Set-User": {"alice"}},
			want: &want{set: map[string]string{"user": "alice"}},
		},
		{
			name: "set key is lowercased and keeps its underscore",
			h:    http.Header{"X-Session-Set-Cart_Items": {"1,2"}},
			want: &want{set: map[string]string{"cart_items": "1,2"}},
		},
		{
			name: "set with underscored command spelling",
			h:    http.Header{"X_SESSION_SET_USER": {"alice"}},
			want: &want{set: map[string]string{"user": "alice"}},
		},
		{
			name: "set empty value",
			h:    http.Header{"X-Session-Set-User": {""}},
			want: &want{set: map[string]string{"user": ""}},
		},
		{
			name: "set value with tab, comma and UTF-8",
			h:    http.Header{"X-Session-Set-Note": {"a\tb, c é"}},
			want: &want{set: map[string]string{"note": "a\tb, c é"}},
		},
		{
			name: "set several",
			h:    http.Header{"X-Session-Set-User": {"alice"}, "X-Session-Set-Role": {"admin"}},
			want: &want{set: map[string]string{"user": "alice", "role": "admin"}},
		},
		{
			name: "delete one",
			h:    http.Header{"X-Session-Delete": {"user"}},
			want: &want{delete: []string{"user"}},
		},
		{
			name: "delete comma list with spaces and case",
			h:    http.Header{"X-Session-Delete": {"User, cart_items ,role"}},
			want: &want{delete: []string{"cart_items", "role", "user"}},
		},
		{
			name: "delete on several lines",
			h:    http.Header{"X-Session-Delete": {"a,b", "c"}},
			want: &want{delete: []string{"a", "b", "c"}},
		},
		{
			name: "delete under two spellings",
			h:    http.Header{"X-Session-Delete": {"a"}, "x_session_delete": {"b"}},
			want: &want{delete: []string{"a", "b"}},
		},
		{
			name:   "delete with an empty element",
			h:      http.Header{"X-Session-Delete": {"a,,b"}},
			reason: "invalid_key",
		},
		{
			name:   "delete empty",
			h:      http.Header{"X-Session-Delete": {""}},
			reason: "invalid_key",
		},
		{
			name: "renew",
			h:    http.Header{"X-Session-Renew": {"true"}},
			want: &want{renew: true},
		},
		{
			name: "renew case-insensitive with spaces",
			h:    http.Header{"X-Session-Renew": {" TRUE "}},
			want: &want{renew: true},
		},
		{
			name: "destroy",
			h:    http.Header{"X-Session-Destroy": {"True"}},
			want: &want{destroy: true},
		},
		{
			name: "destroy and set",
			h:    http.Header{"X-Session-Destroy": {"true"}, "X-Session-Set-User": {"bob"}},
			want: &want{destroy: true, set: map[string]string{"user": "bob"}},
		},
		{
			name: "everything at once",
			h: http.Header{
				"X-Session-Set-User": {"bob"},
				"X-Session-Delete":   {"cart"},
				"X-Session-Renew":    {"true"},
				"X-Session-Destroy":  {"true"},
			},
			want: &want{set: map[string]string{"user": "bob"}, delete: []string{"cart"}, renew: true, destroy: true},
		},
		{
			name: "destroy-all in Python's spelling",
			h:    http.Header{"X-Session-Destroy-All": {"True"}},
			want: &want{destroy: true},
		},
		{name: "renew 1", h: http.Header{"X-Session-Renew": {"1"}}, reason: "invalid_value"},
		{name: "renew yes", h: http.Header{"X-Session-Renew": {"yes"}}, reason: "invalid_value"},
		{name: "renew false", h: http.Header{"X-Session-Renew": {"false"}}, reason: "invalid_value"},
		{name: "renew empty", h: http.Header{"X-Session-Renew": {""}}, reason: "invalid_value"},
		{name: "renew no values", h: http.Header{"X-Session-Renew": {}}, reason: "invalid_value"},
		{name: "renew twice", h: http.Header{"X-Session-Renew": {"true", "true"}}, reason: "invalid_value"},
		{name: "renew truthy", h: http.Header{"X-Session-Renew": {"truely"}}, reason: "invalid_value"},
		{name: "destroy yes", h: http.Header{"X-Session-Destroy": {"yes"}}, reason: "invalid_value"},
		{name: "destroy twice", h: http.Header{"X-Session-Destroy": {"true", "true"}}, reason: "invalid_value"},
		{
			name: "touch false",
			h:    http.Header{"X-Session-Touch": {"false"}},
			want: &want{noTouch: true},
		},
		{
			name: "touch False in Python's spelling, with spaces",
			h:    http.Header{"X_Session_Touch": {" False "}},
			want: &want{noTouch: true},
		},
		{
			name: "touch false with a set",
			h:    http.Header{"X-Session-Touch": {"FALSE"}, "X-Session-Set-Count": {"3"}},
			want: &want{noTouch: true, set: map[string]string{"count": "3"}},
		},
		{name: "touch true", h: http.Header{"X-Session-Touch": {"true"}}, reason: "invalid_value"},
		{name: "touch 0", h: http.Header{"X-Session-Touch": {"0"}}, reason: "invalid_value"},
		{name: "touch no", h: http.Header{"X-Session-Touch": {"no"}}, reason: "invalid_value"},
		{name: "touch twice", h: http.Header{"X-Session-Touch": {"false", "false"}}, reason: "invalid_value"},
		{
			name:   "touch true spoils a set",
			h:      http.Header{"X-Session-Touch": {"true"}, "X-Session-Set-Count": {"3"}},
			reason: "invalid_value",
		},
		{name: "unknown command", h: http.Header{"X-Session-User": {"alice"}}, reason: "unknown_command"},
		{name: "bare prefix", h: http.Header{"X-Session-": {"x"}}, reason: "unknown_command"},
		{name: "set without dash", h: http.Header{"X-Session-Set": {"x"}}, reason: "unknown_command"},
		{name: "set without key", h: http.Header{"X-Session-Set-": {"x"}}, reason: "invalid_key"},
		{name: "delete with suffix", h: http.Header{"X-Session-Deletes": {"a"}}, reason: "unknown_command"},
		{name: "renew with suffix", h: http.Header{"X-Session-Renew-Now": {"true"}}, reason: "unknown_command"},
		{
			name:   "unknown command spoils valid ones",
			h:      http.Header{"X-Session-Set-User": {"alice"}, "X-Session-Bogus": {"1"}},
			reason: "unknown_command",
		},
		{name: "invalid set key", h: http.Header{"X-Session-Set-A.b": {"1"}}, reason: "invalid_key"},
		{name: "set key too long", h: http.Header{"X-Session-Set-" + strings.Repeat("k", 65): {"1"}}, reason: "invalid_key"},
		{name: "set key of 64", h: http.Header{"X-Session-Set-" + strings.Repeat("k", 64): {"1"}}, want: &want{set: map[string]string{strings.Repeat("k", 64): "1"}}},
		{name: "invalid delete key", h: http.Header{"X-Session-Delete": {"a b"}}, reason: "invalid_key"},
		{
			name:     "writable set",
			h:        http.Header{"X-Session-Set-User": {"alice"}},
			writable: []string{"User", "cart"},
			want:     &want{set: map[string]string{"user": "alice"}},
		},
		{
			name:     "not writable set",
			h:        http.Header{"X-Session-Set-Role": {"admin"}},
			writable: []string{"user"},
			reason:   "not_writable",
		},
		{
			name:     "writable delete",
			h:        http.Header{"X-Session-Delete": {"USER"}},
			writable: []string{"user"},
			want:     &want{delete: []string{"user"}},
		},
		{
			name:     "not writable delete",
			h:        http.Header{"X-Session-Delete": {"user, role"}},
			writable: []string{"user"},
			reason:   "not_writable",
		},
		{
			// The app was sent X-Session-Cart-Items for cart_items.
			name:     "writable set in the other spelling takes the configured one",
			h:        http.Header{"X-Session-Set-Cart-Items": {"1"}},
			writable: []string{"cart_items", "user"},
			want:     &want{set: map[string]string{"cart_items": "1"}},
		},
		{
			name:     "writable delete in the other spelling takes the configured one",
			h:        http.Header{"X-Session-Delete": {"Cart-Items, user_id"}},
			writable: []string{"cart_items", "user-id"},
			want:     &want{delete: []string{"cart_items", "user-id"}},
		},
		{
			name:     "both spellings of a writable key set at once",
			h:        http.Header{"X-Session-Set-Cart-Items": {"1"}, "X-Session-Set-Cart_Items": {"2"}},
			writable: []string{"cart_items"},
			reason:   "conflict",
		},
		{
			name:     "writable keys of another spelling are no wildcard",
			h:        http.Header{"X-Session-Set-Cart-Item": {"1"}},
			writable: []string{"cart_items"},
			reason:   "not_writable",
		},
		// Reserved for what the plugin forwards about a session.
		{name: "set a meta- key", h: http.Header{"X-Session-Set-Meta-Created": {"1"}}, reason: "reserved_key"},
		{name: "set a flash_ key", h: http.Header{"X-Session-Set-Flash_Notice": {"hi"}}, reason: "reserved_key"},
		{name: "delete a meta_ key", h: http.Header{"X-Session-Delete": {"cart, META_created"}}, reason: "reserved_key"},
		{
			name:     "reserved before writable",
			h:        http.Header{"X-Session-Set-Meta-X": {"1"}},
			writable: []string{"user"},
			reason:   "reserved_key",
		},
		{
			name: "keys that only look reserved",
			h:    http.Header{"X-Session-Set-Meta": {"1"}, "X-Session-Set-Flash": {"2"}, "X-Session-Set-Metadata": {"3"}},
			want: &want{set: map[string]string{"meta": "1", "flash": "2", "metadata": "3"}},
		},
		// '.' is read as '-' in requests only: in a response a dotted name
		// is no command, and passes as any other header would.
		{name: "dotted names are no commands", h: http.Header{"X.Session.Set.User": {"alice"}, "X-Session.Destroy": {"true"}}},
		{
			name: "a dotted name beside a command",
			h:    http.Header{"X.Session-Set-Role": {"admin"}, "X-Session-Set-User": {"alice"}},
			want: &want{set: map[string]string{"user": "alice"}},
		},
		{name: "value with CR", h: http.Header{"X-Session-Set-User": {"a\rb"}}, reason: "invalid_value"},
		{name: "value with LF", h: http.Header{"X-Session-Set-User": {"a\nSet-Cookie: x=1"}}, reason: "invalid_value"},
		{name: "value with NUL", h: http.Header{"X-Session-Set-User": {"a\x00b"}}, reason: "invalid_value"},
		{name: "value with DEL", h: http.Header{"X-Session-Set-User": {"a\x7fb"}}, reason: "invalid_value"},
		{
			name:   "value at the size limit",
			h:      http.Header{"X-Session-Set-User": {strings.Repeat("v", 8)}},
			limits: &Limits{ValueSize: 8},
			want:   &want{set: map[string]string{"user": strings.Repeat("v", 8)}},
		},
		{
			name:   "value over the size limit",
			h:      http.Header{"X-Session-Set-User": {strings.Repeat("v", 9)}},
			limits: &Limits{ValueSize: 8},
			reason: "value_too_large",
		},
		{
			name:   "value size is in bytes",
			h:      http.Header{"X-Session-Set-User": {"éééé" + "v"}}, // 9 bytes, 5 runes
			limits: &Limits{ValueSize: 8},
			reason: "value_too_large",
		},
		{name: "set twice in one header", h: http.Header{"X-Session-Set-User": {"a", "b"}}, reason: "conflict"},
		{name: "set with no value", h: http.Header{"X-Session-Set-User": {}}, reason: "conflict"},
		{
			name:   "set twice under two spellings",
			h:      http.Header{"X-Session-Set-User": {"a"}, "x_session_set_USER": {"b"}},
			reason: "conflict",
		},
		{
			name:   "set and delete of the same key",
			h:      http.Header{"X-Session-Set-User": {"a"}, "X-Session-Delete": {"role, USER"}},
			reason: "conflict",
		},
		{
			name:   "twin keys in one batch",
			h:      http.Header{"X-Session-Set-Cart_items": {"1"}, "X-Session-Set-Cart-Items": {"2"}},
			reason: "conflict",
		},
		{
			name: "set one twin and delete the other",
			h:    http.Header{"X-Session-Set-Cart-Items": {"2"}, "X-Session-Delete": {"cart_items"}},
			want: &want{set: map[string]string{"cart-items": "2"}, delete: []string{"cart_items"}},
		},
		{
			// Found by review: strings.ToLower turns U+212A KELVIN SIGN into
			// 'k', so a header naming no key set the key "k".
			name:   "set key with Kelvin sign",
			h:      http.Header{"X-Session-Set-\u212a": {"1"}},
			reason: "invalid_key",
		},
		{
			name:   "delete key with Kelvin sign",
			h:      http.Header{"X-Session-Delete": {"\u212aey"}},
			reason: "invalid_key",
		},
		{
			// U+00A0 is not HTTP whitespace: the element is no key.
			name:   "delete key padded with no-break space",
			h:      http.Header{"X-Session-Delete": {"\u00a0user"}},
			reason: "invalid_key",
		},
		{
			// A command announced as a trailer cannot be applied (the
			// session is committed before the body) and must not reach the
			// client either.
			name:   "command as trailer",
			h:      http.Header{"Trailer:X-Session-Set-User": {"alice"}},
			reason: "unknown_command",
		},
		{
			name:   "command as trailer spoils valid ones",
			h:      http.Header{"X-Session-Set-User": {"alice"}, "Trailer:x_session_renew": {"true"}},
			reason: "unknown_command",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := DefaultLimits()
			if tt.limits != nil {
				lim = *tt.limits
			}
			p := NewProtocol(DefaultHeaderPrefix, tt.writable, lim)
			h := tt.h.Clone()
			if h == nil {
				h = http.Header{}
			}
			h["Content-Type"] = []string{"text/html"}
			h["X-Sessionx"] = []string{"keep"}
			h["Trailer:X-Other"] = []string{"keep"}
			others := http.Header{}
			for name, v := range h {
				if !p.isCommand(strings.TrimPrefix(name, http.TrailerPrefix)) {
					others[name] = slices.Clone(v)
				}
			}

			patch, err := p.TakeCommands(h)

			assertNoCommands(t, p, h)
			if !reflect.DeepEqual(h, others) {
				t.Errorf("non-namespace headers changed:\n got %v\nwant %v", h, others)
			}
			if tt.reason != "" {
				var re *RuleError
				if !errors.As(err, &re) {
					t.Fatalf("TakeCommands() = %+v, %v; want a *RuleError %q", patch, err, tt.reason)
				}
				if re.Reason != tt.reason {
					t.Errorf("Reason = %q, want %q (detail %q)", re.Reason, tt.reason, re.Detail)
				}
				if re.Detail == "" {
					t.Error("empty Detail")
				}
				if patch != nil {
					t.Errorf("patch = %+v alongside an error, want nil", patch)
				}
				return
			}
			if err != nil {
				t.Fatalf("TakeCommands() error = %v", err)
			}
			if tt.want == nil {
				if patch != nil {
					t.Fatalf("patch = %+v, want nil", patch)
				}
				return
			}
			if patch == nil {
				t.Fatal("patch = nil")
			}
			if !maps.Equal(patch.Set, tt.want.set) {
				t.Errorf("Set = %v, want %v", patch.Set, tt.want.set)
			}
			del := slices.Clone(patch.Delete)
			slices.Sort(del)
			if !slices.Equal(del, tt.want.delete) {
				t.Errorf("Delete = %v, want %v", del, tt.want.delete)
			}
			if patch.Renew != tt.want.renew || patch.Destroy != tt.want.destroy || patch.NoTouch != tt.want.noTouch {
				t.Errorf("Renew, Destroy, NoTouch = %v, %v, %v; want %v, %v, %v", patch.Renew, patch.Destroy, patch.NoTouch,
					tt.want.renew, tt.want.destroy, tt.want.noTouch)
			}
			for k, v := range patch.Set {
				if !ValidKey(k) || k != strings.ToLower(k) || !httpguts.ValidHeaderFieldValue(v) {
					t.Errorf("bad set %q=%q", k, v)
				}
			}
		})
	}
}

// The namespace is the protocol's, so a custom prefix moves the commands.
// HasCommands sees what TakeCommands would take, in any spelling, and
// leaves the header as it was.
func TestHasCommands(t *testing.T) {
	p := NewProtocol("X-Session-", nil, DefaultLimits())
	tests := []struct {
		name string
		h    http.Header
		want bool
	}{
		{"none", http.Header{"Content-Type": {"text/html"}}, false},
		{"a name that only starts alike", http.Header{"X-Sessionx": {"1"}}, false},
		{"set", http.Header{"X-Session-Set-User": {"alice"}}, true},
		{"lowercase, as a map filled by hand", http.Header{"x-session-destroy": {"true"}}, true},
		{"underscore spelling", http.Header{"X_Session_Renew": {"true"}}, true},
		{"an unknown command, which TakeCommands refuses", http.Header{"X-Session-Bogus": {"1"}}, true},
		{"announced as a trailer only", http.Header{"Trailer:X-Session-Set-User": {"alice"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.h.Clone()
			if got := p.HasCommands(tt.h); got != tt.want {
				t.Errorf("HasCommands = %v, want %v", got, tt.want)
			}
			if !maps.EqualFunc(before, tt.h, slices.Equal) {
				t.Errorf("HasCommands changed the header: %v", tt.h)
			}
		})
	}
}

func TestTakeCommandsCustomPrefix(t *testing.T) {
	p := NewProtocol("X-App-", nil, DefaultLimits())
	h := http.Header{"X-App-Set-User": {"alice"}, "X-Session-Set-Role": {"admin"}}
	patch, err := p.TakeCommands(h)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"user": "alice"}; patch == nil || !maps.Equal(patch.Set, want) {
		t.Fatalf("patch = %+v, want Set %v", patch, want)
	}
	if _, ok := h["X-App-Set-User"]; ok {
		t.Error("X-App-Set-User left in the map")
	}
	if got := h["X-Session-Set-Role"]; len(got) != 1 {
		t.Errorf("X-Session-Set-Role is outside the namespace but was removed")
	}
}

// Flags take their values in any case (Python writes True and False) with
// HTTP whitespace around them, and nothing else: Renew only "true", Touch
// only "false", Remember either.
func TestParseFlag(t *testing.T) {
	tests := []struct {
		values []string
		is     bool // the word, if it is "true" or "false" in any case
		word   bool // whether it is one
	}{
		{[]string{"true"}, true, true},
		{[]string{"True"}, true, true},
		{[]string{"TRUE"}, true, true},
		{[]string{"tRuE"}, true, true},
		{[]string{" true\t"}, true, true},
		{[]string{"false"}, false, true},
		{[]string{"False"}, false, true},
		{[]string{"FALSE"}, false, true},
		{[]string{"\tfalse "}, false, true},
		{[]string{"1"}, false, false},
		{[]string{"yes"}, false, false},
		{[]string{"on"}, false, false},
		{[]string{"0"}, false, false},
		{[]string{"no"}, false, false},
		{[]string{"off"}, false, false},
		{[]string{""}, false, false},
		{[]string{"true, true"}, false, false},
		{[]string{"true;"}, false, false},
		{[]string{"\"true\""}, false, false},
		{[]string{"t rue"}, false, false},
		{[]string{"\u00a0true"}, false, false}, // no-break space is no HTTP whitespace
		{[]string{"true\u3000"}, false, false}, // nor is the ideographic space
		{[]string{"tru\u0435"}, false, false},  // Cyrillic e
		{[]string{"\uff34rue"}, false, false},  // fullwidth T
		{[]string{"fals\u0435"}, false, false},
		{[]string{"true", "true"}, false, false},
		{[]string{"false", "false"}, false, false},
		{[]string{}, false, false},
		{nil, false, false},
	}
	flagsTaking := []struct {
		command string
		takes   []bool
		// set reports whether the flag was taken, and as which value.
		set func(*Patch) (bool, bool)
	}{
		{commandRenew, onlyTrue, func(p *Patch) (bool, bool) { return p.Renew, true }},
		{commandDestroy, onlyTrue, func(p *Patch) (bool, bool) { return p.Destroy, true }},
		{commandDestroyAll, onlyTrue, func(p *Patch) (bool, bool) { return p.DestroyAll, true }},
		{commandTouch, onlyFalse, func(p *Patch) (bool, bool) { return p.NoTouch, false }},
		{commandRemember, both, func(p *Patch) (bool, bool) { return p.Remember != RememberAsIs, p.Remember == RememberOn }},
	}
	for _, f := range flagsTaking {
		name := "X-Session-" + f.command
		for _, tt := range tests {
			var patch Patch
			err := flags[f.command].parse(&patch, name, tt.values)
			ok := tt.word && slices.Contains(f.takes, tt.is)
			taken, as := f.set(&patch)
			if taken != ok || (err == nil) != ok || ok && as != tt.is {
				t.Errorf("%s: %q = %+v, %v; want taken: %v", name, tt.values, patch, err, ok)
			}
			want := `"true" or "false"`
			if len(f.takes) == 1 {
				want = fmt.Sprintf("\"%t\"", f.takes[0])
			}
			if err != nil && (err.Reason != "invalid_value" || !strings.Contains(err.Detail, want)) {
				t.Errorf("%s: %q error %+v, want invalid_value naming %s", name, tt.values, err, want)
			}
			set := 0
			for _, b := range []bool{patch.Renew, patch.Destroy, patch.DestroyAll, patch.NoTouch, patch.Remember != RememberAsIs} {
				if b {
					set++
				}
			}
			if set > 1 || patch.Set != nil || patch.Delete != nil {
				t.Errorf("%s: %q set another field: %+v", name, tt.values, patch)
			}
		}
	}
	if len(flags) != len(flagsTaking) {
		t.Errorf("%d flags, %d tested", len(flags), len(flagsTaking))
	}
}

// Commands parsed from headers apply to a record as a whole or not at all,
// to the key the record holds whichever spelling of it the app answers with.
func TestTakeCommandsThenApply(t *testing.T) {
	p := NewProtocol(DefaultHeaderPrefix, nil, Limits{Keys: 2, ValueSize: 16, SessionSize: 64})
	rec := testTimeouts.NewRecord(t0)
	rec.Values["user"] = "alice"
	rec.Values["cart_items"] = "1"
	apply := func(h http.Header) error {
		t.Helper()
		patch, err := p.TakeCommands(h)
		if err != nil {
			t.Fatal(err)
		}
		return patch.ApplyTo(rec, p.Limits())
	}

	// The app read X-Session-Cart-Items and answers in that spelling.
	if err := apply(http.Header{"X-Session-Set-Cart-Items": {"2"}}); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"user": "alice", "cart_items": "2"}; !maps.Equal(rec.Values, want) {
		t.Fatalf("values = %v, want %v", rec.Values, want)
	}
	// Still all or nothing: a third key is over the limit of 2.
	before := rec.Clone()
	var re *RuleError
	if err := apply(http.Header{"X-Session-Set-Cart-Items": {"3"}, "X-Session-Set-Role": {"x"}}); !errors.As(err, &re) || re.Reason != "too_many_keys" {
		t.Fatalf("ApplyTo = %v, want too_many_keys", err)
	}
	if !maps.Equal(rec.Values, before.Values) {
		t.Fatalf("record changed: %v", rec.Values)
	}
	// Setting one spelling while deleting the other renames the key.
	if err := apply(http.Header{"X-Session-Set-Cart-Items": {"4"}, "X-Session-Delete": {"cart_items"}}); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"user": "alice", "cart-items": "4"}; !maps.Equal(rec.Values, want) {
		t.Fatalf("values = %v, want %v", rec.Values, want)
	}
	// And a delete in the old spelling finds the renamed key.
	if err := apply(http.Header{"X-Session-Delete": {"Cart_Items"}}); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"user": "alice"}; !maps.Equal(rec.Values, want) {
		t.Fatalf("values = %v, want %v", rec.Values, want)
	}
}
