package session

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"io"

	"golang.org/x/crypto/hkdf"
)

// csrfTokenInfo is the HKDF context of the anti-CSRF token: it keeps the
// token apart from any other key derived from the same session ID.
const csrfTokenInfo = "caddy-session csrf token v1"

// csrfTokenBytes is the length of a token before encoding: 256 bits.
const csrfTokenBytes = 32

// CSRFToken returns the anti-CSRF token of the session with this ID: 32
// bytes derived from the ID by HKDF-SHA256, in unpadded URL-safe base64.
// Nothing is stored: the token is the same on every request of the
// session, and a new ID (a login, X-Session-Renew) gives a new token.
// It is a one-way function of the ID, so a token shown in a page or a log
// opens no session.
func CSRFToken(id string) string {
	var key [csrfTokenBytes]byte
	// HKDF's reader fails only past 255 hash lengths of output.
	_, _ = io.ReadFull(hkdf.New(sha256.New, []byte(id), nil, []byte(csrfTokenInfo)), key[:])
	return base64.RawURLEncoding.EncodeToString(key[:])
}

// SameCSRFToken reports whether got is want, in time that does not depend
// on where they differ.
func SameCSRFToken(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
