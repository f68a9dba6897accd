package session

import (
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http/httpguts"
)

// DefaultHeaderPrefix is the namespace of the header protocol.
const DefaultHeaderPrefix = "X-Session-"

// Commands the upstream may send, after the prefix.
const (
	commandSet        = "set-"
	commandDelete     = "delete"
	commandRenew      = "renew"
	commandDestroy    = "destroy"
	commandDestroyAll = "destroy-all"
	commandTouch      = "touch"
	commandRemember   = "remember"
)

// A flag is a command that takes one word, "true" or "false" in any case.
// A flag takes only the values that ask for something: one that is false
// when left out takes only "true", and one that is true when left out only
// "false". An app that sends the other value has misread the protocol, and
// the refusal is logged. A flag whose absence is neither (Remember: the
// session stays as it is) takes both.
type flag struct {
	takes []bool             // the values the flag takes
	set   func(*Patch, bool) // records the value taken in the patch
	why   string             // why a value is refused, beyond what the flag takes
}

var (
	onlyTrue  = []bool{true}
	onlyFalse = []bool{false}
	both      = []bool{true, false}
)

// flags are the flag commands, by name after the prefix.
var flags = map[string]flag{
	commandRenew:      {takes: onlyTrue, set: func(p *Patch, _ bool) { p.Renew = true }},
	commandDestroy:    {takes: onlyTrue, set: func(p *Patch, _ bool) { p.Destroy = true }},
	commandDestroyAll: {takes: onlyTrue, set: func(p *Patch, _ bool) { p.DestroyAll = true }},
	commandTouch: {takes: onlyFalse, set: func(p *Patch, _ bool) { p.NoTouch = true },
		why: "; a response touches the session unless it says not to"},
	commandRemember: {takes: both, set: func(p *Patch, on bool) { p.Remember = rememberOf(on) }},
}

// Protocol is the header protocol spoken with the upstream application.
//
// Every request header whose name starts with the prefix, compared
// case-insensitively and with '_' and '.' read as '-', is in the namespace
// and removed before the session's own are added: CGI and many frameworks
// merge X_Session_User into X-Session-User, and PHP also turns the '.' of
// X.Session.User into '_', so a client must not be able to smuggle a
// namespace header in under any of these spellings.
//
// Response headers whose names start with the prefix, compared
// case-insensitively and with '_' read as '-' (but not '.'), are commands,
// applied and removed. Reading '.' there too would only turn an app's
// unrelated header into a refused command.
type Protocol struct {
	prefix    string // lowercase, '_' and '.' folded to '-': the request namespace
	cmdPrefix string // lowercase, '_' folded to '-': the commands' namespace
	canon     string // canonical form, for forwarded header names
	writable  map[string]bool
	// writableAs maps each writable key, '_' read as '-', to its spelling
	// in the config: the upstream may answer X-Session-Set-Cart-Items for
	// the key cart_items it was sent as X-Session-Cart-Items.
	writableAs map[string]string
	limits     Limits

	// names caches HeaderName by key, so that forwarding a session
	// allocates no header names; named counts its entries, which are
	// bounded since the upstream may invent keys without end.
	names sync.Map // string → string
	named atomic.Int32
}

// maxNames bounds the cache of header names.
const maxNames = 1024

// NewProtocol returns the protocol for a header prefix, the keys the
// upstream may write (all when empty) and the limits on a session. The
// prefix and keys must have been checked with ValidPrefix and ValidKey.
func NewProtocol(prefix string, writable []string, limits Limits) *Protocol {
	p := &Protocol{
		prefix:    foldRequestName(prefix),
		cmdPrefix: foldName(prefix),
		canon:     textproto.CanonicalMIMEHeaderKey(prefix),
		limits:    limits,
	}
	if len(writable) > 0 {
		p.writable = make(map[string]bool, len(writable))
		p.writableAs = make(map[string]string, len(writable))
		for _, k := range writable {
			k = strings.ToLower(k)
			p.writable[k] = true
			p.writableAs[foldKey(k)] = k
		}
	}
	return p
}

// SameNamespace reports whether o's request namespace is p's: their
// prefixes are one in every spelling.
func (p *Protocol) SameNamespace(o *Protocol) bool { return p.prefix == o.prefix }

