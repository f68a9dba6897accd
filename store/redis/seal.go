package redis

import "github.com/caddy-session/caddy-session/session"

// Sealed records (session.Record.Sealed: values sealed at rest, see
// store.Sealing). A sealed session is the hash of a plain one with the
// sealed bytes in place of its values, flash values, User-Agent and
// client network, and
// two differences:
//
//   - ":v" is "2", layout 2, so that a Caddy of a version before sealing,
//     sharing the Redis, refuses the session as written by a newer
//     caddy-session rather than forward its sealed bytes to the app as
//     values, or write plain values into it;
//   - ":identity-tag", when the session has an identity, is the keyed hash
//     of its value, which the index digests instead of the value.
//
// A forward record of a sealed session stays layout 1 and has
// ":successor-key", the successor's key sealed under its own.
const (
	layoutSealed      = "2"
	fieldIdentityTag  = ":identity-tag"
	fieldSuccessorKey = ":successor-key"
)

// layoutOf is the layout version of the hash of rec.
func layoutOf(rec *session.Record) string {
	if rec.Sealed {
		return layoutSealed
	}
	return layoutVersion
}

// appendSeal appends the fields of rec's sealing, as field, value pairs.
func appendSeal(fields []string, rec *session.Record) []string {
	if rec.IdentityTag() != "" {
		fields = append(fields, fieldIdentityTag, rec.IdentityTag())
	}
	if rec.SuccessorKey() != "" {
		fields = append(fields, fieldSuccessorKey, rec.SuccessorKey())
	}
	return fields
}

// decodeSeal reads the fields of rec's sealing; decode reads ":v".
func decodeSeal(fields map[string]string, rec *session.Record) {
	rec.SetIdentityTag(fields[fieldIdentityTag])
	rec.SetSuccessorKey(fields[fieldSuccessorKey])
}

// sealChanges adds to set and del the writes that turn the sealing of
// stored into rec's, written over it in place: a session sealed or
// opened at its first write since seal_values changed, or a new identity
// tag. A forward record is never written in place.
func sealChanges(stored, rec *session.Record, set, del []string) ([]string, []string) {
	if stored.Sealed != rec.Sealed {
		set = append(set, fieldVersion, layoutOf(rec))
	}
	return stringChange(set, del, fieldIdentityTag, stored.IdentityTag(), rec.IdentityTag())
}
