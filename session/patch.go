package session

import (
	"fmt"
	"slices"
	"strings"
)

// Limits bound what a session may hold.
type Limits struct {
	// Keys is the most keys one session may have.
	Keys int
	// ValueSize is the most bytes one value may have.
	ValueSize int
	// SessionSize is the most bytes all keys and values of a session may
	// have together.
	SessionSize int
}

// Default limits.
const (
	DefaultMaxKeys     = 64
	DefaultValueSize   = 4 << 10
	DefaultSessionSize = 16 << 10
)

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{Keys: DefaultMaxKeys, ValueSize: DefaultValueSize, SessionSize: DefaultSessionSize}
}

// A RuleError is a change that breaks a rule of the protocol or a limit.
// A patch that would cause one changes nothing.
type RuleError struct {
	// Reason is a short, stable label for metrics: "invalid_key",
	// "not_writable", "invalid_value", "too_many_keys", "value_too_large",
	// "session_too_large", "unknown_command", "conflict".
	Reason string
	// Detail says what was wrong, in words, for the log. It names keys but
	// never carries a value.
	Detail string
}

func (e *RuleError) Error() string { return e.Detail }

func ruleError(reason, format string, args ...any) *RuleError {
	return &RuleError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Patch is one response's change to a session: the upstream's commands,
// parsed and validated. Stores apply it per key inside one transaction, so
// concurrent requests that change different keys keep each other's writes.
type Patch struct {
	// Set maps keys to their new values.
	Set map[string]string
	// Flash maps flash keys to the flash values to store with the session
	// (Record.Flash), each replacing the one of its key.
	Flash map[string]string
	// Delete lists keys to remove.
	Delete []string
	// Destroy ends the current session first. Keys set in the same patch
	// start a new session, under a new ID.
	Destroy bool
	// DestroyAll ends every session of the current session's user (the
	// value of its identity key), this one included: "log out everywhere".
	// It implies Destroy.
	DestroyAll bool
	// Renew gives the session a new ID, keeping its data.
	Renew bool
	// NoTouch leaves the session's idle deadline and LastSeen as they were:
	// the response asked so with X-Session-Touch: false. Like Renew, it is
	// the caller's to carry out (as store.Update.NoTouch); ApplyTo and the
	// stores do not read it.
	NoTouch bool
	// Remember makes the session persistent (RememberOn) or returns it to
	// a browser-session cookie and the normal timeouts (RememberOff): the
	// response said X-Session-Remember. store.Decide carries it out on a
	// session that gets a new ID or starts; ApplyTo does not read it.
	Remember Remember
	// Revoke is the short hash (Hash.Short, 16 lowercase hex digits) of
	// another session of the same user and realm to end: the response said
	// X-Session-Revoke. Like Renew, it is the caller's to carry out, and
	// to refuse when the session is not the user's; ApplyTo and the stores
	// do not read it.
	Revoke string
}

// Changes reports whether the patch changes any value, flash values
// included.
func (p *Patch) Changes() bool {
	return p != nil && (len(p.Set) > 0 || len(p.Delete) > 0 || len(p.Flash) > 0)
}

// Moves reports whether the patch, applied to rec, changes what gives a
// session a new ID: the value of one of keys (lowercase, the renew_on
// keys, matched in either spelling of '_' and '-'), set to another value,
// added or removed, or rec's persistence (Remember). Renew is the
// caller's, and not read.
func (p *Patch) Moves(rec *Record, keys []string) bool {
	if p == nil {
		return false
	}
	if p.Remember.Switches(rec) {
		return true
	}
	for _, k := range keys {
		_, old, had := LookupKey(rec.Values, k)
		if v, ok := p.Sets(k); ok && (!had || v != old) {
			return true
		}
		if had && p.Deletes(k) {
			return true
		}
	}
	return false
}

// Sets returns the value the patch sets for key in either spelling of '_'
// and '-', since ApplyTo may apply it to key: for deciding, before the
// store applies it, whether the patch changes a renew_on key. key is
// lowercase.
func (p *Patch) Sets(key string) (string, bool) {
	_, v, ok := LookupKey(p.Set, key)
	return v, ok
}

// Deletes reports whether the patch deletes key in either spelling of '_'
// and '-'. key is lowercase.
func (p *Patch) Deletes(key string) bool {
	for _, k := range p.Delete {
		if sameKey(k, key) {
			return true
		}
	}
	return false
}

// ApplyTo applies the patch's sets and deletes to rec and checks the result
// against the limits. On a *RuleError rec and the patch are unchanged.
//
// A key is one key whether spelled with '_' or '-': a CGI app reads both as
// one variable, and Forward sends both with '-'. So a set or delete of a key
// that rec holds only under the other spelling acts on the key rec holds,
// and an app can answer X-Session-Set-Cart-Items for the key cart_items.
// This is decided here, against the record the store holds inside its
// transaction, so that a concurrent rename is seen. A set whose twin the
// same patch deletes is a rename. The patch is rewritten to the spellings
// found, so that a store that writes only the keys a patch names (Redis)
// writes those.
func (p *Patch) ApplyTo(rec *Record, lim Limits) error {
	if !p.Changes() {
		return nil
	}
	dels, err := p.heldDeletes(rec.Values)
	if err != nil {
		return err
	}
	deleted := make(map[string]bool, len(dels))
	for _, k := range dels {
		deleted[k] = true
	}
	sets, err := p.heldSets(rec.Values, deleted)
	if err != nil {
		return err
	}
	if err := checkTwins(sets); err != nil {
		return err // a patch made by hand, not by TakeCommands
	}
	keys, size := 0, 0
	for k, v := range rec.Values {
		if deleted[k] {
			continue
		}
		if _, overwritten := sets[k]; overwritten {
			continue
		}
		keys++
		size += len(k) + len(v)
	}
	for k, v := range sets {
		keys++
		size += len(k) + len(v)
	}
	// Flash values count with the keys (Record.FlashSize).
	flash := p.flashAfter(rec)
	keys += len(flash)
	size += pairsSize(flash)
	andFlash, ofFlash := "", ""
	if len(flash) > 0 {
		andFlash, ofFlash = " and flash values", " of keys and flash values"
	}
	// A patch that does not grow the session is always allowed, so that an
	// app can shrink a session that a lowered limit left oversized.
	if lim.Keys > 0 && keys > lim.Keys && keys > len(rec.Values)+len(rec.Flash) {
		return ruleError("too_many_keys", "the session would have %d keys%s, over the limit of %d", keys, andFlash, lim.Keys)
	}
	if lim.SessionSize > 0 && size > lim.SessionSize && size > rec.Size()+rec.FlashSize() {
		return ruleError("session_too_large", "the session would hold %d bytes%s, over the limit of %d", size, ofFlash, lim.SessionSize)
	}
	rec.Flash = flash
	for _, k := range dels {
		delete(rec.Values, k)
	}
	if rec.Values == nil {
		rec.Values = make(map[string]string, len(sets))
	}
	for k, v := range sets {
		rec.Values[k] = v
	}
	p.Set, p.Delete = sets, dels
	return nil
}

// heldDeletes returns the patch's deletes with each key spelled as values
// holds it (see heldAs): the patch's own slice when none differs, the
// common case.
func (p *Patch) heldDeletes(values map[string]string) ([]string, *RuleError) {
	dels := p.Delete
	copied := false
	for i, k := range p.Delete {
		held, err := heldAs(values, k, nil)
		if err != nil {
			return nil, err
		}
		if held != k {
			if !copied {
				dels, copied = slices.Clone(p.Delete), true
			}
			dels[i] = held
		}
	}
	return dels, nil
}

// heldSets returns the patch's sets with each key spelled as values holds
// it, unless that one is deleted (see heldAs): the patch's own map when
// none differs, the common case.
func (p *Patch) heldSets(values map[string]string, deleted map[string]bool) (map[string]string, *RuleError) {
	respell := false
	for k := range p.Set {
		held, err := heldAs(values, k, deleted)
		if err != nil {
			return nil, err
		}
		respell = respell || held != k
	}
	if !respell {
		return p.Set, nil
	}
	sets := make(map[string]string, len(p.Set))
	for k, v := range p.Set {
		held, _ := heldAs(values, k, deleted) // no error: checked above
		if _, dup := sets[held]; dup {
			return nil, ruleError("conflict", "two keys set would both change the key %q: '_' and '-' are the same to CGI and PHP", held)
		}
		sets[held] = v
	}
	return sets, nil
}

// heldAs returns the key of values that a command naming key acts on: key
// itself if values holds it; else the one key of values that is the same
// once '_' is read as '-', unless deleted says it is being deleted; else
// key, a new one.
func heldAs(values map[string]string, key string, deleted map[string]bool) (string, *RuleError) {
	if _, ok := values[key]; ok || !strings.ContainsAny(key, "-_") {
		return key, nil
	}
	held := key
	for k := range values {
		if k != key && !deleted[k] && sameKey(k, key) {
			if held != key {
				// Twins are refused on the way in; a record holding two
				// was not written by this version.
				return "", ruleError("conflict", "key %q could mean %q or %q: '_' and '-' are the same to CGI and PHP", key, held, k)
			}
			held = k
		}
	}
	return held, nil
}

// foldedTwin finds a key of values, other than key and not being deleted,
// that is the same as key once '_' is read as '-': forwarded as headers, the
// two would reach a CGI or PHP application as one variable.
func foldedTwin(values map[string]string, key string, deleted map[string]bool) (string, bool) {
	if !strings.ContainsAny(key, "-_") {
		return "", false
	}
	for k := range values {
		if k != key && !deleted[k] && sameKey(k, key) {
			return k, true
		}
	}
	return "", false
}

func foldKey(k string) string { return strings.ReplaceAll(k, "_", "-") }

// Twins returns two keys of values that are one key, differing only in
// '_' and '-', if there are any: no response can set both (they would
// share one header), so a record holding them did not come from one.
func Twins(values map[string]string) (a, b string, found bool) {
	seen := make(map[string]string, len(values))
	for k := range values {
		f := foldKey(k)
		if other, ok := seen[f]; ok {
			return min(k, other), max(k, other), true
		}
		seen[f] = k
	}
	return "", "", false
}
