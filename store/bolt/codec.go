package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
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
	codecVersion2 = 2 // four fixed times; indexed the old way (index.go)
	codecVersion  = 3
	// codecVersionMeta is version 3 with the session's metadata
	// (Remembered, UserAgent, Flash). Only a record that has some is
	// written so: the others stay version 3 to the byte, so that they cost
	// nothing more and a Caddy of the previous version still reads them.
	codecVersionMeta = 4
)

// headerSize is the version byte and the four times of versions 1 and 2.
const headerSize = 1 + 4*8

// headerSize3 is the version byte, the flags and Created of version 3.
const headerSize3 = 1 + 1 + 8

// The record encoding, version 3:
//
//	version            1 byte
//	flags              1 byte: bit 0 set in a forward record; bits 1-6
//	                   the units of the three offsets below, 2 bits each
//	Created            int64 unix nanoseconds, big-endian
//	LastSeen           offset from Created          zigzag varint, in its unit
//	IdleDeadline       offset from LastSeen         zigzag varint, in its unit
//	AbsoluteDeadline   offset from Created          zigzag varint, in its unit
//	successor          32 bytes, in a forward record only
//	realm              uvarint length, bytes
//	identity key name  uvarint length, bytes
//	per key, in order  uvarint length, key bytes, uvarint length, value
//	                   bytes; the keys run to the end of the record
//
// Version 4 is version 3 with the metadata between the identity key name
// and the keys:
//
//	metadata flags     1 byte: bit 0 Remembered, bit 1 a User-Agent
//	                   follows, bit 2 flash values follow, bit 3 a client
//	                   network follows, bit 4 Sealed, bit 5 an identity
//	                   tag follows, bit 6 a successor key follows; bit 7
//	                   is unused: a record with it set is corrupt
//	User-Agent         uvarint length, bytes
//	client network     uvarint length, bytes (Record.ClientNet)
//	flash values       uvarint count, then per value, in key order:
//	                   uvarint length, key bytes, uvarint length, value
//	                   bytes
//	identity tag       uvarint length, bytes
//	successor key      uvarint length, bytes
//
// A sealed record (session.Record.Sealed: values sealed at rest) is a
// version 4 record whose values, flash values and User-Agent hold the
// sealed bytes; its identity tag is what the identity index keys it by.
// A Caddy of a version before sealing refuses it, by its flags, as
// written by a newer caddy-session.
//
// A record without metadata is written as version 3, so that the bulk of
// a file, plain sessions, takes no byte more than before. A Caddy of the
// previous version refuses a version 4 record as written by a newer
// caddy-session, and reads the others.
//
// The offsets are what the timeouts make them (a login: 0, 30 minutes and
// 12 hours), so each is kept in the largest of nanoseconds, microseconds,
// milliseconds and seconds that divides it exactly: 6 bytes for three
// times instead of 24, and every time still decodes to the nanosecond,
// which the session core compares deadlines at. Offsets wrap around like
// int64 arithmetic, so any four times round-trip.
//
// Version 2, which decode still reads:
//
//	version            1 byte
//	Created, LastSeen, IdleDeadline, AbsoluteDeadline
//	                   int64 unix nanoseconds each, big-endian
//	successor          uvarint length (0, or 32 in a forward record), bytes
//	realm              uvarint length, bytes
//	identity key name  uvarint length, bytes
//	number of keys     uvarint
//	per key, in order  uvarint length, key bytes, uvarint length, value bytes
//
// Version 1 is version 2 without successor and realm: it decodes as a
// session of no realm.
//
// The forward flag (in version 2, the successor) comes first so that scans
// tell a forward record from a session without decoding it (isForward).
// The identity key name is the Update.Identity the record was indexed
// under, so that removing the record removes exactly its index entry even
// after the configuration names another identity key.

// The flags of version 3.
const (
	flagForward = 1 << 0
	unitShift   = 1    // the units start at bit 1, LastSeen's first
	flagsUsed   = 0x7f // bit 7 is unused: a record with it set is corrupt
)

