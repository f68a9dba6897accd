package redis

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
)

// hashOf is the session hash HSET would store for encode's fields.
func hashOf(fields []string) map[string]string {
	m := make(map[string]string, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		m[fields[i]] = fields[i+1]
	}
	return m
}

func sameTimes(a, b *session.Record) bool {
	return a.Created.UnixNano() == b.Created.UnixNano() && a.LastSeen.UnixNano() == b.LastSeen.UnixNano() &&
		a.IdleDeadline.UnixNano() == b.IdleDeadline.UnixNano() && a.AbsoluteDeadline.UnixNano() == b.AbsoluteDeadline.UnixNano()
}

// sameMeta reports whether a and b have the same realm, successor and
// session metadata.
func sameMeta(a, b *session.Record) bool {
	return a.Realm == b.Realm && (a.Successor == nil) == (b.Successor == nil) &&
		(a.Successor == nil || *a.Successor == *b.Successor) &&
		a.Remembered == b.Remembered && a.UserAgent == b.UserAgent && a.ClientNet == b.ClientNet && maps.Equal(a.Flash, b.Flash)
}

// FuzzDecodeHash decodes any session hash a Redis could hand back
// (lines "field=value"): it never panics, a reserved field never becomes a
// session key, and what decodes survives encode and decode unchanged.
func FuzzDecodeHash(f *testing.F) {
	rec := &session.Record{
		Created: time.Unix(0, 1741942013589793238), LastSeen: time.Unix(0, 1741942433589793238),
		IdleDeadline: time.Unix(0, 1741944233589793238), AbsoluteDeadline: time.Unix(0, 1741985213589793238),
		Values: map[string]string{"user": "alice", "cart": "apple,pear"},
	}
	var seed []string
	for k, v := range hashOf(encode(rec, "user")) {
		seed = append(seed, k+"="+v)
	}
	f.Add(strings.Join(seed, "\n"))
	f.Add(":v=1\n:created=-9223372036854775808\n:seen=9223372036854775807\n:idle=0\n:absolute=1\n:rev=7\n:future=x\n=empty\nuser=")
	f.Add(":v=2\n:created=1")
	f.Add(":v=1\n:created=1e9\n:seen=0x10\n:idle= 1\n:absolute=+1")
	f.Add(":v=1\n:created=1\n:seen=1\n:idle=2\n:absolute=2\n:realm=shop\n:next=" + session.HashID("next").String())
	f.Add(":v=1\n:created=1\n:seen=1\n:idle=2\n:absolute=2\n:next=ABC")
	f.Add(":v=1\n:created=1\n:seen=1\n:idle=2\n:absolute=2\n:remembered=1\n:user-agent=curl\n:flash:notice=hi\n:flash:=\nnotice=key")
	f.Add(":v=1\n:created=1\n:seen=1\n:idle=2\n:absolute=2\n:remembered=0")
	f.Fuzz(func(t *testing.T, raw string) {
		fields := map[string]string{}
		for line := range strings.SplitSeq(raw, "\n") {
			k, v, _ := strings.Cut(line, "=")
			fields[k] = v
		}
		rec, identity, err := decode(fields)
		if err != nil {
			if rec != nil {
				t.Fatalf("decode returned a record with error %v", err)
			}
			return
		}
		for k, v := range rec.Values {
			if strings.HasPrefix(k, ":") {
				t.Fatalf("reserved field %q became a session key", k)
			}
			if fields[k] != v {
				t.Fatalf("key %q = %q, the hash says %q", k, v, fields[k])
			}
		}
		again, identity2, err := decode(hashOf(encode(rec, identity)))
		if err != nil {
			t.Fatalf("decode(encode(x)): %v", err)
		}
		if identity2 != identity || !maps.Equal(again.Values, rec.Values) || !sameTimes(again, rec) || !sameMeta(again, rec) {
			t.Fatalf("decode(encode(x)) = %+v %q, want %+v %q", again, identity2, rec, identity)
		}
		if rec.Realm != fields[fieldRealm] {
			t.Fatalf("realm %q, the hash says %q", rec.Realm, fields[fieldRealm])
		}
	})
}

// FuzzCodecRoundTrip: any record of valid keys decodes from its hash to
// itself. In kv, a line whose key starts with '!' is a flash value, and one
// whose key starts with '@' makes the session remembered with its value as
// the User-Agent.
func FuzzCodecRoundTrip(f *testing.F) {
	f.Add(int64(0), int64(1), int64(2), int64(3), "user", "user=alice\ncart=apple", "", false)
	f.Add(int64(0), int64(1), int64(2), int64(3), "user", "user=alice\n!notice=saved\n!user=\n@=curl/8.5.0", "shop", false)
	f.Add(int64(0), int64(1), int64(2), int64(3), "user", "user=\x01sealed\n$=a-tag", "shop", false)
	f.Add(int64(0), int64(1), int64(2), int64(3), "", "&=\x01a sealed key", "shop", true)
	f.Add(int64(-1), int64(-1<<62), int64(1<<62), int64(9_223_372_036_854_775_807), "", "a-b=\n_=\xff", "shop", true)
	f.Fuzz(func(t *testing.T, created, seen, idle, absolute int64, identity, kv, realm string, forward bool) {
		rec := &session.Record{
			Created: time.Unix(0, created), LastSeen: time.Unix(0, seen),
			IdleDeadline: time.Unix(0, idle), AbsoluteDeadline: time.Unix(0, absolute),
			Values: map[string]string{}, Realm: realm,
		}
		if forward {
			next := session.HashID(kv)
			rec.Successor = &next
		}
		for line := range strings.SplitSeq(kv, "\n") {
			k, v, _ := strings.Cut(line, "=")
			switch {
			case strings.HasPrefix(k, "@"):
				rec.Remembered, rec.UserAgent = true, v
			case strings.HasPrefix(k, "%"):
				rec.ClientNet = v
			case strings.HasPrefix(k, "$"):
				rec.Sealed = true
				rec.SetIdentityTag(v)
			case strings.HasPrefix(k, "&"):
				rec.SetSuccessorKey(v)
			case strings.HasPrefix(k, "!") && session.ValidKey(k[1:]):
				if rec.Flash == nil {
					rec.Flash = map[string]string{}
				}
				rec.Flash[strings.ToLower(k[1:])] = v
			case session.ValidKey(k):
				rec.Values[strings.ToLower(k)] = v
			}
		}
		if identity != "" && !session.ValidKey(identity) {
			identity = "user"
		}
		got, gotIdentity, err := decode(hashOf(encode(rec, identity)))
		if err != nil {
			t.Fatalf("decode(encode(x)): %v", err)
		}
		if gotIdentity != identity || !maps.Equal(got.Values, rec.Values) || !sameTimes(got, rec) || !sameMeta(got, rec) ||
			got.Sealed != rec.Sealed || got.IdentityTag() != rec.IdentityTag() || got.SuccessorKey() != rec.SuccessorKey() {
			t.Fatalf("decode(encode(x)) = %+v %q, want %+v %q", got, gotIdentity, rec, identity)
		}
	})
}
