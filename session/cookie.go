package session

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// SecureMode says when the session cookie carries the Secure attribute.
type SecureMode int

const (
	// SecureAuto sets Secure when the request came over TLS.
	SecureAuto SecureMode = iota
	// SecureAlways always sets Secure (use it behind a TLS terminator).
	SecureAlways
	// SecureNever never sets Secure (plain-HTTP development only).
	SecureNever
)

// Priority is the cookie's Priority attribute, which Chromium-based browsers
// use to choose which cookies of a site to evict first when it has too many
// (low before medium before high). net/http's Cookie cannot write it.
type Priority int

const (
	// PriorityNone writes no Priority attribute: browsers treat the
	// cookie as medium.
	PriorityNone Priority = iota
	// PriorityLow writes Priority=Low: evicted first.
	PriorityLow
	// PriorityMedium writes Priority=Medium, the browsers' default.
	PriorityMedium
	// PriorityHigh writes Priority=High: evicted last.
	PriorityHigh
)

// attribute is the Priority attribute as a Set-Cookie header writes it,
// with its leading separator; "" for PriorityNone.
func (p Priority) attribute() string {
	switch p {
	case PriorityLow:
		return "; Priority=Low"
	case PriorityMedium:
		return "; Priority=Medium"
	case PriorityHigh:
		return "; Priority=High"
	}
	return ""
}

// DefaultCookieName is the session cookie's name unless configured.
const DefaultCookieName = "sid"

// MaxCandidates bounds how many session cookies of one request are tried:
// the first three sent and the last three. A browser sends several cookies
// of one name when a cookie was also set for a parent domain or a longer
// path, longer paths first, and for one path the older first. A sibling
// subdomain can toss one for the parent domain for every path of the
// request (cookie tossing), all sent before the real, host-only one; after
// it come only those of its own path: on a host such as app.example.com,
// one for example.com and a Partitioned one, if newer. Trying only the
// first three let a sibling keep the real session from being read with
// three; trying the last three too finds it however many are tossed,
// without letting a client make a request cost more than six lookups.
const MaxCandidates = maxFirst + maxLast

const maxFirst, maxLast = 3, 3

// Cookie describes the session cookie.
type Cookie struct {
	Name     string
	Domain   string
	Path     string
	Secure   SecureMode
	SameSite http.SameSite
	// Partitioned sets the Partitioned attribute (CHIPS): the browser
	// keeps the cookie apart for each top-level site that embeds this
	// one. It needs Secure, so Validate requires SecureAlways.
	Partitioned bool
	Priority    Priority
}

// cookieOWS is the white space around a cookie in the Cookie header.
const cookieOWS = " \t"

// Candidates returns the well-formed session IDs the request presents in
// its cookies, in the order sent, without duplicates, at most a few.
// Malformed values (wrong length or alphabet, oversized, non-UTF-8) are
// skipped without a lookup.
func (c *Cookie) Candidates(r *http.Request) []string {
	return c.AppendCandidates(nil, r)
}

// AppendCandidates appends the Candidates of the request to ids, so that a
// caller can give it room on the stack (MaxCandidates).
func (c *Cookie) AppendCandidates(ids []string, r *http.Request) []string {
	first := len(ids)
	var last lastCandidates
	for _, line := range r.Header["Cookie"] {
		// strings.Cut rather than strings.SplitSeq: the range-over-func
		// body escaped to the heap, on every request.
		for rest, more := line, true; more; {
			var part string
			part, rest, more = strings.Cut(rest, ";")
			// Only the Cookie header's own white space (RFC 6265: SP and
			// HTAB) is not part of a name. A browser checks the __Host-
			// and __Secure- prefixes on the name byte for byte, so a
			// sibling subdomain may set "\u2000__Host-sid" with a Domain:
			// trimmed as Unicode space, it would be read as the session
			// cookie that no other host can set.
			name, value, ok := strings.Cut(strings.Trim(part, cookieOWS), "=")
			if !ok || name != c.Name {
				continue
			}
			value = strings.Trim(value, `"`)
			if !ValidID(value) || slices.Contains(ids[first:], value) || last.contains(value) {
				continue
			}
			if len(ids)-first < maxFirst {
				ids = append(ids, value)
			} else {
				last.add(value)
			}
		}
	}
	return last.appendTo(ids)
}

