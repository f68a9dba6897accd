package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"math"
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

// sameRecord reports whether a and b hold the same instants and values.
func sameRecord(a, b *session.Record) bool {
	return a.Created.Equal(b.Created) && a.LastSeen.Equal(b.LastSeen) &&
		a.IdleDeadline.Equal(b.IdleDeadline) && a.AbsoluteDeadline.Equal(b.AbsoluteDeadline) &&
		maps.Equal(a.Values, b.Values)
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
	good := encode(sampleRecord(), "user")
	header := good[:headerSize]
	with := func(parts ...[]byte) []byte {
		return bytes.Join(append([][]byte{header}, parts...), nil)
	}
	uv := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"short header", good[:headerSize-1]},
		{"header only", header},
		{"unknown version", append([]byte{2}, good[1:]...)},
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
	// Sanity: the helpers build valid records too.
	if _, _, err := decode(with(uv(0), uv(1), uv(1), []byte("a"), uv(1), []byte("1"))); err != nil {
		t.Fatalf("a valid hand-built record: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(sampleRecord(), "user"))
	f.Add(encode(&session.Record{Values: map[string]string{}}, ""))
	f.Add([]byte{})
	f.Add([]byte{codecVersion})
	good := encode(sampleRecord(), "user")
	f.Add(good[:len(good)/2])
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