// Namespace is the request namespace in the spelling every spelling of it
// folds to: a name for it that two protocols share when SameNamespace.
func (p *Protocol) Namespace() string { return p.prefix }

// Limits returns the limits the protocol enforces.
func (p *Protocol) Limits() Limits { return p.limits }

// ValidPrefix reports whether prefix can be a header namespace: a header
// name token that ends in '-', so that a namespace can never swallow an
// unrelated header such as X-Sessionize.
func ValidPrefix(prefix string) bool {
	return len(prefix) > 1 && strings.HasSuffix(prefix, "-") && httpguts.ValidHeaderFieldName(prefix)
}

// InNamespace reports whether a request header name belongs to the
// protocol, in any spelling an app may read as a namespace header.
func (p *Protocol) InNamespace(name string) bool {
	if len(name) < len(p.prefix) {
		return false
	}
	for i := 0; i < len(p.prefix); i++ {
		if foldRequestByte(name[i]) != p.prefix[i] {
			return false
		}
	}
	return true
}

// isCommand reports whether a response header name is in the commands'
// namespace.
func (p *Protocol) isCommand(name string) bool {
	if len(name) < len(p.cmdPrefix) {
		return false
	}
	for i := 0; i < len(p.cmdPrefix); i++ {
		if foldByte(name[i]) != p.cmdPrefix[i] {
			return false
		}
	}
	return true
}

// Scrub removes every header in the namespace from h, whatever its
// spelling, including trailers announced with http.TrailerPrefix. It reads
// names as request headers: '.' counts as '-' too.
func (p *Protocol) Scrub(h http.Header) {
	for name := range h {
		if p.InNamespace(strings.TrimPrefix(name, http.TrailerPrefix)) {
			delete(h, name)
		}
	}
}

// ScrubConnection removes the namespace's names from the Connection header
// of a request, keeping its other options. A proxy deletes every header the
// Connection header names (they are hop-by-hop), so a client that sent
// "Connection: X-Session-User" would otherwise have the proxy remove the
// session's own header before it reaches the upstream.
func (p *Protocol) ScrubConnection(h http.Header) {
	lines, ok := h["Connection"]
	if !ok || !slices.ContainsFunc(lines, p.namesNamespace) {
		return // the common case, "keep-alive": nothing to rewrite
	}
	var kept []string
	for _, line := range lines {
		var opts []string
		for opt := range strings.SplitSeq(line, ",") {
			if opt = strings.TrimSpace(opt); opt != "" && !p.InNamespace(opt) {
				opts = append(opts, opt)
			}
		}
		if len(opts) > 0 {
			kept = append(kept, strings.Join(opts, ", "))
		}
	}
	if len(kept) == 0 {
		delete(h, "Connection")
		return
	}
	h["Connection"] = kept
}

// namesNamespace reports whether a Connection header line names a header
// of the namespace.
func (p *Protocol) namesNamespace(line string) bool {
	for rest, more := line, true; more; {
		var opt string
		opt, rest, more = strings.Cut(rest, ",")
		if p.InNamespace(strings.TrimSpace(opt)) {
			return true
		}
	}
	return false
}

// Forward adds one request header per session key: key "user" becomes
// X-Session-User, and "cart_items" X-Session-Cart-Items. Call it after Scrub.
func (p *Protocol) Forward(h http.Header, values map[string]string) {
	// One array holds every header's value.
	all := make([]string, len(values))
	i := 0
	for k, v := range values {
		all[i] = v
		h[p.HeaderName(k)] = all[i : i+1 : i+1]
		i++
	}
}

// HeaderName is the request header that carries key. A '_' of the key is
// sent as '-': nginx, waitress and Caddy itself by default drop request
// headers whose names hold '_', and a CGI or PHP app reads both spellings
// as the same HTTP_X_SESSION_CART_ITEMS anyway.
func (p *Protocol) HeaderName(key string) string {
	if name, ok := p.names.Load(key); ok {
		return name.(string)
	}
	name := textproto.CanonicalMIMEHeaderKey(p.canon + foldKey(key))
	if p.named.Load() < maxNames {
		if _, loaded := p.names.LoadOrStore(key, name); !loaded {
			p.named.Add(1)
		}
	}
	return name
}