// lastCandidates keeps the last maxLast candidates past the first ones, in
// a ring.
type lastCandidates struct {
	ring [maxLast]string
	n    int // candidates added, also those the ring has let go
}

func (l *lastCandidates) add(id string) {
	l.ring[l.n%maxLast] = id
	l.n++
}

func (l *lastCandidates) contains(id string) bool {
	return slices.Contains(l.ring[:min(l.n, maxLast)], id)
}

// appendTo appends the kept candidates to ids in the order sent.
func (l *lastCandidates) appendTo(ids []string) []string {
	start, count := 0, l.n
	if l.n > maxLast {
		start, count = l.n%maxLast, maxLast
	}
	for i := range count {
		ids = append(ids, l.ring[(start+i)%maxLast])
	}
	return ids
}

// Strip removes the session cookie from the request's Cookie headers,
// keeping every other cookie as it was sent, so the upstream never sees
// the session ID. It leaves the header's old slice as it was.
func (c *Cookie) Strip(h http.Header) {
	lines := h["Cookie"]
	i := slices.IndexFunc(lines, func(line string) bool { return strings.Contains(line, c.Name) })
	if i < 0 {
		return // nothing to strip: the common case of a visitor without one
	}
	kept := make([]string, i, len(lines))
	copy(kept, lines[:i])
	for _, line := range lines[i:] {
		if strings.Contains(line, c.Name) {
			line = c.stripLine(line)
		}
		if line != "" {
			kept = append(kept, line)
		}
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = kept
}

// stripLine returns line without the session cookie, its cookies trimmed
// and joined with "; ", or "" if none is left.
func (c *Cookie) stripLine(line string) string {
	var b strings.Builder
	for rest, more := line, true; more; {
		var part string
		part, rest, more = strings.Cut(rest, ";")
		part = strings.TrimSpace(part)
		name, _, _ := strings.Cut(part, "=")
		// Parsers trim the name (net/http reads "sid =x" as sid), and an
		// empty part is no cookie: kept, it could leave a blank Cookie line
		// behind.
		if part == "" || strings.TrimSpace(name) == c.Name {
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(line))
		} else {
			b.WriteString("; ")
		}
		b.WriteString(part)
	}
	return b.String()
}

// Issue returns the cookie that hands id to the browser. It has no Max-Age
// or Expires: it lives as long as the browser session, and the server
// decides when the session ends (a remembered session's cookie is
// IssuePersistentHeader's). It lacks the Priority attribute, which
// http.Cookie cannot hold: IssueHeader writes the whole cookie.
func (c *Cookie) Issue(id string, tls bool) *http.Cookie {
	return &http.Cookie{
		Name:        c.Name,
		Value:       id,
		Domain:      c.Domain,
		Path:        c.Path,
		Secure:      c.secure(tls),
		HttpOnly:    true,
		SameSite:    c.SameSite,
		Partitioned: c.Partitioned,
	}
}

// Expire returns the cookie that removes the session cookie from the
// browser. It carries the attributes of the cookie it removes: a browser
// removes a Partitioned cookie only with a Partitioned one (it matches
// them by partition as well as by name, domain and path).
func (c *Cookie) Expire(tls bool) *http.Cookie {
	ck := c.Issue("", tls)
	ck.MaxAge = -1
	ck.Expires = time.Unix(0, 0)
	return ck
}

// IssueHeader is the Set-Cookie field value of Issue, with the Priority
// attribute.
func (c *Cookie) IssueHeader(id string, tls bool) string {
	return c.header(c.Issue(id, tls))
}

