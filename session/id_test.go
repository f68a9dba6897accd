package session

import (
	"errors"
	"strings"
	"testing"
)

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func TestNewIDForm(t *testing.T) {
	for range 100 {
		id := NewID()
		if len(id) != IDLength {
			t.Fatalf("NewID() = %q: length %d, want %d", id, len(id), IDLength)
		}
		for i := 0; i < len(id); i++ {
			if !strings.ContainsRune(idAlphabet, rune(id[i])) {
				t.Fatalf("NewID() = %q: byte %q at %d is not URL-safe base64", id, id[i], i)
			}
		}
		if !ValidID(id) {
			t.Fatalf("ValidID(NewID()) = false for %q", id)
		}
	}
}

func TestNewIDUnique(t *testing.T) {
	const n = 1000
	seen := make(map[string]bool, n)
	for range n {
		id := NewID()
		if seen[id] {
			t.Fatalf("NewID() returned %q twice in %d calls", id, n)
		}
		seen[id] = true
	}
}

func TestValidID(t *testing.T) {
	good := strings.Repeat("a", IDLength)
	tests := []struct {
		name string
		id   string
		want bool
	}{
		{"fresh", NewID(), true},
		{"all letters", good, true},
		{"whole alphabet", (idAlphabet + idAlphabet)[:IDLength], true},
		{"dash and underscore", strings.Repeat("-_", 21) + "Z", true},
		{"empty", "", false},
		{"one short", good[:IDLength-1], false},
		{"one long", good + "a", false},
		{"padded", good[:IDLength-1] + "=", false},
		{"padded long", good + "=", false},
		{"std base64 plus", good[:IDLength-1] + "+", false},
		{"std base64 slash", good[:IDLength-1] + "/", false},
		{"space inside", good[:20] + " " + good[21:], false},
		{"leading space", " " + good[1:], false},
		{"trailing newline", good[:IDLength-1] + "\n", false},
		{"NUL", good[:IDLength-1] + "\x00", false},
		{"dot", good[:IDLength-1] + ".", false},
		{"quote", good[:IDLength-1] + `"`, false},
		// 41 ASCII bytes + a 2-byte rune: 43 bytes, not all of them ASCII.
		{"non-ASCII", good[:IDLength-2] + "é", false},
		{"non-UTF-8", good[:IDLength-1] + "\xff", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidID(tt.id); got != tt.want {
				t.Errorf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

func TestHashID(t *testing.T) {
	id := NewID()
	h1, h2 := HashID(id), HashID(id)
	if h1 != h2 {
		t.Fatalf("HashID is not stable: %v then %v", h1, h2)
	}
	if other := HashID(NewID()); other == h1 {
		t.Fatalf("two IDs share the hash %v", h1)
	}
	// A known vector: SHA-256 of the empty string.
	if got, want := HashID("").String(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; got != want {
		t.Errorf("HashID(\"\") = %s, want %s", got, want)
	}
	if s := h1.String(); strings.Contains(s, id) {
		t.Errorf("hash %s contains the ID", s)
	}
}

func TestHashString(t *testing.T) {
	h := HashID(NewID())
	s := h.String()
	if len(s) != 64 {
		t.Fatalf("String() = %q: length %d, want 64", s, len(s))
	}
	if s != strings.ToLower(s) {
		t.Errorf("String() = %q is not lowercase", s)
	}
	short := h.Short()
	if len(short) != 16 {
		t.Fatalf("Short() = %q: length %d, want 16", short, len(short))
	}
	if !strings.HasPrefix(s, short) {
		t.Errorf("Short() = %q is not the start of %q", short, s)
	}
	for i := 0; i < len(short); i++ {
		if !strings.ContainsRune("0123456789abcdef", rune(short[i])) {
			t.Fatalf("Short() = %q is not lowercase hex", short)
		}
	}
}

func TestParseHashRoundTrip(t *testing.T) {
	for range 20 {
		h := HashID(NewID())
		got, err := ParseHash(h.String())
		if err != nil {
			t.Fatalf("ParseHash(%s): %v", h, err)
		}
		if got != h {
			t.Fatalf("ParseHash(%s) = %s", h, got)
		}
	}
	// Upper case hex is hex too.
	h := HashID("x")
	if got, err := ParseHash(strings.ToUpper(h.String())); err != nil || got != h {
		t.Errorf("ParseHash(upper case) = %s, %v; want %s, nil", got, err, h)
	}
}

func TestParseHashRejects(t *testing.T) {
	valid := HashID("x").String()
	tests := map[string]string{
		"empty":          "",
		"short":          valid[:63],
		"odd long":       valid + "0",
		"long":           valid + "00",
		"non-hex":        valid[:63] + "g",
		"space":          " " + valid[1:],
		"0x prefix":      "0x" + valid[2:],
		"the ID itself":  NewID(),
		"short hash":     HashID("x").Short(),
		"non-ASCII":      valid[:62] + "é",
		"trailing space": valid[:63] + " ",
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseHash(s); !errors.Is(err, ErrBadHash) {
				t.Fatalf("ParseHash(%q) error = %v, want ErrBadHash", s, err)
			}
		})
	}
}
