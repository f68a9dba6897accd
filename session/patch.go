package session

import (
	"fmt"
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
}

// Changes reports whether the patch changes any value.
func (p *Patch) Changes() bool {
	return p != nil && (len(p.Set) > 0 || len(p.Delete) > 0)
}

// ApplyTo applies the patch's sets and deletes to rec and checks the result
// against the limits. On a *RuleError rec is unchanged.
func (p *Patch) ApplyTo(rec *Record, lim Limits) error {
	if !p.Changes() {
		return nil
	}
	deleted := make(map[string]bool, len(p.Delete))
	for _, k := range p.Delete {
		deleted[k] = true
	}
	keys, size := 0, 0
	for k, v := range rec.Values {
		if deleted[k] {
			continue
		}
		if _, overwritten := p.Set[k]; overwritten {
			continue
		}
		keys++
		size += len(k) + len(v)
	}
	for k, v := range p.Set {
		keys++
		size += len(k) + len(v)
		if other, ok := foldedTwin(rec.Values, k, deleted); ok {
			return ruleError("conflict", "key %q would share its header with existing key %q: '_' and '-' are the same to CGI and PHP", k, other)
		}
	}
	// A patch that does not grow the session is always allowed, so that an
	// app can shrink a session that a lowered limit left oversized.
	if lim.Keys > 0 && keys > lim.Keys && keys > len(rec.Values) {
		return ruleError("too_many_keys", "the session would have %d keys, over the limit of %d", keys, lim.Keys)
	}
	if lim.SessionSize > 0 && size > lim.SessionSize && size > rec.Size() {
		return ruleError("session_too_large", "the session would hold %d bytes, over the limit of %d", size, lim.SessionSize)
	}
	for _, k := range p.Delete {
		delete(rec.Values, k)
	}
	if rec.Values == nil {
		rec.Values = make(map[string]string, len(p.Set))
	}
	for k, v := range p.Set {
		rec.Values[k] = v
	}
	return nil
}

// foldedTwin finds a key of values, other than key and not being deleted,
// that is the same as key once '_' is read as '-': forwarded as headers, the
// two would reach a CGI or PHP application as one variable.
func foldedTwin(values map[string]string, key string, deleted map[string]bool) (string, bool) {
	if !strings.ContainsAny(key, "-_") {
		return "", false
	}
	folded := foldKey(key)
	for k := range values {
		if k != key && !deleted[k] && foldKey(k) == folded {
			return k, true
		}
	}
	return "", false
}

func foldKey(k string) string { return strings.ReplaceAll(k, "_", "-") }