// HasCommands reports whether the response headers h hold a header in the
// commands' namespace, without taking it: a response the store will have
// to write for.
func (p *Protocol) HasCommands(h http.Header) bool {
	for name := range h {
		if p.isCommand(name) {
			return true
		}
	}
	return false
}

// TakeCommands removes every namespace header from the response headers h,
// and every namespace name from its Trailer header, and parses them as
// commands. It returns a nil patch when there were none.
// A *RuleError means the commands as a whole are refused: the caller applies
// none of them.
func (p *Protocol) TakeCommands(h http.Header) (*Patch, error) {
	var patch *Patch
	var bad *RuleError
	fail := func(e *RuleError) {
		if bad == nil {
			bad = e
		}
	}
	for name, values := range h {
		if !p.isCommand(name) {
			if trailer, ok := strings.CutPrefix(name, http.TrailerPrefix); ok && p.isCommand(trailer) {
				// A command announced as a trailer would arrive after the
				// session is committed: refuse the batch, and never send it.
				delete(h, name)
				fail(ruleError("unknown_command", "session command header %q is announced as a trailer", name))
			}
			continue
		}
		delete(h, name)
		if patch == nil {
			patch = &Patch{}
		}
		fail(p.parseCommand(patch, name, values))
	}
	if p.dropAnnouncedTrailers(h) {
		// A command announced in the Trailer header would arrive after
		// the session is committed, as above; and its name must not
		// reach the client either.
		fail(ruleError("unknown_command", "a session command header is announced as a trailer"))
	}
	if bad != nil {
		return nil, bad
	}
	if err := patch.settle(); err != nil {
		return nil, err
	}
	return patch, nil
}

// parseCommand adds one command header, in the namespace, to the patch.
func (p *Protocol) parseCommand(patch *Patch, name string, values []string) *RuleError {
	command := foldName(name[len(p.cmdPrefix):])
	switch {
	case strings.HasPrefix(command, commandSet):
		// The key keeps its own spelling: Set-Cart_Items sets cart_items.
		key := lowerKey(name[len(p.cmdPrefix)+len(commandSet):])
		return p.parseSet(patch, key, values)
	case command == commandDelete:
		return p.parseDelete(patch, values)
	case strings.HasPrefix(command, commandFlash):
		key := lowerKey(name[len(p.cmdPrefix)+len(commandFlash):])
		return p.parseFlash(patch, key, values)
	case command == commandRevoke:
		return parseRevoke(patch, name, values)
	}
	if f, ok := flags[command]; ok {
		return f.parse(patch, name, values)
	}
	return ruleError("unknown_command", "unknown session command header %q", name)
}

// settle checks the commands of a whole response against each other;
// DestroyAll implies Destroy.
func (patch *Patch) settle() *RuleError {
	if patch == nil {
		return nil
	}
	patch.Destroy = patch.Destroy || patch.DestroyAll
	if patch.Revoke != "" && patch.Destroy {
		return ruleError("conflict", "a session revoke comes with a logout: end the other session before this one, in a response of its own")
	}
	for _, k := range patch.Delete {
		if _, ok := patch.Set[k]; ok {
			return ruleError("conflict", "key %q is both set and deleted", k)
		}
	}
	if err := checkTwins(patch.Set); err != nil {
		return err
	}
	return checkTwins(patch.Flash)
}

// dropAnnouncedTrailers removes the namespace's names from the Trailer
// header of h, keeping the other names, and reports whether it removed any.
func (p *Protocol) dropAnnouncedTrailers(h http.Header) bool {
	lines, ok := h["Trailer"]
	if !ok {
		return false
	}
	dropped := false
	var kept []string
	for _, line := range lines {
		var names []string
		for name := range strings.SplitSeq(line, ",") {
			name = strings.TrimSpace(name)
			if p.isCommand(name) {
				dropped = true
			} else if name != "" {
				names = append(names, name)
			}
		}
		if len(names) > 0 {
			kept = append(kept, strings.Join(names, ", "))
		}
	}
	if !dropped {
		return false
	}
	if len(kept) == 0 {
		delete(h, "Trailer")
	} else {
		h["Trailer"] = kept
	}
	return true
}

