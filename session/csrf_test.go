package session

import (
	"strings"
	"testing"
)

func TestCSRFToken(t *testing.T) {
	id, other := NewID(), NewID()
	tok := CSRFToken(id)
	if len(tok) != 43 || !ValidID(tok) {
		t.Fatalf("token %q is not 43 characters of URL-safe base64", tok)
	}
	if CSRFToken(id) != tok {
		t.Fatal("the token of one ID changed between two calls")
	}
	if CSRFToken(other) == tok {
		t.Fatal("two IDs have one token")
	}
	if tok == id || strings.Contains(tok, id[:8]) {
		t.Fatal("the token shows the ID")
	}
	if tok == HashID(id).String()[:43] {
		t.Fatal("the token is the hash kept at rest")
	}
	// A fixed vector, so that a change of derivation (which would refuse
	// every form rendered before an upgrade) is a choice, not an accident.
	if got := CSRFToken("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"); got != csrfVector {
		t.Fatalf("CSRFToken of the zero ID = %q, want %q", got, csrfVector)
	}
}

func TestSameCSRFToken(t *testing.T) {
	tok := CSRFToken(NewID())
	for _, tc := range []struct {
		got  string
		want bool
	}{
		{tok, true},
		{"", false},
		{tok[:42], false},
		{tok + "A", false},
		{strings.ToUpper(tok), strings.ToUpper(tok) == tok},
		{CSRFToken(NewID()), false},
	} {
		if SameCSRFToken(tc.got, tok) != tc.want {
			t.Errorf("SameCSRFToken(%q, %q) = %v", tc.got, tok, !tc.want)
		}
	}
}

// csrfVector is CSRFToken of the ID of 43 'A's, as OpenSSL computes it:
//
//	openssl kdf -keylen 32 -kdfopt digest:SHA256 \
//		-kdfopt key:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA \
//		-kdfopt "info:caddy-session csrf token v1" -binary HKDF | basenc --base64url
const csrfVector = "khxBOQxw4tTJBtFUPHsYxvKiFFihqpTEQe_uJ48AZsM"