// The metadata flags of version 4.
const (
	metaRemembered = 1 << 0
	metaUserAgent  = 1 << 1
	metaFlash      = 1 << 2
	metaClientNet  = 1 << 3
	metaSealed     = 1 << 4
	metaTag        = 1 << 5
	metaSuccessor  = 1 << 6
	metaUsed       = 0x7f
)

// offsetUnits are the units an offset may be kept in, by their 2-bit code.
var offsetUnits = [4]int64{1, int64(time.Microsecond), int64(time.Millisecond), int64(time.Second)}

// offsetUnit is the code of the largest unit that divides d exactly.
func offsetUnit(d int64) byte {
	for code := len(offsetUnits) - 1; code > 0; code-- {
		if d%offsetUnits[code] == 0 {
			return byte(code)
		}
	}
	return 0
}

// offset is b − a in int64 nanoseconds, wrapping around as int64
// arithmetic does, so that a + offset is b again for any two times.
func offset(a, b int64) int64 { return int64(uint64(b) - uint64(a)) }

// encode returns the encoding of rec, indexed under identity. Keys are
// written in order, so equal records encode to equal bytes.
func encode(rec *session.Record, identity string) []byte {
	keys := make([]string, 0, len(rec.Values))
	size := headerSize3 + 3*binary.MaxVarintLen64 + len(session.Hash{}) +
		binary.MaxVarintLen64*(2+2*len(rec.Values)) + len(rec.Realm) + len(identity)
	for k, v := range rec.Values {
		keys = append(keys, k)
		size += len(k) + len(v)
	}
	slices.Sort(keys)
	meta := metaFlags(rec)
	version := byte(codecVersion)
	if meta != 0 {
		version = codecVersionMeta
		size += 1 + binary.MaxVarintLen64*(5+2*len(rec.Flash)) + len(rec.UserAgent) + len(rec.ClientNet) + rec.FlashSize() +
			len(rec.IdentityTag()) + len(rec.SuccessorKey())
	}
	created, seen := unixNano(rec.Created), unixNano(rec.LastSeen)
	offsets := [3]int64{
		offset(created, seen),
		offset(seen, unixNano(rec.IdleDeadline)),
		offset(created, unixNano(rec.AbsoluteDeadline)),
	}
	var flags byte
	if rec.Successor != nil {
		flags |= flagForward
	}
	for i, d := range offsets {
		flags |= offsetUnit(d) << (unitShift + 2*i)
	}
	b := make([]byte, 0, size)
	b = append(b, version, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(created))
	for i, d := range offsets {
		b = binary.AppendVarint(b, d/offsetUnits[flags>>(unitShift+2*i)&3])
	}
	if rec.Successor != nil {
		b = append(b, rec.Successor[:]...)
	}
	b = appendString(b, rec.Realm)
	b = appendString(b, identity)
	if meta != 0 {
		b = appendMeta(b, meta, rec)
	}
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, rec.Values[k])
	}
	return b
}

// metaFlags are the metadata flags of rec: 0 if it has no metadata.
func metaFlags(rec *session.Record) byte {
	var meta byte
	if rec.Remembered {
		meta |= metaRemembered
	}
	if rec.UserAgent != "" {
		meta |= metaUserAgent
	}
	if len(rec.Flash) > 0 {
		meta |= metaFlash
	}
	if rec.ClientNet != "" {
		meta |= metaClientNet
	}
	if rec.Sealed {
		meta |= metaSealed
	}
	if rec.IdentityTag() != "" {
		meta |= metaTag
	}
	if rec.SuccessorKey() != "" {
		meta |= metaSuccessor
	}
	return meta
}

