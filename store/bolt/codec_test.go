package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

func sampleRecord() *session.Record {
	t0 := time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)
	return &session.Record{
		Created:          t0,
		LastSeen:         t0.Add(7 * time.Minute),
		IdleDeadline:     t0.Add(37 * time.Minute),
		AbsoluteDeadline: t0.Add(12 * time.Hour),
		Values: map[string]string{
			"user":  "alice",
			"cart":  "3",
			"empty": "",
			"long":  strings.Repeat("x", 300), // a two-byte length
		},
	}
}

// sameRecord reports whether a and b hold the same instants, values,
// realm, successor and metadata.
func sameRecord(a, b *session.Record) bool {
	return a.Created.Equal(b.Created) && a.LastSeen.Equal(b.LastSeen) &&
		a.IdleDeadline.Equal(b.IdleDeadline) && a.AbsoluteDeadline.Equal(b.AbsoluteDeadline) &&
		maps.Equal(a.Values, b.Values) && a.Realm == b.Realm &&
		(a.Successor == nil) == (b.Successor == nil) && (a.Successor == nil || *a.Successor == *b.Successor) &&
		a.Remembered == b.Remembered && a.UserAgent == b.UserAgent && a.ClientNet == b.ClientNet && maps.Equal(a.Flash, b.Flash)
}

// withMeta returns the sample record with metadata: remembered, ua and
// flash, as many as are set.
func withMeta(remembered bool, ua string, flash map[string]string) *session.Record {
	r := sampleRecord()
	r.Realm = "shop"
	r.Remembered, r.UserAgent, r.Flash = remembered, ua, flash
	return r
}

func TestCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		rec      *session.Record
		identity string
	}{
		{"sample", sampleRecord(), "user"},
		{"no identity", sampleRecord(), ""},
		{"no values", &session.Record{
			Created: time.Unix(0, 1), LastSeen: time.Unix(0, 2),
			IdleDeadline: time.Unix(0, 3), AbsoluteDeadline: time.Unix(0, 4),
			Values: map[string]string{},
		}, "user"},
		{"before 1970", &session.Record{
			Created: time.Unix(-5, 0), LastSeen: time.Unix(-4, 0),
			IdleDeadline: time.Unix(-3, 0), AbsoluteDeadline: time.Unix(-2, 0),
			Values: map[string]string{"a": "b"},
		}, "a"},
		{"realm", func() *session.Record { r := sampleRecord(); r.Realm = "shop"; return r }(), "user"},
		{"forward record", &session.Record{
			Created: time.Unix(0, 1), LastSeen: time.Unix(0, 1),
			IdleDeadline: time.Unix(120, 1), AbsoluteDeadline: time.Unix(120, 1),
			Values: map[string]string{}, Realm: "shop", Successor: func() *session.Hash { h := session.HashID("next"); return &h }(),
		}, ""},
		{"remembered", withMeta(true, "", nil), "user"},
		{"user agent", withMeta(false, "Mozilla/5.0 (X11; Linux x86_64) "+strings.Repeat("é", 100), nil), "user"},
		{"flash values", withMeta(false, "", map[string]string{"notice": "saved", "user": "a flash, not the key", "empty": ""}), "user"},
		{"all metadata", withMeta(true, "curl/8.5.0", map[string]string{"notice": strings.Repeat("x", 300)}), "user"},
		{"client network", func() *session.Record {
			r := withMeta(false, "", nil)
			r.ClientNet = "2001:db8:1::/48"
			return r
		}(), "user"},
		{"metadata and no values", func() *session.Record {
			r := withMeta(true, "curl/8.5.0", map[string]string{"n": "1"})
			r.Values, r.ClientNet = map[string]string{}, "198.51.100.0/24"
			return r
		}(), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := encode(tc.rec, tc.identity)
			got, identity, err := decode(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if identity != tc.identity {
				t.Errorf("identity = %q, want %q", identity, tc.identity)
			}
			if got.Realm != tc.rec.Realm || got.Forwarded() != tc.rec.Forwarded() || isForward(b) != tc.rec.Forwarded() ||
				got.Forwarded() && *got.Successor != *tc.rec.Successor {
				t.Errorf("realm %q, successor %v; want %q, %v", got.Realm, got.Successor, tc.rec.Realm, tc.rec.Successor)
			}
			if !sameRecord(got, tc.rec) {
				t.Errorf("decoded %+v, want %+v", got, tc.rec)
			}
			if want := codecVersionFor(tc.rec); b[0] != want || oldLayout(b) {
				t.Errorf("version %d (old layout %v), want %d", b[0], oldLayout(b), want)
			}
			// Keys are written in order, so the encoding is canonical.
			if again := encode(got, identity); !bytes.Equal(again, b) {
				t.Errorf("re-encoding differs:\n%x\n%x", again, b)
			}
			expires, err := expiresAtOf(b)
			if err != nil || !expires.Equal(tc.rec.ExpiresAt()) {
				t.Errorf("expiresAtOf = %v, %v; want %v", expires, err, tc.rec.ExpiresAt())
			}
		})
	}
}

