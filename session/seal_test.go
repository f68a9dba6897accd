package session

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// sealedRecord is a record of the session with ID id holding every kind
// of sealable field, and the record sealed.
func sealedRecord(id string) (plain, sealed *Record) {
	plain = &Record{
		Values:    map[string]string{"user": "alice", "cart": "3 apples", "empty": ""},
		Flash:     map[string]string{"notice": "Saved"},
		UserAgent: "Mozilla/5.0 (sealed)",
		ClientNet: "203.0.113.0/24",
	}
	k, h := DeriveSealKey(id), HashID(id)
	sealed = plain.Clone()
	for f, v := range sealed.Values {
		sealed.Values[f] = k.SealValue(h, f, v)
	}
	for f, v := range sealed.Flash {
		sealed.Flash[f] = k.SealFlash(h, f, v)
	}
	sealed.UserAgent = k.SealUserAgent(h, sealed.UserAgent)
	sealed.ClientNet = k.SealClientNet(h, sealed.ClientNet)
	sealed.Sealed = true
	sealed.SetIdentityTag("a tag")
	return plain, sealed
}

func TestSealRoundTrip(t *testing.T) {
	id := NewID()
	plain, sealed := sealedRecord(id)
	for _, v := range []string{sealed.Values["user"], sealed.Values["empty"], sealed.Flash["notice"], sealed.UserAgent, sealed.ClientNet} {
		if len(v) < SealOverhead || strings.Contains(v, "alice") || strings.Contains(v, "Mozilla") {
			t.Fatalf("sealed field %q", v)
		}
	}
	opened := sealed.Clone()
	if err := DeriveSealKey(id).Open(HashID(id), opened); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(opened.Values, plain.Values) || !maps.Equal(opened.Flash, plain.Flash) ||
		opened.UserAgent != plain.UserAgent || opened.ClientNet != plain.ClientNet || opened.Sealed || opened.IdentityTag() != "" {
		t.Fatalf("opened %+v, want %+v", opened, plain)
	}
	// Sealing twice gives two ciphertexts: the nonce is random.
	k, h := DeriveSealKey(id), HashID(id)
	if k.SealValue(h, "user", "alice") == k.SealValue(h, "user", "alice") {
		t.Fatal("sealing the same value twice gave the same bytes")
	}
}

// TestSealBinds: a ciphertext opens only as the field of the session it
// was sealed for, with that session's key, unchanged: one row per way of
// moving or changing it.
func TestSealBinds(t *testing.T) {
	id, other := NewID(), NewID()
	_, sealed := sealedRecord(id)
	_, others := sealedRecord(other)
	for _, tc := range []struct {
		name   string
		change func(r *Record)
		key    *SealKey
	}{
		{"another session's key", func(*Record) {}, DeriveSealKey(other)},
		{"value moved to another key", func(r *Record) { r.Values["cart"] = r.Values["user"] }, nil},
		{"value moved from another session", func(r *Record) { r.Values["cart"] = others.Values["cart"] }, nil},
		{"value moved to a flash value", func(r *Record) { r.Flash["notice"] = r.Values["user"] }, nil},
		{"User-Agent moved to the client network", func(r *Record) { r.ClientNet = r.UserAgent }, nil},
		{"bit flipped", func(r *Record) { b := []byte(r.Values["user"]); b[len(b)-1] ^= 1; r.Values["user"] = string(b) }, nil},
		{"cut short", func(r *Record) { r.Values["user"] = r.Values["user"][:SealOverhead-1] }, nil},
		{"unknown version", func(r *Record) { r.Values["user"] = "\x02" + r.Values["user"][1:] }, nil},
		{"plain value", func(r *Record) { r.Values["user"] = "mallory" }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sealed.Clone()
			tc.change(r)
			key := tc.key
			if key == nil {
				key = DeriveSealKey(id)
			}
			if err := key.Open(HashID(id), r); !errors.Is(err, ErrSealed) {
				t.Fatalf("Open = %v, want ErrSealed", err)
			}
		})
	}
}