// IssuePersistentHeader is IssueHeader for a remembered session: the
// cookie has a Max-Age of maxAge in whole seconds (at least one), the time
// left to the session's absolute deadline, so that the browser keeps it
// across restarts and drops it when the session ends. A partial second
// is dropped: the cookie never outlives the session.
func (c *Cookie) IssuePersistentHeader(id string, tls bool, maxAge time.Duration) string {
	ck := c.Issue(id, tls)
	ck.MaxAge = max(int(maxAge/time.Second), 1)
	return c.header(ck)
}

// ExpireHeader is the Set-Cookie field value of Expire, with the Priority
// attribute.
func (c *Cookie) ExpireHeader(tls bool) string {
	return c.header(c.Expire(tls))
}

// header writes ck as a Set-Cookie field value, adding what http.Cookie
// cannot write.
func (c *Cookie) header(ck *http.Cookie) string {
	return ck.String() + c.Priority.attribute()
}

func (c *Cookie) secure(tls bool) bool {
	switch c.Secure {
	case SecureAlways:
		return true
	case SecureNever:
		return false
	}
	return tls
}

// Validate checks the cookie's attributes against each other and against
// the rules browsers enforce for the __Host- and __Secure- name prefixes.
func (c *Cookie) Validate() error {
	if !validCookieName(c.Name) {
		return fmt.Errorf("cookie name %q is not a valid cookie name", c.Name)
	}
	if c.SameSite == http.SameSiteNoneMode && c.Secure != SecureAlways {
		return fmt.Errorf("same_site none needs secure always: browsers drop SameSite=None cookies without Secure")
	}
	if c.Partitioned && c.Secure != SecureAlways {
		return fmt.Errorf("cookie partitioned needs secure always: browsers drop Partitioned cookies without Secure")
	}
	if c.Domain != "" && !validCookieDomain(c.Domain) {
		return fmt.Errorf("cookie domain %q is not a domain name a browser takes: give the host name alone (example.com), without a port or wildcard", c.Domain)
	}
	if !validCookiePath(c.Path) {
		return fmt.Errorf("cookie path %q: give a path that starts with / and holds no ';' or control characters", c.Path)
	}
	// Browsers apply the prefixes in any case (RFC 6265bis, 4.1.3).
	if hasPrefixFold(c.Name, "__Host-") {
		if c.Secure != SecureAlways || c.Path != "/" || c.Domain != "" {
			return fmt.Errorf("cookie %q: the __Host- prefix needs secure always, path / and no domain", c.Name)
		}
	}
	if hasPrefixFold(c.Name, "__Secure-") && c.Secure != SecureAlways {
		return fmt.Errorf("cookie %q: the __Secure- prefix needs secure always", c.Name)
	}
	return nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// validCookieDomain reports whether net/http writes d as the cookie's
// Domain, which it otherwise drops (the cookie becomes host-only): a host
// name of letters, digits, '-' and '_' in dot-separated labels, a leading
// dot allowed, or an IPv4 address.
func validCookieDomain(d string) bool {
	d = strings.TrimPrefix(d, ".")
	if ip := net.ParseIP(d); ip != nil {
		return ip.To4() != nil && !strings.Contains(d, ":")
	}
	if d == "" || len(d) > 253 {
		return false
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
				return false
			}
		}
	}
	return true
}

// validCookiePath reports whether a browser takes p as the cookie's Path
// as written: "" (the default, /) or a path from the root, with nothing
// net/http would cut out of it.
func validCookiePath(p string) bool {
	if p == "" {
		return true
	}
	if p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if b := p[i]; b < 0x20 || b == 0x7f || b == ';' {
			return false
		}
	}
	return true
}

func validCookieName(name string) bool {
	return (&http.Cookie{Name: name, Value: "x"}).Valid() == nil
}
