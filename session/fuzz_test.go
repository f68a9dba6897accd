package session

import (
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// fuzzHeader builds a header map from lines "name: value", one per '\n',
// keeping the names exactly as written (no canonicalization), so the fuzzer
// can try every spelling. A line without ": " is a name with no value.
func fuzzHeader(raw string) http.Header {
	h := http.Header{}
	for line := range strings.SplitSeq(raw, "\n") {
		name, value, ok := strings.Cut(line, ": ")
		if ok {
			h[name] = append(h[name], value)
		} else if _, seen := h[name]; !seen {
			h[name] = []string{}
		}
	}
	return h
}

// spelledIn reports whether name, or the name a trailer is announced
// under, starts with prefix once lowercased and once each byte of fold is
// read as '-': an oracle written apart from the protocol's own loop.
func spelledIn(prefix, fold, name string) bool {
	name = strings.TrimPrefix(name, http.TrailerPrefix)
	norm := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case 'A' <= r && r <= 'Z':
				return r + 'a' - 'A'
			case strings.ContainsRune(fold, r):
				return '-'
			}
			return r // anything else non-ASCII stays so, and never matches
		}, s)
	}
	return len(name) >= len(prefix) && norm(name[:len(prefix)]) == norm(prefix)
}

// A request header an app may read as a namespace header: PHP reads '.'
// as '_', CGI '_' as '-'.
func inRequestNamespace(p *Protocol, name string) bool {
	return spelledIn(p.canon, "_.", name)
}

// A response header the protocol takes as a command.
func inCommandNamespace(p *Protocol, name string) bool {
	return spelledIn(p.canon, "_", name)
}

func cloneOutside(h http.Header, in func(string) bool) http.Header {
	out := http.Header{}
	for name, v := range h {
		if !in(name) {
			out[name] = slices.Clone(v)
		}
	}
	return out
}

// trailerNames returns the names a Trailer header announces outside p's
// commands' namespace, and whether it announces one inside.
func trailerNames(p *Protocol, lines []string) (names []string, inNamespace bool) {
	for _, line := range lines {
		for name := range strings.SplitSeq(line, ",") {
			name = strings.TrimSpace(name)
			if inCommandNamespace(p, name) {
				inNamespace = true
			} else if name != "" {
				names = append(names, name)
			}
		}
	}
	return names, inNamespace
}

func headersEqual(a, b http.Header) bool {
	return maps.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}