// codecVersionFor is the version encode writes rec in: 4 with metadata,
// else 3.
func codecVersionFor(rec *session.Record) byte {
	if rec.Remembered || rec.UserAgent != "" || rec.ClientNet != "" || len(rec.Flash) > 0 {
		return codecVersionMeta
	}
	return codecVersion
}

// TestCodecMetadataCostsNothingWithout: a record without metadata encodes
// to the bytes version 3 gave it, and metadata adds only what it holds.
func TestCodecMetadataCostsNothingWithout(t *testing.T) {
	plain := sampleRecord()
	plain.Realm = "shop"
	size := len(encode(plain, "user"))
	tests := []struct {
		name  string
		rec   *session.Record
		extra int
	}{
		{"none", withMeta(false, "", nil), 0},
		{"an empty flash map", withMeta(false, "", map[string]string{}), 0},
		{"remembered", withMeta(true, "", nil), 1},
		{"user agent", withMeta(false, "curl/8.5.0", nil), 1 + 1 + 10},
		{"flash value", withMeta(false, "", map[string]string{"msg": "hi"}), 1 + 1 + 1 + 3 + 1 + 2},
		{"client network", func() *session.Record {
			r := withMeta(false, "", nil)
			r.ClientNet = "10.0.0.0/8"
			return r
		}(), 1 + 1 + 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := len(encode(tc.rec, "user")); got != size+tc.extra {
				t.Errorf("%d bytes, want %d + %d", got, size, tc.extra)
			}
		})
	}
	if b := encode(withMeta(false, "", map[string]string{}), "user"); !bytes.Equal(b, encode(plain, "user")) {
		t.Errorf("an empty flash map changes the encoding")
	}
}

func TestCodecDecodeCopies(t *testing.T) {
	b := encode(sampleRecord(), "user")
	rec, _, err := decode(b)
	if err != nil {
		t.Fatal(err)
	}
	// bbolt reuses its memory after the transaction: nothing decoded may
	// point into it.
	for i := range b {
		b[i] = 0xff
	}
	if !sameRecord(rec, sampleRecord()) {
		t.Fatalf("decoded record changed with its input: %v", rec.Values)
	}
}

func TestCodecClampsTimes(t *testing.T) {
	rec := sampleRecord()
	rec.AbsoluteDeadline = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	rec.Created = time.Time{}
	got, _, err := decode(encode(rec, ""))
	if err != nil {
		t.Fatal(err)
	}
	if got.AbsoluteDeadline.UnixNano() != math.MaxInt64 {
		t.Errorf("a deadline past 2262 decoded as %v, want the latest time an int64 holds", got.AbsoluteDeadline)
	}
	if got.Created.UnixNano() != math.MinInt64 {
		t.Errorf("the zero time decoded as %v, want the earliest time an int64 holds", got.Created)
	}
}

