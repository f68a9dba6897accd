package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// codecVersion is the first byte of every encoded record. A new format
// gets a new version so that old files stay readable: encode writes the
// latest, decode reads them all.
const (
	codecVersion1 = 1 // before realms and forward records
	codecVersion  = 2
)

// headerSize is the version byte and the four times, the same in every
// version.
const headerSize = 1 + 4*8

// The record encoding, version 2:
//
//	version            1 byte
//	Created            int64 unix nanoseconds, big-endian
//	LastSeen           int64 unix nanoseconds, big-endian
//	IdleDeadline       int64 unix nanoseconds, big-endian
//	AbsoluteDeadline   int64 unix nanoseconds, big-endian
//	successor          uvarint length (0, or 32 in a forward record), bytes
//	realm              uvarint length, bytes
//	identity key name  uvarint length, bytes
//	number of keys     uvarint
//	per key, in order  uvarint length, key bytes, uvarint length, value bytes
//
// Version 1 is the same without successor and realm: it decodes as a
// session of no realm.
//
// The successor comes first so that scans tell a forward record from a
// session by one byte (isForward). The identity key name is the
// Update.Identity the record was indexed under, so that removing the record
// removes exactly its index entry even after the configuration names
// another identity key.

// encode returns the encoding of rec, indexed under identity. Keys are
// written in order, so equal records encode to equal bytes.
func encode(rec *session.Record, identity string) []byte {
	keys := make([]string, 0, len(rec.Values))
	size := headerSize + binary.MaxVarintLen64*(4+2*len(rec.Values)) + len(session.Hash{}) + len(rec.Realm) + len(identity)
	for k, v := range rec.Values {
		keys = append(keys, k)
		size += len(k) + len(v)
	}
	slices.Sort(keys)
	b := make([]byte, 0, size)
	b = append(b, codecVersion)
	for _, t := range []time.Time{rec.Created, rec.LastSeen, rec.IdleDeadline, rec.AbsoluteDeadline} {
		b = binary.BigEndian.AppendUint64(b, uint64(unixNano(t)))
	}
	if rec.Successor != nil {
		b = binary.AppendUvarint(b, uint64(len(rec.Successor)))
		b = append(b, rec.Successor[:]...)
	} else {
		b = binary.AppendUvarint(b, 0)
	}
	b = appendString(b, rec.Realm)
	b = appendString(b, identity)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, rec.Values[k])
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Bounds of the times an int64 of nanoseconds can hold.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// unixNano is t.UnixNano, clamped to what an int64 can hold: UnixNano is
// undefined outside the years 1678 to 2262, and a record must not wrap
// around to a deadline long past because of an absurd timeout.
func unixNano(t time.Time) int64 {
	if t.Before(minTime) {
		return math.MinInt64
	}
	if t.After(maxTime) {
		return math.MaxInt64
	}
	return t.UnixNano()
}

// errCorrupt is wrapped by every decoding error.
var errCorrupt = errors.New("corrupt session record")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errCorrupt, fmt.Sprintf(format, args...))
}

// decode parses an encoded record, of any version, and the identity key
// name it was indexed under. It copies everything out of b, which may be
// bbolt memory that is only valid inside its transaction. On corrupt input
// it returns an error: it never panics, and it never allocates more than
// the input can fill.
func decode(b []byte) (*session.Record, string, error) {
	if len(b) < headerSize {
		return nil, "", corrupt("%d bytes, shorter than the %d-byte header", len(b), headerSize)
	}
	if b[0] != codecVersion && b[0] != codecVersion1 {
		return nil, "", corrupt("unknown version %d; was the file written by a newer caddy-session?", b[0])
	}
	rec := &session.Record{
		Created:          timeAt(b[1:]),
		LastSeen:         timeAt(b[9:]),
		IdleDeadline:     timeAt(b[17:]),
		AbsoluteDeadline: timeAt(b[25:]),
	}
	// Every string of the record is cut from one copy of its bytes: one
	// allocation instead of one per key and value.
	d := decoder{b: b[headerSize:], s: string(b[headerSize:])}
	if b[0] == codecVersion {
		rec.Successor = d.successor()
		rec.Realm = d.string("realm")
	}
	identity := d.string("identity key name")
	count := d.uvarint("number of keys")
	// Every key takes at least two bytes (two empty lengths), so a count
	// above half the remaining bytes is a lie; refusing it bounds the map.
	if d.err == nil && count > uint64(len(d.b)/2) {
		d.fail("%d keys cannot fit in %d bytes", count, len(d.b))
	}
	if d.err != nil {
		return nil, "", d.err
	}
	rec.Values = make(map[string]string, count)
	for i := uint64(0); i < count; i++ {
		k := d.string("key")
		v := d.string("value")
		if d.err != nil {
			return nil, "", d.err
		}
		if _, dup := rec.Values[k]; dup {
			return nil, "", corrupt("key %q appears twice", k)
		}
		rec.Values[k] = v
	}
	if len(d.b) != 0 {
		return nil, "", corrupt("%d bytes after the last value", len(d.b))
	}
	return rec, identity, nil
}

// timeAt reads a big-endian int64 of unix nanoseconds.
func timeAt(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b))).UTC()
}

// expiresAtOf reads only the deadlines of an encoded record, for scans that
// skip expired records without decoding their values.
func expiresAtOf(b []byte) (time.Time, error) {
	if len(b) < headerSize || b[0] != codecVersion && b[0] != codecVersion1 {
		return time.Time{}, corrupt("bad header")
	}
	r := session.Record{IdleDeadline: timeAt(b[17:]), AbsoluteDeadline: timeAt(b[25:])}
	return r.ExpiresAt(), nil
}

// isForward reports whether the encoded record b is a forward record,
// without decoding it: a version 2 record with a successor.
func isForward(b []byte) bool {
	return len(b) > headerSize && b[0] == codecVersion && b[headerSize] != 0
}

// decoder reads length-prefixed fields, remembering the first error so
// that callers check once.
type decoder struct {
	b   []byte // what is left to read
	s   string // the bytes decoder started with; b is a suffix of them
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = corrupt(format, args...)
	}
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad length of %s", what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string(what string) string {
	n := d.uvarint(what)
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail("%s of %d bytes runs past the end (%d left)", what, n, len(d.b))
		return ""
	}
	at := len(d.s) - len(d.b)
	d.b = d.b[n:]
	return d.s[at : at+int(n)]
}

// successor reads the successor of a forward record, nil if none.
func (d *decoder) successor() *session.Hash {
	s := d.string("successor")
	switch {
	case d.err != nil || len(s) == 0:
		return nil
	case len(s) != len(session.Hash{}):
		d.fail("a successor of %d bytes, not a %d-byte hash", len(s), len(session.Hash{}))
		return nil
	}
	// Allocated here only: a session, the common case, costs nothing.
	h := new(session.Hash)
	copy(h[:], s)
	return h
}