func FuzzTakeCommands(f *testing.F) {
	f.Add("X-Session-Set-User: alice\nContent-Type: text/html", false)
	f.Add("X-Session-Set-Cart_Items: 1,2\nX-Session-Delete: a, b\nX-Session-Delete: c", false)
	f.Add("x_session_renew: TRUE\nX-SESSION-DESTROY: true\nX-Session-Set-user: bob", true)
	f.Add("X-Session-Set-User: a\nx-session-set-USER: b", false)
	f.Add("X-Session-Set-A_b: 1\nX-Session-Set-A-B: 2", false)
	f.Add("X-Session-Set-Role: admin\nX-Session-Delete: role", true)
	f.Add("X-Session-Set-User: a\rb\nX-Session-Bogus: 1", false)
	f.Add("Trailer:X-Session-Set-User: alice\nTrailer:X-Other: 1", false)
	f.Add("Trailer: X-Other, x_session_set_user\nTrailer: X-Session-Destroy\nX-Session-Set-Cart: 1", false)
	f.Add("X-Session-Set-\u212a: 1\nX-Session-Delete: \u00a0user", false)
	f.Add("X-Session-Set-User: "+strings.Repeat("v", 65), false)
	f.Add("X-Sessionx: 1\nX-Sessio: 2\nX-Session-", false)
	f.Add("X.Session.Set.User: alice\nX-Session-Set-Cart-Items: 3\nx_session_delete: A-B", false)
	f.Add("X-Session-Set-Meta-Created: 1\nX-Session-Delete: flash_notice", false)
	f.Add("X-Session-Set-Cart-Items: 1\nX-Session-Destroy-All: True", true)
	f.Add("X-Session-Flash-Notice: Saved\nX-Session-Set-Notice: a key\nX_Session_Flash_Cart_Items: 3", true)
	f.Add("X-Session-Flash-A_b: 1\nX-Session-Flash-A-B: 2\nX-Session-Flash-Meta-X: 3\nX-Session-Flash-: 4", false)
	f.Fuzz(func(t *testing.T, raw string, restrict bool) {
		var writable []string
		if restrict {
			writable = []string{"user", "cart_items", "B"}
		}
		lim := Limits{Keys: 4, ValueSize: 64, SessionSize: 256}
		p := NewProtocol(DefaultHeaderPrefix, writable, lim)
		h := fuzzHeader(raw)
		isCommand := func(name string) bool { return inCommandNamespace(p, name) }
		others := cloneOutside(h, isCommand)
		wantTrailers, announced := trailerNames(p, h["Trailer"])

		patch, err := p.TakeCommands(h)

		for name := range h {
			if isCommand(name) {
				t.Fatalf("command header %q left in the map (err %v)", name, err)
			}
		}
		// The Trailer header loses the namespace's names, and only them.
		gotTrailers, left := trailerNames(p, h["Trailer"])
		if left || !slices.Equal(gotTrailers, wantTrailers) {
			t.Fatalf("Trailer %q became %q", others["Trailer"], h["Trailer"])
		}
		if announced && err == nil {
			t.Fatalf("a command announced as a trailer was accepted: %q", others["Trailer"])
		}
		delete(h, "Trailer")
		delete(others, "Trailer")
		if !headersEqual(h, others) {
			t.Fatalf("non-namespace headers changed:\n got %q\nwant %q", h, others)
		}
		if err != nil {
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("error %v (%T) is not a *RuleError", err, err)
			}
			if re.Reason == "" {
				t.Fatalf("RuleError %q has no Reason", re.Detail)
			}
			if patch != nil {
				t.Fatalf("patch %+v returned with error %v", patch, err)
			}
			return
		}
		if patch == nil {
			return
		}
		folded := map[string]string{}
		for k, v := range patch.Set {
			if !ValidKey(k) || k != strings.ToLower(k) {
				t.Fatalf("set key %q is not a valid lowercase key", k)
			}
			if CheckKey(k) != nil {
				t.Fatalf("set key %q passes ValidKey but not CheckKey", k)
			}
			if restrict && !slices.Contains([]string{"user", "cart_items", "b"}, k) {
				t.Fatalf("set key %q is not writable", k)
			}
			if !httpguts.ValidHeaderFieldValue(v) {
				t.Fatalf("value %q of %q is not a valid header value", v, k)
			}
			if len(v) > lim.ValueSize {
				t.Fatalf("value of %q has %d bytes, over %d", k, len(v), lim.ValueSize)
			}
			if other, dup := folded[foldKey(k)]; dup {
				t.Fatalf("twin keys %q and %q set in one patch", k, other)
			}
			folded[foldKey(k)] = k
		}
		flashFolded := map[string]string{}
		for k, v := range patch.Flash {
			if !ValidKey(k) || k != strings.ToLower(k) {
				t.Fatalf("flash key %q is not a valid lowercase key", k)
			}
			if !httpguts.ValidHeaderFieldValue(v) || len(v) > lim.ValueSize {
				t.Fatalf("flash value %q of %q is not a valid header value within value_size", v, k)
			}
			if other, dup := flashFolded[foldKey(k)]; dup {
				t.Fatalf("twin flash keys %q and %q set in one patch", k, other)
			}
			flashFolded[foldKey(k)] = k
		}
		for _, k := range patch.Delete {
			if !ValidKey(k) || k != strings.ToLower(k) {
				t.Fatalf("delete key %q is not a valid lowercase key", k)
			}
			if _, both := patch.Set[k]; both {
				t.Fatalf("key %q both set and deleted", k)
			}
		}
		// A patch never panics when applied, and is all or nothing.
		rec := testTimeouts.NewRecord(t0)
		rec.Values["user"] = "alice"
		rec.Values["a_b"] = "1"
		before := rec.Clone()
		if err := patch.ApplyTo(rec, lim); err != nil {
			if !maps.Equal(rec.Values, before.Values) || rec.Flash != nil {
				t.Fatalf("ApplyTo failed (%v) but changed the record: %v, %v", err, rec.Values, rec.Flash)
			}
			return
		}
		if len(rec.Values)+len(rec.Flash) > lim.Keys || rec.Size()+rec.FlashSize() > lim.SessionSize {
			t.Fatalf("ApplyTo passed a record over the limits: %v, flash %v", rec.Values, rec.Flash)
		}
		if !maps.Equal(rec.Flash, patch.Flash) && len(patch.Flash) > 0 {
			t.Fatalf("flash values %v stored as %v", patch.Flash, rec.Flash)
		}
		// The patch now names the keys the record holds: every set is
		// there with its value, every other delete is gone, and no two
		// keys are one to a CGI app.
		for k, v := range patch.Set {
			if got, ok := rec.Values[k]; !ok || got != v {
				t.Fatalf("set %q=%q, but the record holds %q, %v: %v", k, v, got, ok, rec.Values)
			}
		}
		for _, k := range patch.Delete {
			if _, set := patch.Set[k]; !set {
				if _, ok := rec.Values[k]; ok {
					t.Fatalf("deleted %q is still in the record %v", k, rec.Values)
				}
			}
		}
		for k := range rec.Values {
			if other, ok := foldedTwin(rec.Values, k, nil); ok {
				t.Fatalf("the record holds twins %q and %q", k, other)
			}
		}
		for k, v := range before.Values {
			if _, gone := rec.Values[k]; !gone {
				continue
			}
			if _, set := patch.Set[k]; !set && rec.Values[k] != v {
				t.Fatalf("key %q changed to %q, though the patch does not set it", k, rec.Values[k])
			}
		}
	})
}

