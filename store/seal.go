package store

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// Values sealed at rest (seal_values) in Decide. Stores keep strings and
// never see a key: Decide opens the sealed record a store read (with the
// key the request's ID gives, Update.Seal), decides on the plain record
// as it always has, and hands the store a sealed record to write, so the
// store executes an Outcome as before. Result.Record is the plain record,
// for the handler.
//
// A record written in place keeps the ciphertext of every field whose
// value did not change, so that Set names only the keys that changed (a
// store writes those alone) and a touch writes the times alone. A record
// moved to a new hash is sealed afresh under the new ID's key, in the same
// outcome, and the forward record left behind carries that key sealed
// under the old one (Record.SuccessorKey): a request that loaded the
// session before the rotation reaches the successor through it and opens
// it with the key it finds there (Outcome.Onward).
//
// Without Seal.Index (seal_values off), a sealed record read is opened
// and written back plain: turning sealing off unseals sessions as they
// are written, as turning it on seals them.

// Sealing is how an Update opens and seals the values of sealed sessions.
type Sealing struct {
	// Key is the key of the session under Update.Hash, derived from the
	// ID the request presented (session.DeriveSealKey). It opens a sealed
	// record there, and the key that a forward record there carries.
	Key *session.SealKey
	// NewKey is the key of the ID under Update.NewHash, for the record
	// written there and the forward record that leads to it.
	NewKey *session.SealKey
	// Index, when set, makes every record the update writes sealed, and
	// indexed under the keyed hash of its identity value
	// (Record.IdentityTag). nil writes records plain.
	Index *session.IndexKey
}

// ErrNoSealKey is returned by an Update that meets a sealed record
// without the key to open it: the request's ID gives it, so this is the
// caller's mistake, or a record sealed under an ID another session has.
var ErrNoSealKey = errors.New("the session is sealed and the update has no key to open it")

// sealing reports whether u or the record read involve sealed values, so
// that Decide takes the sealed path; the plain path costs nothing more.
func sealing(u Update, stored *session.Record) bool {
	return u.Seal != nil || stored != nil && stored.Sealed
}

// decideSealed is Decide for an update that seals, or a record that is
// sealed.
func decideSealed(u Update, at session.Hash, stored *session.Record, hop int) Outcome {
	plain := stored
	if u.HasHash && stored != nil && stored.Sealed && !stored.Forwarded() {
		key := u.sealKey()
		if key == nil {
			return Outcome{At: at}.fail(ErrNoSealKey)
		}
		plain = stored.Clone()
		if err := key.Open(at, plain); err != nil {
			return Outcome{At: at}.fail(err)
		}
	}
	o := decide(u, at, plain, hop)
	if o.Next != nil {
		return onward(u, o, stored)
	}
	if o.Write != nil {
		if err := sealWrite(u, &o, stored, plain); err != nil {
			return o.fail(err)
		}
	}
	if o.Forward != nil && u.sealKey() != nil && u.Seal.NewKey != nil {
		o.Forward.SetSuccessorKey(u.Seal.Key.SealSuccessor(o.At, u.Seal.NewKey))
	}
	return o
}

func (u Update) sealKey() *session.SealKey {
	if u.Seal == nil {
		return nil
	}
	return u.Seal.Key
}

// onward opens the key that the forward record fwd, under o.At, carries
// for its successor, for the next hop. A forward record that carries none
// (written with sealing off, or by a request that held no key) leads to
// a session that was written plain: the next hop has no key, and a write
// there stays plain until a request of the successor's own ID seals it.
func onward(u Update, o Outcome, fwd *session.Record) Outcome {
	if u.Seal == nil {
		return o
	}
	next := *u.Seal
	next.Key = nil
	if fwd.SuccessorKey() != "" && u.Seal.Key != nil {
		key, err := u.Seal.Key.OpenSuccessor(o.At, fwd)
		if err != nil {
			o.Next = nil
			return o.fail(err)
		}
		next.Key = key
	}
	o.nextSeal = &next
	return o
}

// Onward is the update to run on the record under *o.Next: u, with the
// key of that session when the forward record carried one.
func (o Outcome) Onward(u Update) Update {
	if o.nextSeal != nil {
		u.Seal = o.nextSeal
	}
	return u
}

