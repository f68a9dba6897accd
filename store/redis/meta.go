package redis

import (
	"strings"

	"github.com/caddy-session/caddy-session/session"
)

// The session's metadata (session.Record's Remembered, UserAgent,
// ClientNet and Flash) is kept in reserved fields of its hash, each present only when
// set, so that a session without metadata is the hash it was before they
// existed and takes no byte more:
//
//   - ":remembered": "1" for a remember-me session;
//   - ":user-agent": the User-Agent seen at its creation;
//   - ":client-net": the network of the client that created it (bind ip);
//   - ":flash:<key>": each flash value under its key.
//
// They start with ':' as every reserved field does, so they never collide
// with a session key, nor a flash key with either. The layout stays 1:
// the previous version's decoder skips every field that starts with ':'
// and that it does not know, so a Caddy of that version sharing the Redis
// during a rolling upgrade reads such a session as one without metadata,
// and never shows a flash value as a key. Its writes in place (HSET and
// HDEL of what changed) leave these fields alone; a rotation it makes
// writes the record it decoded, and so drops them.
const (
	fieldRemembered = ":remembered"
	fieldUserAgent  = ":user-agent"
	fieldClientNet  = ":client-net"
	flashPrefix     = ":flash:"
)

// appendMeta appends the fields of rec's metadata, as field, value pairs,
// flash values in key order.
func appendMeta(fields []string, rec *session.Record) []string {
	if rec.Remembered {
		fields = append(fields, fieldRemembered, "1")
	}
	if rec.UserAgent != "" {
		fields = append(fields, fieldUserAgent, rec.UserAgent)
	}
	if rec.ClientNet != "" {
		fields = append(fields, fieldClientNet, rec.ClientNet)
	}
	for _, k := range sortedKeys(rec.Flash) {
		fields = append(fields, flashPrefix+k, rec.Flash[k])
	}
	return appendSeal(fields, rec)
}

// decodeMeta reads the metadata of fields into rec. Flash values are read
// by decode, in its one pass over the fields (flashKey).
func decodeMeta(fields map[string]string, rec *session.Record) error {
	if v, ok := fields[fieldRemembered]; ok {
		if v != "1" {
			return corrupt("%s is %q, not 1", fieldRemembered, v)
		}
		rec.Remembered = true
	}
	rec.UserAgent = fields[fieldUserAgent]
	rec.ClientNet = fields[fieldClientNet]
	decodeSeal(fields, rec)
	return nil
}

// flashKey is the flash key of the reserved field f, if it holds one.
func flashKey(f string) (string, bool) {
	return strings.CutPrefix(f, flashPrefix)
}

// metaChanges are the writes that turn the metadata of stored, the record
// read under a key, into that of rec, written over it in place: field,
// value pairs to set and fields to delete. None when they are the same,
// as in every update that only changes keys or moves deadlines.
func metaChanges(stored, rec *session.Record) (set, del []string) {
	if stored.Remembered != rec.Remembered {
		if rec.Remembered {
			set = append(set, fieldRemembered, "1")
		} else {
			del = append(del, fieldRemembered)
		}
	}
	set, del = stringChange(set, del, fieldUserAgent, stored.UserAgent, rec.UserAgent)
	set, del = stringChange(set, del, fieldClientNet, stored.ClientNet, rec.ClientNet)
	for _, k := range sortedKeys(rec.Flash) {
		if v, ok := stored.Flash[k]; !ok || v != rec.Flash[k] {
			set = append(set, flashPrefix+k, rec.Flash[k])
		}
	}
	for _, k := range sortedKeys(stored.Flash) {
		if _, ok := rec.Flash[k]; !ok {
			del = append(del, flashPrefix+k)
		}
	}
	return sealChanges(stored, rec, set, del)
}

// stringChange appends the write that turns the string field f from was
// to is, if they differ: a set, or a delete when is is "" (a field is
// present only when set).
func stringChange(set, del []string, f, was, is string) ([]string, []string) {
	switch {
	case was == is:
	case is != "":
		set = append(set, f, is)
	default:
		del = append(del, f)
	}
	return set, del
}