// corruptCase is an input decode must refuse.
type corruptCase struct {
	name string
	in   []byte
}

func uv(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func TestCodecDecodeCorrupt(t *testing.T) {
	var tests []corruptCase
	for _, version := range []byte{codecVersion1, codecVersion2} {
		for _, tc := range corruptOld(t, version) {
			tests = append(tests, corruptCase{fmt.Sprintf("v%d/%s", version, tc.name), tc.in})
		}
	}
	for _, tc := range corrupt3(t) {
		tests = append(tests, corruptCase{"v3/" + tc.name, tc.in})
	}
	for _, tc := range corrupt4(t) {
		tests = append(tests, corruptCase{"v4/" + tc.name, tc.in})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, _, err := decode(tc.in)
			if err == nil {
				t.Fatalf("decode(%x) = %+v, want an error", tc.in, rec)
			}
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("error %v does not wrap errCorrupt", err)
			}
		})
	}
}

// corrupt3 are corrupt records of version 3.
func corrupt3(t *testing.T) []corruptCase {
	good := encode(sampleRecord(), "user")
	header := []byte{codecVersion, 0}
	header = binary.BigEndian.AppendUint64(header, uint64(base.UnixNano()))
	times := []byte{0, 0, 0}
	with := func(parts ...[]byte) []byte {
		return bytes.Join(append([][]byte{header, times}, parts...), nil)
	}
	forward := append([]byte{codecVersion, flagForward}, header[2:]...)
	// Sanity: the helpers build valid records too.
	if _, _, err := decode(with(uv(0), uv(0), uv(1), []byte("a"), uv(1), []byte("1"))); err != nil {
		t.Fatalf("v3: a valid hand-built record: %v", err)
	}
	return []corruptCase{
		{"empty", nil},
		{"short header", good[:headerSize3-1]},
		{"header only", header},
		{"unknown version", append([]byte{codecVersionMeta + 1}, good[1:]...)},
		{"version 0", append([]byte{0}, good[1:]...)},
		{"unknown flag", append([]byte{codecVersion, good[1] | 0x80}, good[2:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"bad time", append(bytes.Clone(header), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)},
		{"times missing", append(bytes.Clone(header), 0, 0)},
		{"successor runs past the end", append(append(forward, times...), []byte("abc")...)},
		{"no realm", with()},
		{"realm runs past the end", with(uv(9), []byte("shop"))},
		{"no identity", with(uv(0))},
		{"identity runs past the end", with(uv(0), uv(10), []byte("user"))},
		{"huge length", with(uv(0), uv(math.MaxUint64))},
		{"value missing", with(uv(0), uv(0), uv(1), []byte("a"))},
		{"duplicate key", with(uv(0), uv(0), uv(1), []byte("a"), uv(1), []byte("1"), uv(1), []byte("a"), uv(1), []byte("2"))},
	}
}

// corrupt4 are corrupt records of version 4: their metadata, the rest
// being version 3's.
func corrupt4(t *testing.T) []corruptCase {
	header := []byte{codecVersionMeta, 0}
	header = binary.BigEndian.AppendUint64(header, uint64(base.UnixNano()))
	with := func(parts ...[]byte) []byte {
		// Times, then no realm and no identity key name.
		return bytes.Join(append([][]byte{header, {0, 0, 0}, uv(0), uv(0)}, parts...), nil)
	}
	kv := func(k, v string) []byte {
		return bytes.Join([][]byte{uv(uint64(len(k))), []byte(k), uv(uint64(len(v))), []byte(v)}, nil)
	}
	// Sanity: the helpers build valid records too.
	rec, _, err := decode(with([]byte{metaRemembered | metaUserAgent | metaFlash}, uv(2), []byte("ua"), uv(1), kv("m", "1"), kv("a", "1")))
	if err != nil || !rec.Remembered || rec.UserAgent != "ua" || rec.Flash["m"] != "1" || rec.Values["a"] != "1" {
		t.Fatalf("v4: a valid hand-built record: %+v, %v", rec, err)
	}
	good := encode(withMeta(true, "curl/8.5.0", map[string]string{"msg": "hi"}), "user")
	return []corruptCase{
		{"no metadata flags", with()},
		{"unknown metadata flag", with([]byte{metaRemembered | 0x80})},
		{"no client network", with([]byte{metaClientNet})},
		{"client network runs past the end", with([]byte{metaClientNet}, uv(20), []byte("10.0.0.0/8"))},
		{"no identity tag", with([]byte{metaTag})},
		{"successor key runs past the end", with([]byte{metaSuccessor}, uv(32), []byte("key"))},
		{"no user agent", with([]byte{metaUserAgent})},
		{"user agent runs past the end", with([]byte{metaUserAgent}, uv(10), []byte("curl"))},
		{"no flash count", with([]byte{metaFlash})},
		{"huge flash count", with([]byte{metaFlash}, uv(math.MaxUint64))},
		{"flash count over the input", with([]byte{metaFlash}, uv(3), kv("a", "1"))},
		{"flash value missing", with([]byte{metaFlash}, uv(1), uv(1), []byte("a"))},
		{"duplicate flash key", with([]byte{metaFlash}, uv(2), kv("a", "1"), kv("a", "2"))},
		{"truncated", good[:len(good)-1]},
		{"unknown flag", append([]byte{codecVersionMeta, good[1] | 0x80}, good[2:]...)},
	}
}

// corruptOld are corrupt records of version 1 or 2.
func corruptOld(t *testing.T, version byte) []corruptCase {
	good := encodeV2(sampleRecord(), "user")
	header := append([]byte{version}, good[1:headerSize]...)
	if version == codecVersion2 {
		header = append(header, 0, 0) // no successor, no realm
	}
	with := func(parts ...[]byte) []byte {
		return bytes.Join(append([][]byte{header}, parts...), nil)
	}
	// Sanity: the helpers build valid records too.
	if _, _, err := decode(with(uv(0), uv(1), uv(1), []byte("a"), uv(1), []byte("1"))); err != nil {
		t.Fatalf("v%d: a valid hand-built record: %v", version, err)
	}
	tests := []corruptCase{
		{"short header", good[:headerSize-1]},
		{"header only", header},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"identity runs past the end", with(uv(10), []byte("user"))},
		{"bad uvarint", with([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})},
		{"huge length", with(uv(math.MaxUint64))},
		{"huge count", with(uv(0), uv(math.MaxUint64))},
		{"count over the input", with(uv(0), uv(3), uv(0), uv(0), uv(0), uv(0))},
		{"value missing", with(uv(0), uv(1), uv(1), []byte("a"))},
		{"duplicate key", with(uv(0), uv(2), uv(1), []byte("a"), uv(1), []byte("1"), uv(1), []byte("a"), uv(1), []byte("2"))},
	}
	if version == codecVersion2 {
		v2 := func(parts ...[]byte) []byte {
			return bytes.Join(append([][]byte{header[:headerSize]}, parts...), nil)
		}
		tests = append(tests, []corruptCase{
			{"successor not a hash", v2(uv(5), []byte("abcde"), uv(0), uv(0), uv(0))},
			{"successor runs past the end", v2(uv(32), []byte("abc"))},
			{"realm runs past the end", v2(uv(0), uv(9), []byte("shop"))},
			{"no realm", v2(uv(0))},
		}...)
	}
	return tests
}

// encodeV2 is the encoding of version 2, as main wrote it before the
// denser layout (at 7442678).
func encodeV2(rec *session.Record, identity string) []byte {
	b := appendOldTimes([]byte{codecVersion2}, rec)
	if rec.Successor != nil {
		b = binary.AppendUvarint(b, uint64(len(rec.Successor)))
		b = append(b, rec.Successor[:]...)
	} else {
		b = binary.AppendUvarint(b, 0)
	}
	b = appendString(b, rec.Realm)
	b = appendString(b, identity)
	return appendOldValues(b, rec)
}

// encodeV1 is the encoding of the previous version, as main wrote it
// before realms and forward records.
func encodeV1(rec *session.Record, identity string) []byte {
	b := appendOldTimes([]byte{codecVersion1}, rec)
	b = appendString(b, identity)
	return appendOldValues(b, rec)
}

// appendOldTimes appends the four times as versions 1 and 2 wrote them.
func appendOldTimes(b []byte, rec *session.Record) []byte {
	for _, t := range []time.Time{rec.Created, rec.LastSeen, rec.IdleDeadline, rec.AbsoluteDeadline} {
		b = binary.BigEndian.AppendUint64(b, uint64(unixNano(t)))
	}
	return b
}

// appendOldValues appends the key count and the keys with their values,
// in order, as versions 1 and 2 wrote them.
func appendOldValues(b []byte, rec *session.Record) []byte {
	keys := slices.Sorted(maps.Keys(rec.Values))
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, rec.Values[k])
	}
	return b
}