// sealWrite makes o.Write, a plain record, the record to store: sealed
// under the key of where it goes when u.Seal.Index is set, or plain. A
// record written in place with no key, a plain successor reached through
// a forward record that carried none, stays plain. plain is stored opened
// (stored itself if it was not sealed).
func sealWrite(u Update, o *Outcome, stored, plain *session.Record) error {
	w := o.Write.Clone()
	w.Sealed = false
	w.SetIdentityTag("")
	key := u.sealKey()
	if !o.InPlace && u.Seal != nil {
		key = u.Seal.NewKey
	}
	switch {
	case u.Seal == nil || u.Seal.Index == nil:
	case key == nil && !o.InPlace:
		return ErrNoSealKey
	case key != nil:
		var reuse *session.Record // the stored ciphertexts still good
		if o.InPlace && stored != nil && stored.Sealed {
			reuse = stored
		}
		sealRecord(key, o.WriteAt, w, reuse, plain)
		if o.Identity != "" {
			value, _ := o.Write.IdentityValue(o.Identity)
			w.SetIdentityTag(u.Seal.Index.Tag(o.Identity, value))
		}
	}
	if o.InPlace && stored != nil && (stored.Sealed || w.Sealed) {
		// Every value changes its form, or those sealed afresh do.
		o.Set, o.Del = changedFields(stored, w)
	}
	o.Write = w
	return nil
}

// sealRecord seals the values, flash values, User-Agent and client
// network of w, a plain record to store under hash, in place. A field whose value is what it was
// in plain, the record read opened, keeps its ciphertext from reuse, the
// record read as stored, when reuse is not nil.
func sealRecord(key *session.SealKey, hash session.Hash, w, reuse, plain *session.Record) {
	for k, v := range w.Values {
		if reuse != nil && plain.Values[k] == v && hasKey(plain.Values, k) {
			w.Values[k] = reuse.Values[k]
			continue
		}
		w.Values[k] = key.SealValue(hash, k, v)
	}
	for k, v := range w.Flash {
		if reuse != nil && plain.Flash[k] == v && hasKey(plain.Flash, k) {
			w.Flash[k] = reuse.Flash[k]
			continue
		}
		w.Flash[k] = key.SealFlash(hash, k, v)
	}
	if reuse != nil && w.UserAgent == plain.UserAgent {
		w.UserAgent = reuse.UserAgent
	} else {
		w.UserAgent = key.SealUserAgent(hash, w.UserAgent)
	}
	if reuse != nil && w.ClientNet == plain.ClientNet {
		w.ClientNet = reuse.ClientNet
	} else {
		w.ClientNet = key.SealClientNet(hash, w.ClientNet)
	}
	w.Sealed = true
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

// changedFields are the keys whose stored form w changes, in order, and
// those it no longer holds.
func changedFields(stored, w *session.Record) (set, del []string) {
	for _, k := range slices.Sorted(maps.Keys(w.Values)) {
		if v, ok := stored.Values[k]; !ok || v != w.Values[k] {
			set = append(set, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(stored.Values)) {
		if !hasKey(w.Values, k) {
			del = append(del, k)
		}
	}
	return set, del
}

// checkSealedImport is CheckImport for a sealed session: its sealed
// fields must have the form of sealed bytes, and it must be a session a
// handler could have written, by its keys, times and the sizes of what
// its fields hold (a sealed field is session.SealOverhead bytes longer
// than its value), which CheckImport judges on a copy that holds, in
// place of each value, as many bytes. What the values are only the
// session's ID tells.
func checkSealedImport(e Entry, now time.Time, lim session.Limits) error {
	rec := e.Record
	shadow := rec.Clone()
	shadow.Sealed = false
	shadow.SetIdentityTag("")
	var err error
	stand := func(what, sealed string) string {
		if len(sealed) < session.SealOverhead || sealed[0] != session.SealVersion {
			if err == nil {
				err = fmt.Errorf("%s is not sealed as a sealed session's are", what)
			}
			return ""
		}
		return strings.Repeat("x", len(sealed)-session.SealOverhead)
	}
	for k, v := range shadow.Values {
		shadow.Values[k] = stand(fmt.Sprintf("the value of key %q", k), v)
	}
	for k, v := range shadow.Flash {
		shadow.Flash[k] = stand(fmt.Sprintf("the flash value %q", k), v)
	}
	if shadow.UserAgent != "" {
		shadow.UserAgent = stand("its user agent", shadow.UserAgent)
	}
	if shadow.ClientNet != "" {
		stand("its client network", shadow.ClientNet)
		shadow.ClientNet = "" // its form is sealed with it
	}
	switch {
	case err != nil:
		return err
	case e.Identity != "" && rec.IdentityTag() == "":
		return fmt.Errorf("it is sealed and indexed under identity key %q, but has no identity tag", e.Identity)
	}
	return CheckImport(Entry{Hash: e.Hash, Record: shadow, Identity: e.Identity}, now, lim)
}
