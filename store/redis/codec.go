package redis

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// errCorrupt is wrapped by every decoding error.
var errCorrupt = errors.New("corrupt session record")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errCorrupt, fmt.Sprintf(format, args...))
}

// encode returns the fields of the session hash of rec, indexed under
// identity, for HSET.
func encode(rec *session.Record, identity string) []string {
	fields := make([]string, 0, 2*(len(rec.Values)+len(rec.Flash)+10)+2)
	fields = append(fields,
		fieldVersion, layoutOf(rec),
		fieldCreated, nanos(rec.Created),
		fieldSeen, nanos(rec.LastSeen),
		fieldIdle, nanos(rec.IdleDeadline),
		fieldAbsolute, nanos(rec.AbsoluteDeadline))
	if identity != "" {
		fields = append(fields, fieldIdentity, identity)
	}
	if rec.Realm != "" {
		fields = append(fields, fieldRealm, rec.Realm)
	}
	if rec.Successor != nil {
		fields = append(fields, fieldNext, rec.Successor.String())
	}
	fields = appendMeta(fields, rec)
	for _, k := range sortedKeys(rec.Values) {
		fields = append(fields, k, rec.Values[k])
	}
	return fields
}

// decode parses the fields of a session hash into a record and the
// identity key name it is indexed under.
func decode(fields map[string]string) (*session.Record, string, error) {
	switch v := fields[fieldVersion]; {
	case v == "":
		return nil, "", corrupt("no %s field; is the key from another program? choose another key_prefix", fieldVersion)
	case v != layoutVersion && v != layoutSealed:
		return nil, "", corrupt("unknown layout version %q; was it written by a newer caddy-session?", v)
	}
	rec := &session.Record{Values: make(map[string]string, len(fields)), Sealed: fields[fieldVersion] == layoutSealed}
	times := []struct {
		field string
		into  *time.Time
	}{
		{fieldCreated, &rec.Created},
		{fieldSeen, &rec.LastSeen},
		{fieldIdle, &rec.IdleDeadline},
		{fieldAbsolute, &rec.AbsoluteDeadline},
	}
	for _, f := range times {
		t, err := parseNanos(fields, f.field)
		if err != nil {
			return nil, "", err
		}
		*f.into = t
	}
	for k, v := range fields {
		// Reserved fields start with ':'; one this version does not
		// know is left alone.
		if !strings.HasPrefix(k, ":") {
			rec.Values[k] = v
		} else if name, ok := flashKey(k); ok {
			if rec.Flash == nil {
				rec.Flash = map[string]string{}
			}
			rec.Flash[name] = v
		}
	}
	if err := decodeMeta(fields, rec); err != nil {
		return nil, "", err
	}
	rec.Realm = fields[fieldRealm]
	next, err := parseNext(fields)
	if err != nil {
		return nil, "", err
	}
	rec.Successor = next
	return rec, fields[fieldIdentity], nil
}

// parseNext reads the successor of a forward record, nil if the fields
// are a session's.
func parseNext(fields map[string]string) (*session.Hash, error) {
	v, ok := fields[fieldNext]
	if !ok {
		return nil, nil
	}
	h, err := session.ParseHash(v)
	if err != nil {
		return nil, corrupt("%s is %q, not a session hash", fieldNext, v)
	}
	return &h, nil
}

// decodeDeadlines parses just the deadlines, and whether the record is a
// forward record, which is what Count needs.
func decodeDeadlines(fields map[string]string) (*session.Record, error) {
	idle, err := parseNanos(fields, fieldIdle)
	if err != nil {
		return nil, err
	}
	absolute, err := parseNanos(fields, fieldAbsolute)
	if err != nil {
		return nil, err
	}
	next, err := parseNext(fields)
	if err != nil {
		return nil, err
	}
	return &session.Record{IdleDeadline: idle, AbsoluteDeadline: absolute, Successor: next}, nil
}

func parseNanos(fields map[string]string, field string) (time.Time, error) {
	v, ok := fields[field]
	if !ok {
		return time.Time{}, corrupt("no %s field", field)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, corrupt("%s is %q, not unix nanoseconds", field, v)
	}
	return time.Unix(0, n).UTC(), nil
}

// Bounds of the times an int64 of nanoseconds can hold.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// nanos is t in decimal unix nanoseconds, clamped to what an int64 can
// hold: UnixNano is undefined outside the years 1678 to 2262, and a record
// must not wrap around to a deadline long past because of an absurd
// timeout.
func nanos(t time.Time) string {
	switch {
	case t.Before(minTime):
		return strconv.FormatInt(math.MinInt64, 10)
	case t.After(maxTime):
		return strconv.FormatInt(math.MaxInt64, 10)
	}
	return strconv.FormatInt(t.UnixNano(), 10)
}

// sortedKeys returns the keys of m in order, so that the same record is
// always written the same way.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