// TestCodecOldVersions decodes records of the previous versions, which
// encode again as the current version.
func TestCodecOldVersions(t *testing.T) {
	shop := sampleRecord()
	shop.Realm = "shop"
	next := session.HashID("next")
	forward := &session.Record{Created: base, LastSeen: base, IdleDeadline: base.Add(time.Minute),
		AbsoluteDeadline: base.Add(time.Minute), Values: map[string]string{}, Realm: "shop", Successor: &next}
	tests := []struct {
		name     string
		encoded  []byte
		want     *session.Record
		identity string
	}{
		// Version 1: sessions of no realm, never forward records.
		{"v1", encodeV1(sampleRecord(), "user"), sampleRecord(), "user"},
		{"v1 unindexed", encodeV1(sampleRecord(), ""), sampleRecord(), ""},
		{"v2", encodeV2(shop, "user"), shop, "user"},
		{"v2 forward record", encodeV2(forward, ""), forward, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, identity, err := decode(tc.encoded)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !sameRecord(rec, tc.want) || identity != tc.identity {
				t.Fatalf("decoded %+v %q, want %+v %q", rec, identity, tc.want, tc.identity)
			}
			if exp, err := expiresAtOf(tc.encoded); err != nil || !exp.Equal(rec.ExpiresAt()) {
				t.Fatalf("expiresAtOf = %v, %v", exp, err)
			}
			if isForward(tc.encoded) != tc.want.Forwarded() || !oldLayout(tc.encoded) {
				t.Fatalf("isForward = %v, oldLayout = %v", isForward(tc.encoded), oldLayout(tc.encoded))
			}
			again := encode(rec, identity)
			if again[0] != codecVersion || oldLayout(again) {
				t.Fatalf("re-encoded as version %d, want %d", again[0], codecVersion)
			}
			if rec2, identity2, err := decode(again); err != nil || !sameRecord(rec2, rec) || identity2 != identity {
				t.Fatalf("re-encoding changed the record: %+v %q %v", rec2, identity2, err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(sampleRecord(), "user"))
	f.Add(encode(&session.Record{Values: map[string]string{}}, ""))
	f.Add([]byte{})
	f.Add([]byte{codecVersion})
	good := encode(sampleRecord(), "user")
	f.Add(good[:len(good)/2])
	f.Add(encodeV1(sampleRecord(), "user"))
	f.Add(encodeV2(sampleRecord(), "user"))
	next := session.HashID("next")
	f.Add(encode(&session.Record{Values: map[string]string{}, Realm: "shop", Successor: &next}, ""))
	f.Add(encode(withMeta(true, "curl/8.5.0", map[string]string{"msg": "hi", "n": ""}), "user"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, identity, err := decode(b)
		if err != nil {
			if rec != nil {
				t.Fatalf("decode returned a record with error %v", err)
			}
			return
		}
		again, identity2, err := decode(encode(rec, identity))
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if identity2 != identity || !sameRecord(again, rec) {
			t.Fatalf("round trip changed the record: %+v %q, then %+v %q", rec, identity, again, identity2)
		}
		// Every time decodes from nanoseconds, so none is lost.
		if again.Created.UnixNano() != rec.Created.UnixNano() {
			t.Fatalf("Created changed: %v, then %v", rec.Created, again.Created)
		}
	})
}

// TestCodecOffsets: each time after Created is kept as an offset in the
// largest unit that divides it, in as few bytes as that takes, and decodes
// to the nanosecond.
func TestCodecOffsets(t *testing.T) {
	created := time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)
	tests := []struct {
		offset time.Duration
		bytes  int // of each of the three offsets
	}{
		{0, 1},
		{time.Nanosecond, 1},
		{time.Microsecond, 1},
		{time.Millisecond, 1},
		{time.Second, 1},
		{-time.Second, 1},
		{1500 * time.Millisecond, 2},
		{30 * time.Minute, 2},
		{12 * time.Hour, 3},
		{61*time.Second + 123456789, 6},
		{-time.Nanosecond, 1},
	}
	for _, tc := range tests {
		t.Run(tc.offset.String(), func(t *testing.T) {
			rec := &session.Record{
				Created:          created,
				LastSeen:         created.Add(tc.offset),
				IdleDeadline:     created.Add(tc.offset).Add(tc.offset),
				AbsoluteDeadline: created.Add(tc.offset),
				Values:           map[string]string{},
			}
			b := encode(rec, "")
			if want := headerSize3 + 3*tc.bytes + 2; len(b) != want {
				t.Errorf("%d bytes, want %d: %x", len(b), want, b)
			}
			wantTimes(t, b, rec)
		})
	}
}

// TestCodecExtremeTimes: offsets wrap around, so the earliest and the
// latest times an int64 holds round-trip in any order.
func TestCodecExtremeTimes(t *testing.T) {
	rec := &session.Record{Created: minTime, LastSeen: maxTime, IdleDeadline: minTime, AbsoluteDeadline: maxTime, Values: map[string]string{}}
	wantTimes(t, encode(rec, ""), rec)
	rec = &session.Record{Created: maxTime, LastSeen: minTime, IdleDeadline: maxTime, AbsoluteDeadline: minTime, Values: map[string]string{}}
	wantTimes(t, encode(rec, ""), rec)
}

func wantTimes(t *testing.T, b []byte, want *session.Record) {
	t.Helper()
	got, _, err := decode(b)
	if err != nil {
		t.Fatal(err)
	}
	for i, pair := range [][2]time.Time{
		{got.Created, want.Created}, {got.LastSeen, want.LastSeen},
		{got.IdleDeadline, want.IdleDeadline}, {got.AbsoluteDeadline, want.AbsoluteDeadline},
	} {
		if pair[0].UnixNano() != pair[1].UnixNano() {
			t.Errorf("time %d: %d, want %d", i, pair[0].UnixNano(), pair[1].UnixNano())
		}
	}
}

// TestCodecLoginSize pins the size of a login's record, which most of the
// file is made of: its times take 14 bytes, not 32 as in version 2.
func TestCodecLoginSize(t *testing.T) {
	now := time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)
	to := session.Timeouts{Idle: session.DefaultIdleTimeout, Absolute: session.DefaultAbsoluteTimeout, TouchInterval: session.DefaultTouchInterval}
	rec := to.NewRecord(now)
	rec.Realm = "127.0.0.1@:8081"
	rec.Values["user"] = "u12345"
	const times, realm, identity, values = 8 + 1 + 2 + 3, 1 + 15, 1 + 4, 1 + 4 + 1 + 6
	if got, want := len(encode(rec, "user")), 2+times+realm+identity+values; got != want {
		t.Fatalf("a login's record takes %d bytes, want %d", got, want)
	}
	if v2 := len(encodeV2(rec, "user")); v2 != 68 {
		t.Fatalf("in version 2: %d bytes, want 68", v2)
	}
}