func FuzzScrub(f *testing.F) {
	f.Add("X-Session-User: forged\nContent-Type: text/html", "X-Session-")
	f.Add("x_session_user: forged\nX_Session-Role: admin\nX-Sessionx: keep", "X-Session-")
	f.Add("Trailer:X-Session-User: forged\nTrailer:X-Other: keep", "X-Session-")
	f.Add("X-App-User: forged\nX-Session-User: keep", "X-App-")
	f.Add("X-Session-\nX-Sessio: keep\n: empty", "x_session-")
	f.Add("X.Session.User: forged\nx.session_user: forged\nX_Session.User: forged\nX.Sessionx: keep", "X-Session-")
	f.Add("Trailer:X.Session.Role: forged\nX-App.User: forged\nX.App-User: forged", "X.App-")
	f.Fuzz(func(t *testing.T, raw, prefix string) {
		if !ValidPrefix(prefix) {
			prefix = DefaultHeaderPrefix
		}
		p := NewProtocol(prefix, nil, DefaultLimits())
		h := fuzzHeader(raw)
		inNamespace := func(name string) bool { return inRequestNamespace(p, name) }
		others := cloneOutside(h, inNamespace)
		p.Scrub(h)
		for name := range h {
			if inNamespace(name) {
				t.Fatalf("Scrub left %q", name)
			}
			if p.InNamespace(strings.TrimPrefix(name, http.TrailerPrefix)) {
				t.Fatalf("Scrub left %q, which InNamespace claims", name)
			}
		}
		if !headersEqual(h, others) {
			t.Fatalf("Scrub changed other headers:\n got %q\nwant %q", h, others)
		}
		// What Forward adds, Scrub removes.
		p.Forward(h, map[string]string{"user": "x", "cart_items": "y"})
		p.Scrub(h)
		if !headersEqual(h, others) {
			t.Fatalf("Scrub left forwarded headers: %q", h)
		}
	})
}

// cookieParts is the list of cookies in Cookie header lines as Strip reads
// them: ';'-separated, trimmed, empty parts skipped.
func cookieParts(lines []string) (names, parts []string) {
	for _, line := range lines {
		for part := range strings.SplitSeq(line, ";") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			name, _, _ := strings.Cut(part, "=")
			names = append(names, strings.TrimSpace(name))
			parts = append(parts, part)
		}
	}
	return names, parts
}

func FuzzCandidates(f *testing.F) {
	id1, id2 := strings.Repeat("A", IDLength), strings.Repeat("b", IDLength)
	f.Add("sid=" + id1)
	f.Add("theme=dark; sid=" + id1 + "; lang=en\nsid=" + id2)
	f.Add("sid=" + id1 + "; sid=" + id1 + "; sid=" + id2 + "; sid=" + id1[1:] + "c; sid=" + id2[1:] + "d")
	f.Add(`sid="` + id1 + `"; xsid=1; sidx=2`)
	f.Add("sid=" + id1 + ";\n; ;sid=\xff\nsid")
	f.Add("sid =" + id1 + "; a=1")
	f.Fuzz(func(t *testing.T, raw string) {
		ck := &Cookie{Name: DefaultCookieName}
		lines := strings.Split(raw, "\n")
		r := &http.Request{Header: http.Header{"Cookie": slices.Clone(lines)}}

		ids := ck.Candidates(r)
		if len(ids) > MaxCandidates {
			t.Fatalf("%d candidates, want at most %d", len(ids), MaxCandidates)
		}
		for i, id := range ids {
			if !ValidID(id) {
				t.Fatalf("candidate %q is not a valid ID", id)
			}
			if slices.Contains(ids[:i], id) {
				t.Fatalf("candidate %q is repeated", id)
			}
			if !strings.Contains(raw, id) {
				t.Fatalf("candidate %q is not in the request", id)
			}
		}

		h := r.Header
		names, parts := cookieParts(lines)
		var wantParts []string
		for i, part := range parts {
			if names[i] != ck.Name {
				wantParts = append(wantParts, part)
			}
		}
		ck.Strip(h)
		gotLines, present := h["Cookie"]
		if present && len(gotLines) == 0 {
			t.Fatal("Strip left an empty Cookie header")
		}
		for _, line := range gotLines {
			// Lines without the session cookie pass as sent, blank ones
			// too; Strip must not make new ones.
			if strings.TrimSpace(line) == "" && !slices.Contains(lines, line) {
				t.Fatalf("Strip made a blank Cookie line: %q from %q", gotLines, lines)
			}
		}
		gotNames, gotParts := cookieParts(gotLines)
		if slices.Contains(gotNames, ck.Name) {
			t.Fatalf("Strip left a %q cookie: %q", ck.Name, gotLines)
		}
		if !slices.Equal(gotParts, wantParts) {
			t.Fatalf("Strip changed other cookies:\n got %q\nwant %q", gotParts, wantParts)
		}
		if !present && len(wantParts) > 0 {
			t.Fatalf("Strip removed the header, dropping %q", wantParts)
		}
		// What an upstream in Go would read.
		if c, err := r.Cookie(ck.Name); err == nil {
			t.Fatalf("after Strip, net/http still reads %s=%q from %q", c.Name, c.Value, gotLines)
		}
		// Nothing a candidate came from survives.
		if len(ck.Candidates(r)) != 0 {
			t.Fatalf("candidates remain after Strip: %q", gotLines)
		}
	})
}