func TestSealSuccessor(t *testing.T) {
	old, next := NewID(), NewID()
	fwd := &Record{Seal: &SealInfo{SuccessorKey: DeriveSealKey(old).SealSuccessor(HashID(old), DeriveSealKey(next))}}
	k, err := DeriveSealKey(old).OpenSuccessor(HashID(old), fwd)
	if err != nil || k.raw != DeriveSealKey(next).raw {
		t.Fatalf("OpenSuccessor = %v; want the successor's key", err)
	}
	if _, err := DeriveSealKey(next).OpenSuccessor(HashID(old), fwd); !errors.Is(err, ErrSealed) {
		t.Fatalf("another key opened the successor's key: %v", err)
	}
}

func TestIndexKey(t *testing.T) {
	if _, err := NewIndexKey([]byte("31 bytes, one short of the min")); err == nil {
		t.Fatal("a short secret was accepted")
	}
	a, _ := NewIndexKey([]byte("an index secret of thirty-two bytes or more"))
	b, _ := NewIndexKey([]byte("another index secret of thirty-two bytes"))
	switch {
	case a.Tag("user", "alice") != a.Tag("user", "alice"):
		t.Fatal("a tag is not stable")
	case a.Tag("user", "alice") == b.Tag("user", "alice"):
		t.Fatal("two secrets give one tag")
	case a.Tag("user", "alice") == a.Tag("use", "ralice"):
		t.Fatal("the key and value are ambiguous")
	case strings.Contains(a.Tag("user", "alice"), "alice"):
		t.Fatal("the tag shows the name")
	}
	sealed := &Record{Values: map[string]string{"user": "x"}, Sealed: true, Seal: &SealInfo{IdentityTag: "tag"}}
	if v, ok := sealed.IndexedIdentity("user"); !ok || v != "tag" {
		t.Fatalf("sealed IndexedIdentity = %q, %v", v, ok)
	}
	if _, ok := (&Record{Values: map[string]string{}, Sealed: true, Seal: &SealInfo{IdentityTag: "tag"}}).IndexedIdentity("user"); ok {
		t.Fatal("a sealed record without the key is indexed")
	}
	if v, ok := (&Record{Values: map[string]string{"user": "bob"}}).IndexedIdentity("user"); !ok || v != "bob" {
		t.Fatalf("plain IndexedIdentity = %q, %v", v, ok)
	}
}

// TestSealOpensElsewhere opens sealed fields with testdata/unseal.py, the
// README's example for an upstream given the session cookie: Python's
// HMAC for the HKDF and libsodium (PyNaCl) for XChaCha20-Poly1305, none
// of this package's code.
func TestSealOpensElsewhere(t *testing.T) {
	python := "/usr/bin/python3" // Debian's, where python3-nacl installs
	if err := exec.Command(python, "-c", "import nacl.bindings").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s cannot import nacl (%v): .ci/run installs python3-nacl", python, err)
		}
		t.Skipf("%s cannot import nacl: apt-get install python3-nacl", python)
	}
	id := NewID()
	plain, sealed := sealedRecord(id)
	fields := map[string]string{}
	want := map[string]string{}
	for k, v := range sealed.Values {
		fields["v:"+k], want["v:"+k] = base64.StdEncoding.EncodeToString([]byte(v)), plain.Values[k]
	}
	fields["f:notice"], want["f:notice"] = base64.StdEncoding.EncodeToString([]byte(sealed.Flash["notice"])), plain.Flash["notice"]
	fields["m:user-agent"], want["m:user-agent"] = base64.StdEncoding.EncodeToString([]byte(sealed.UserAgent)), plain.UserAgent
	in, _ := json.Marshal(map[string]any{"id": id, "fields": fields})
	cmd := exec.Command(python, "testdata/unseal.py")
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("unseal.py: %v: %s", err, out)
	}
	got := map[string]string{}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("unseal.py printed %s: %v", out, err)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("unseal.py opened %v, want %v", got, want)
	}
}
