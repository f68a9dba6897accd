package session

import (
	"maps"
	"net/http"
	"net/textproto"
)

// Flash values: X-Session-Flash-<Key>: <value> on a response stores a value
// with the session (Record.Flash), which reaches the app once, as the
// request header X-Session-Flash-<Key>, on a later request. Their keys are
// checked as session keys are (1 to 64 of a-z 0-9 - _, none beginning with
// meta- or flash-), lowercased, but are a namespace of their own: writable
// does not name them, and a flash value "notice" and a key "notice" are two
// things. The limits of keys apply to them (see Record.FlashSize).

// commandFlash is the flash command, after the prefix: flash-<key>.
const commandFlash = "flash-"

// flashInfix is what comes between the prefix and the key in the request
// header that hands a flash value to the app.
const flashInfix = "Flash-"

// parseFlash adds one X-Session-Flash-<Key> command to the patch. key is
// lowercase, as the name spells it.
func (p *Protocol) parseFlash(patch *Patch, key string, values []string) *RuleError {
	switch judgeKey(key) {
	case keyMalformed:
		return &RuleError{Reason: "invalid_key", Detail: "flash value: " + CheckKey(key).Error()}
	case keyReserved:
		return &RuleError{Reason: "reserved_key", Detail: "flash value: " + CheckKey(key).Error()}
	}
	return p.addValue(&patch.Flash, "flash value", key, values)
}

// FlashHeaderName is the request header that hands the flash value of key
// to the app: X-Session-Flash-<Key>, with a '_' of the key sent as '-', as
// HeaderName sends keys.
func (p *Protocol) FlashHeaderName(key string) string {
	return textproto.CanonicalMIMEHeaderKey(p.canon + flashInfix + foldKey(key))
}

// ForwardFlash adds one request header per flash value. Call it after
// Scrub, which removes every X-Session-Flash-* a client sent.
func (p *Protocol) ForwardFlash(h http.Header, flash map[string]string) {
	for k, v := range flash {
		h[p.FlashHeaderName(k)] = []string{v}
	}
}

// Starts reports whether the patch holds anything a session it starts
// keeps: keys set, or flash values. Only such a patch starts a session on
// a request that has none, or beside a Destroy.
func (p *Patch) Starts() bool {
	return p != nil && (len(p.Set) > 0 || len(p.Flash) > 0)
}

// Starting is the part of the patch that a session it starts keeps: its
// sets and flash values, and whether it is remembered, without its
// deletes and other flags.
func (p *Patch) Starting() *Patch {
	return &Patch{Set: p.Set, Flash: p.Flash, Remember: p.Remember}
}

// flashAfter returns the flash values rec holds once the patch's are
// stored: a new value replaces the one of the same key, and the one of its
// twin spelling ('_' and '-' are one header to the app). It returns rec's
// own map, unchanged, when the patch sets none.
func (p *Patch) flashAfter(rec *Record) map[string]string {
	if len(p.Flash) == 0 {
		return rec.Flash
	}
	out := maps.Clone(rec.Flash)
	if out == nil {
		out = make(map[string]string, len(p.Flash))
	}
	for k, v := range p.Flash {
		if twin, ok := foldedTwin(out, k, nil); ok {
			delete(out, twin)
		}
		out[k] = v
	}
	return out
}

// TakeFlash removes the flash values from rec and returns them, nil when
// it held none: the values a request hands to the app, and no other
// request will.
func TakeFlash(rec *Record) map[string]string {
	taken := rec.Flash
	rec.Flash = nil
	if len(taken) == 0 {
		return nil
	}
	return taken
}

// RestoreFlash puts flash values that a request took back into rec, and
// reports whether it put any: those of keys rec holds no flash value for,
// in either spelling, since one set since the take is newer than the one
// taken. It checks no limit: the values were admitted when they were set.
func RestoreFlash(rec *Record, taken map[string]string) bool {
	restored := false
	for k, v := range taken {
		if _, ok := rec.Flash[k]; ok {
			continue
		}
		if _, ok := foldedTwin(rec.Flash, k, nil); ok {
			continue
		}
		if rec.Flash == nil {
			rec.Flash = make(map[string]string, len(taken))
		}
		rec.Flash[k] = v
		restored = true
	}
	return restored
}
