// Package session is the core of caddy-session, free of Caddy: session IDs
// and their hashes, the session record and its expiry rules, the header
// protocol spoken with the upstream application, and the session cookie.
//
// Every function that depends on the time takes it as a parameter, so the
// rules can be tested without sleeping.
package session
