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
// realm and successor.
func sameRecord(a, b *session.Record) bool {
	return a.Created.Equal(b.Created) && a.LastSeen.Equal(b.LastSeen) &&
		a.IdleDeadline.Equal(b.IdleDeadline) && a.AbsoluteDeadline.Equal(b.AbsoluteDeadline) &&
		maps.Equal(a.Values, b.Values) && a.Realm == b.Realm &&
		(a.Successor == nil) == (b.Successor == nil) && (a.Successor == nil || *a.Successor == *b.Successor)
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

func TestCodecDecodeCorrupt(t *testing.T) {
	uv := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	for _, version := range []byte{codecVersion1, codecVersion} {
		good := encode(sampleRecord(), "user")
		header := append([]byte{version}, good[1:headerSize]...)
		if version == codecVersion {
			header = append(header, 0, 0) // no successor, no realm
		}
		with := func(parts ...[]byte) []byte {
			return bytes.Join(append([][]byte{header}, parts...), nil)
		}
		tests := []struct {
			name string
			in   []byte
		}{
			{"empty", nil},
			{"short header", good[:headerSize-1]},
			{"header only", header},
			{"unknown version", append([]byte{codecVersion + 1}, good[1:]...)},
			{"version 0", append([]byte{0}, good[1:]...)},
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
		if version == codecVersion {
			v2 := func(parts ...[]byte) []byte {
				return bytes.Join(append([][]byte{header[:headerSize]}, parts...), nil)
			}
			tests = append(tests, []struct {
				name string
				in   []byte
			}{
				{"successor not a hash", v2(uv(5), []byte("abcde"), uv(0), uv(0), uv(0))},
				{"successor runs past the end", v2(uv(32), []byte("abc"))},
				{"realm runs past the end", v2(uv(0), uv(9), []byte("shop"))},
				{"no realm", v2(uv(0))},
			}...)
		}
		for _, tc := range tests {
			t.Run(fmt.Sprintf("v%d/%s", version, tc.name), func(t *testing.T) {
				rec, _, err := decode(tc.in)
				if err == nil {
					t.Fatalf("decode(%x) = %+v, want an error", tc.in, rec)
				}
				if !errors.Is(err, errCorrupt) {
					t.Fatalf("error %v does not wrap errCorrupt", err)
				}
			})
		}
		// Sanity: the helpers build valid records too.
		if _, _, err := decode(with(uv(0), uv(1), uv(1), []byte("a"), uv(1), []byte("1"))); err != nil {
			t.Fatalf("v%d: a valid hand-built record: %v", version, err)
		}
	}
}

// encodeV1 is the encoding of the previous version, as main wrote it
// before realms and forward records.
func encodeV1(rec *session.Record, identity string) []byte {
	b := []byte{codecVersion1}
	for _, t := range []time.Time{rec.Created, rec.LastSeen, rec.IdleDeadline, rec.AbsoluteDeadline} {
		b = binary.BigEndian.AppendUint64(b, uint64(unixNano(t)))
	}
	b = appendString(b, identity)
	keys := slices.Sorted(maps.Keys(rec.Values))
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, rec.Values[k])
	}
	return b
}

// TestCodecVersion1 decodes records of the previous version: sessions of
// no realm, never forward records, which encode again as the current
// version.
func TestCodecVersion1(t *testing.T) {
	for _, identity := range []string{"user", ""} {
		old := encodeV1(sampleRecord(), identity)
		rec, gotIdentity, err := decode(old)
		if err != nil {
			t.Fatalf("decode of a version 1 record: %v", err)
		}
		if !sameRecord(rec, sampleRecord()) || gotIdentity != identity || rec.Realm != "" || rec.Forwarded() {
			t.Fatalf("version 1 decoded as %+v %q, want %+v %q with no realm", rec, gotIdentity, sampleRecord(), identity)
		}
		if exp, err := expiresAtOf(old); err != nil || !exp.Equal(rec.ExpiresAt()) {
			t.Fatalf("expiresAtOf a version 1 record = %v, %v", exp, err)
		}
		if isForward(old) {
			t.Fatal("a version 1 record reads as a forward record")
		}
		again := encode(rec, gotIdentity)
		if again[0] != codecVersion {
			t.Fatalf("re-encoded as version %d, want %d", again[0], codecVersion)
		}
		if rec2, identity2, err := decode(again); err != nil || !sameRecord(rec2, rec) || identity2 != identity {
			t.Fatalf("version 1 → 2 changed the record: %+v %q %v", rec2, identity2, err)
		}
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
	next := session.HashID("next")
	f.Add(encode(&session.Record{Values: map[string]string{}, Realm: "shop", Successor: &next}, ""))
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
