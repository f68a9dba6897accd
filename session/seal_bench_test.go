package session

import "testing"

// BenchmarkUnseal is what seal_values adds to a read: the key of the ID
// (HKDF-SHA256) and the opening of a session of 3 keys, about 100 bytes,
// as the handler does on every load of a sealed session.
func BenchmarkUnseal(b *testing.B) {
	id := NewID()
	hash := HashID(id)
	key := DeriveSealKey(id)
	sealed := &Record{Values: map[string]string{}, Sealed: true}
	for k, v := range map[string]string{
		"user":  "user-000042@example.com",
		"roles": "admin,editor,viewer",
		"cart":  "sku-1001,sku-1002,sku-1003,sku-1004,sku-1005,sku-1006",
	} {
		sealed.Values[k] = key.SealValue(hash, k, v)
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := sealed.Clone()
		if err := DeriveSealKey(id).Open(hash, rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeriveSealKey is the key of an ID alone.
func BenchmarkDeriveSealKey(b *testing.B) {
	id := NewID()
	b.ReportAllocs()
	for b.Loop() {
		DeriveSealKey(id)
	}
}
