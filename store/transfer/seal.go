package transfer

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// A session sealed at rest (seal_values) is exported as it is stored,
// since its values open only with its ID, which no store holds: its
// keys, times and realm as for any session, and its values, flash values,
// User-Agent and client network as the sealed bytes, in standard base64,
// with "sealed": true and its "identity_tag". Such a line is of version
// VersionSealed, which a reader of version 1 refuses rather than import
// the sealed bytes as values; a plain session is still written as version
// 1. The import puts back exactly what was stored: the sealed bytes name
// the session's hash, which the import keeps, so its ID opens them there.
// The sealed fields are base64, which is UTF-8; a sealed session with
// another string that is not (its realm) is a line of VersionBytes, with
// "sealed": true.
const VersionSealed = 2

// sealedLine makes l, the line of the sealed record r, carry r's sealed
// fields in base64.
func sealedLine(l *Line, r *session.Record) {
	l.V, l.Sealed, l.IdentityTag = VersionSealed, true, Bytes(r.IdentityTag())
	l.Values = encodeAll(r.Values)
	if len(r.Flash) > 0 {
		l.Flash = encodeAll(r.Flash)
	}
	l.UserAgent, l.ClientNet = encode64(r.UserAgent), encode64(r.ClientNet)
}

func encode64(s string) Bytes { return Bytes(base64.StdEncoding.EncodeToString([]byte(s))) }

func encodeAll(m map[string]string) map[string]Bytes {
	out := make(map[string]Bytes, len(m))
	for k, v := range m {
		out[k] = encode64(v)
	}
	return out
}

// sealedEntry is Entry for a line with "sealed": true, whose version
// checkVersion accepted.
func (l Line) sealedEntry() (store.Entry, error) {
	plain := l
	plain.Sealed, plain.IdentityTag = false, ""
	var err error
	decode := func(what string, s Bytes) Bytes {
		b, derr := base64.StdEncoding.DecodeString(string(s))
		if derr != nil && err == nil {
			err = fmt.Errorf("%s of a sealed session is not base64: %v", what, derr)
		}
		return Bytes(b)
	}
	decodeAll := func(what string, m map[string]Bytes) map[string]Bytes {
		if m == nil {
			return nil
		}
		out := make(map[string]Bytes, len(m))
		for k, v := range m {
			out[k] = decode(fmt.Sprintf("%s %q", what, k), v)
		}
		return out
	}
	plain.Values = decodeAll("the value of", l.Values)
	plain.Flash = decodeAll("the flash value", l.Flash)
	plain.UserAgent, plain.ClientNet = decode(`"user_agent"`, l.UserAgent), decode(`"client_net"`, l.ClientNet)
	if err != nil {
		return store.Entry{}, err
	}
	e, err := plain.plainEntry()
	if err != nil {
		return store.Entry{}, err
	}
	if e.Identity != "" && l.IdentityTag == "" {
		return store.Entry{}, errors.New(`"identity_tag" is missing: a sealed session indexed under an identity key is indexed by its tag`)
	}
	e.Record.Sealed = true
	e.Record.SetIdentityTag(string(l.IdentityTag))
	return e, nil
}