// appendMeta appends the metadata of rec, whose flags are meta, as
// version 4 writes it.
func appendMeta(b []byte, meta byte, rec *session.Record) []byte {
	b = append(b, meta)
	if meta&metaUserAgent != 0 {
		b = appendString(b, rec.UserAgent)
	}
	if meta&metaClientNet != 0 {
		b = appendString(b, rec.ClientNet)
	}
	if meta&metaFlash != 0 {
		b = binary.AppendUvarint(b, uint64(len(rec.Flash)))
		for _, k := range slices.Sorted(maps.Keys(rec.Flash)) {
			b = appendString(b, k)
			b = appendString(b, rec.Flash[k])
		}
	}
	if meta&metaTag != 0 {
		b = appendString(b, rec.IdentityTag())
	}
	if meta&metaSuccessor != 0 {
		b = appendString(b, rec.SuccessorKey())
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
	if len(b) == 0 {
		return nil, "", corrupt("an empty record")
	}
	switch b[0] {
	case codecVersion, codecVersionMeta:
		return decode3(b)
	case codecVersion2, codecVersion1:
		return decode2(b)
	}
	return nil, "", corrupt("unknown version %d; was the file written by a newer caddy-session?", b[0])
}

// decode3 parses a record of version 3 or 4.
func decode3(b []byte) (*session.Record, string, error) {
	if len(b) < headerSize3 {
		return nil, "", corrupt("%d bytes, shorter than the %d-byte header", len(b), headerSize3)
	}
	// Every string of the record is cut from one copy of its bytes: one
	// allocation instead of one per key and value.
	d := decoder{b: b[headerSize3:], s: string(b[headerSize3:])}
	rec := &session.Record{}
	if err := times3(b, &d, rec); err != nil {
		return nil, "", err
	}
	if b[1]&flagForward != 0 {
		rec.Successor = d.successor3()
	}
	rec.Realm = d.string("realm")
	identity := d.string("identity key name")
	if b[0] == codecVersionMeta {
		d.meta(rec)
	}
	if d.err != nil {
		return nil, "", d.err
	}
	rec.Values = map[string]string{}
	for len(d.b) > 0 {
		if err := d.keyValue(rec.Values); err != nil {
			return nil, "", err
		}
	}
	return rec, identity, nil
}

// times3 reads the times of a version 3 record into rec, from d, which
// starts after the header, and leaves d after them.
func times3(b []byte, d *decoder, rec *session.Record) error {
	if len(b) < headerSize3 {
		return corrupt("%d bytes, shorter than the %d-byte header", len(b), headerSize3)
	}
	flags := b[1]
	if flags&^flagsUsed != 0 {
		return corrupt("unknown flags %#x", flags)
	}
	created := int64(binary.BigEndian.Uint64(b[2:]))
	var offsets [3]int64
	for i := range offsets {
		offsets[i] = d.varint("time") * offsetUnits[flags>>(unitShift+2*i)&3]
	}
	if d.err != nil {
		return d.err
	}
	seen := created + offsets[0]
	rec.Created = timeOf(created)
	rec.LastSeen = timeOf(seen)
	rec.IdleDeadline = timeOf(seen + offsets[1])
	rec.AbsoluteDeadline = timeOf(created + offsets[2])
	return nil
}

// decode2 parses a record of version 1 or 2.
func decode2(b []byte) (*session.Record, string, error) {
	if len(b) < headerSize {
		return nil, "", corrupt("%d bytes, shorter than the %d-byte header", len(b), headerSize)
	}
	rec := &session.Record{
		Created:          timeAt(b[1:]),
		LastSeen:         timeAt(b[9:]),
		IdleDeadline:     timeAt(b[17:]),
		AbsoluteDeadline: timeAt(b[25:]),
	}
	d := decoder{b: b[headerSize:], s: string(b[headerSize:])}
	if b[0] == codecVersion2 {
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
		if err := d.keyValue(rec.Values); err != nil {
			return nil, "", err
		}
	}
	if len(d.b) != 0 {
		return nil, "", corrupt("%d bytes after the last value", len(d.b))
	}
	return rec, identity, nil
}

// timeAt reads a big-endian int64 of unix nanoseconds.
func timeAt(b []byte) time.Time {
	return timeOf(int64(binary.BigEndian.Uint64(b)))
}

func timeOf(nano int64) time.Time { return time.Unix(0, nano).UTC() }

// expiresAtOf reads only the deadlines of an encoded record, for scans that
// skip expired records without decoding their values.
func expiresAtOf(b []byte) (time.Time, error) {
	if len(b) >= headerSize3 && (b[0] == codecVersion || b[0] == codecVersionMeta) {
		// Only the times are read: no copy of the rest.
		var rec session.Record
		if err := times3(b, &decoder{b: b[headerSize3:]}, &rec); err != nil {
			return time.Time{}, err
		}
		return rec.ExpiresAt(), nil
	}
	if len(b) < headerSize || b[0] != codecVersion2 && b[0] != codecVersion1 {
		return time.Time{}, corrupt("bad header")
	}
	r := session.Record{IdleDeadline: timeAt(b[17:]), AbsoluteDeadline: timeAt(b[25:])}
	return r.ExpiresAt(), nil
}

// isForward reports whether the encoded record b is a forward record,
// without decoding it: a version 3 or 4 record flagged so, or a version 2
// record with a successor.
func isForward(b []byte) bool {
	switch {
	case len(b) >= headerSize3 && (b[0] == codecVersion || b[0] == codecVersionMeta):
		return b[1]&^flagsUsed == 0 && b[1]&flagForward != 0
	case len(b) > headerSize && b[0] == codecVersion2:
		return b[headerSize] != 0
	}
	return false
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
	return readVarint(d, "bad length of %s", what, binary.Uvarint)
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

func (d *decoder) varint(what string) int64 {
	return readVarint(d, "bad %s", what, binary.Varint)
}

// readVarint reads one varint with read (binary.Varint or Uvarint),
// failing the decoder with problem, about what, if there is none.
func readVarint[T int64 | uint64](d *decoder, problem, what string, read func([]byte) (T, int)) T {
	if d.err != nil {
		return 0
	}
	v, n := read(d.b)
	if n <= 0 {
		d.fail(problem, what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// keyValue reads one key and its value into values.
func (d *decoder) keyValue(values map[string]string) error {
	k := d.string("key")
	v := d.string("value")
	if d.err != nil {
		return d.err
	}
	if _, dup := values[k]; dup {
		return corrupt("key %q appears twice", k)
	}
	values[k] = v
	return nil
}

// meta reads the metadata of a version 4 record into rec.
func (d *decoder) meta(rec *session.Record) {
	if d.err != nil {
		return
	}
	if len(d.b) == 0 {
		d.fail("no metadata flags")
		return
	}
	meta := d.b[0]
	d.b = d.b[1:]
	if meta&^metaUsed != 0 {
		d.fail("unknown metadata flags %#x", meta)
		return
	}
	rec.Remembered = meta&metaRemembered != 0
	if meta&metaUserAgent != 0 {
		rec.UserAgent = d.string("User-Agent")
	}
	if meta&metaClientNet != 0 {
		rec.ClientNet = d.string("client network")
	}
	rec.Sealed = meta&metaSealed != 0
	if meta&metaFlash != 0 {
		d.flash(rec)
	}
	if meta&metaTag != 0 {
		rec.SetIdentityTag(d.string("identity tag"))
	}
	if meta&metaSuccessor != 0 {
		rec.SetSuccessorKey(d.string("successor key"))
	}
}

// flash reads the flash values of a version 4 record into rec.
func (d *decoder) flash(rec *session.Record) {
	count := d.uvarint("number of flash values")
	// As for the keys of version 2: each takes two bytes at least.
	if d.err == nil && count > uint64(len(d.b)/2) {
		d.fail("%d flash values cannot fit in %d bytes", count, len(d.b))
	}
	if d.err != nil || count == 0 {
		return
	}
	rec.Flash = make(map[string]string, count)
	for range count {
		if err := d.keyValue(rec.Flash); err != nil {
			d.err = err
			return
		}
	}
}

// successor3 reads the successor of a version 3 forward record.
func (d *decoder) successor3() *session.Hash {
	h := new(session.Hash)
	if d.err == nil && len(d.b) < len(h) {
		d.fail("a successor of %d bytes, not a %d-byte hash", len(d.b), len(h))
	}
	if d.err != nil {
		return nil
	}
	copy(h[:], d.b)
	d.b = d.b[len(h):]
	return h
}

// successor reads the successor of a version 2 forward record, nil if
// none.
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