func (p *Protocol) parseSet(patch *Patch, key string, values []string) *RuleError {
	key, err := p.checkKey(key)
	if err != nil {
		return err
	}
	return p.addValue(&patch.Set, "key", key, values)
}

// addValue adds the one value of a command that sets key (what names the
// kind: a key, a flash value) to *into, checked as every value is: one
// header line, a valid header value, within value_size.
func (p *Protocol) addValue(into *map[string]string, what, key string, values []string) *RuleError {
	if len(values) != 1 {
		return ruleError("conflict", "%s %q is set %d times", what, key, len(values))
	}
	if _, dup := (*into)[key]; dup {
		return ruleError("conflict", "%s %q is set more than once", what, key)
	}
	v := values[0]
	if !httpguts.ValidHeaderFieldValue(v) {
		return ruleError("invalid_value", "the value of %s %q is not a valid header value", what, key)
	}
	if p.limits.ValueSize > 0 && len(v) > p.limits.ValueSize {
		return ruleError("value_too_large", "the value of %s %q has %d bytes, over the limit of %d", what, key, len(v), p.limits.ValueSize)
	}
	if *into == nil {
		*into = make(map[string]string)
	}
	(*into)[key] = v
	return nil
}

func (p *Protocol) parseDelete(patch *Patch, values []string) *RuleError {
	for _, line := range values {
		for _, key := range strings.Split(line, ",") {
			key, err := p.checkKey(lowerKey(strings.Trim(key, " \t")))
			if err != nil {
				return err
			}
			patch.Delete = append(patch.Delete, key)
		}
	}
	return nil
}

// checkKey checks a lowercase key the upstream names, and returns it as
// the config spells it in writable, where '_' and '-' are one key.
func (p *Protocol) checkKey(key string) (string, *RuleError) {
	switch judgeKey(key) {
	case keyMalformed:
		return "", &RuleError{Reason: "invalid_key", Detail: CheckKey(key).Error()}
	case keyReserved:
		return "", &RuleError{Reason: "reserved_key", Detail: CheckKey(key).Error()}
	}
	if p.writable != nil && !p.writable[key] {
		configured, ok := p.writableAs[foldKey(key)]
		if !ok {
			return "", ruleError("not_writable", "key %q is not writable by the upstream", key)
		}
		key = configured
	}
	return key, nil
}

// parse reads the flag command name into the patch. It takes one of the
// flag's values, "true" or "false" in any case, since Python writes True,
// and nothing else: not "1" or "yes".
func (f flag) parse(patch *Patch, name string, values []string) *RuleError {
	if len(values) == 1 {
		v := strings.Trim(values[0], " \t")
		for _, b := range f.takes {
			if asciiEqualFold(v, strconv.FormatBool(b)) {
				f.set(patch, b)
				return nil
			}
		}
	}
	if len(f.takes) == 1 {
		return ruleError("invalid_value", "command header %q takes the single value \"%t\" (in any case)%s", name, f.takes[0], f.why)
	}
	return ruleError("invalid_value", "command header %q takes the single value \"true\" or \"false\" (in any case)%s", name, f.why)
}

// checkTwins refuses two keys set at once that are the same once '_' is
// read as '-'.
func checkTwins(set map[string]string) *RuleError {
	for k := range set {
		if other, ok := foldedTwin(set, k, nil); ok {
			return ruleError("conflict", "keys %q and %q would share one header: '_' and '-' are the same to CGI and PHP", k, other)
		}
	}
	return nil
}

// lowerKey lowercases the ASCII letters of a key and nothing else:
// strings.ToLower would turn U+212A KELVIN SIGN into 'k' and let a name that
// is no key pass as one.
func lowerKey(k string) string {
	b := []byte(k)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func foldByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	if c == '_' {
		return '-'
	}
	return c
}

// foldRequestByte is foldByte for request header names, where PHP reads
// '.' as '_' as well.
func foldRequestByte(c byte) byte {
	if c == '.' {
		return '-'
	}
	return foldByte(c)
}

func foldRequestName(s string) string {
	b := []byte(s)
	for i := range b {
		b[i] = foldRequestByte(b[i])
	}
	return string(b)
}

func foldName(s string) string {
	b := []byte(s)
	for i := range b {
		b[i] = foldByte(b[i])
	}
	return string(b)
}
