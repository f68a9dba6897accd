package bolt

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// FuzzCodecRoundTrip: any record, with any times, keys, values, realm and
// metadata, a session or a forward record, decodes from its encoding to
// itself (times to the nanosecond, clamped to what an int64 holds), and
// encodes canonically. In kv, a line whose key starts with '!' is a flash
// value, and one whose key starts with '@' makes the session remembered
// with its value as the User-Agent.
func FuzzCodecRoundTrip(f *testing.F) {
	f.Add(int64(0), int64(1), int64(2), int64(3), "user", "user=alice\ncart=apple,pear", "", false)
	f.Add(int64(0), int64(1), int64(2), int64(3), "user", "user=alice\n!notice=saved\n!user=\n@=curl/8.5.0\n%=198.51.100.0/24", "shop", false)
	f.Add(int64(0), int64(1), int64(2), int64(3), "user", "user=\x01sealed\n$=a-tag\n&=", "shop", false)
	f.Add(int64(0), int64(1), int64(2), int64(3), "", "&=\x01a sealed key", "shop", true)
	f.Add(int64(-1), int64(-1<<62), int64(1<<62), int64(9_223_372_036_854_775_807), "", "", "shop", true)
	f.Add(int64(1741942013589793238), int64(1741942433589793238), int64(1741944233589793238), int64(1741985213589793238), "rôle", "=\n==\n\xff=\x00", "\x00", false)
	f.Fuzz(func(t *testing.T, created, seen, idle, absolute int64, identity, kv, realm string, forward bool) {
		rec := &session.Record{
			Created:          time.Unix(0, created),
			LastSeen:         time.Unix(0, seen),
			IdleDeadline:     time.Unix(0, idle),
			AbsoluteDeadline: time.Unix(0, absolute),
			Values:           map[string]string{},
			Realm:            realm,
		}
		for line := range strings.SplitSeq(kv, "\n") {
			k, v, _ := strings.Cut(line, "=")
			switch {
			case strings.HasPrefix(k, "!"):
				if rec.Flash == nil {
					rec.Flash = map[string]string{}
				}
				rec.Flash[k[1:]] = v
			case strings.HasPrefix(k, "@"):
				rec.Remembered, rec.UserAgent = true, v
			case strings.HasPrefix(k, "%"):
				rec.ClientNet = v
			case strings.HasPrefix(k, "$"):
				rec.Sealed = true
				rec.SetIdentityTag(v)
			case strings.HasPrefix(k, "&"):
				rec.SetSuccessorKey(v)
			default:
				rec.Values[k] = v
			}
		}
		if forward {
			next := session.HashID(kv)
			rec.Successor = &next
		}
		b := encode(rec, identity)
		got, gotIdentity, err := decode(b)
		if err != nil {
			t.Fatalf("decode(encode(x)): %v", err)
		}
		if gotIdentity != identity || !maps.Equal(got.Values, rec.Values) || got.Realm != realm {
			t.Fatalf("decode(encode(x)) = %q %q %q, want %q %q %q", got.Values, gotIdentity, got.Realm, rec.Values, identity, realm)
		}
		if got.Remembered != rec.Remembered || got.UserAgent != rec.UserAgent || got.ClientNet != rec.ClientNet || !maps.Equal(got.Flash, rec.Flash) {
			t.Fatalf("metadata %v %q %q %q, want %v %q %q %q", got.Remembered, got.UserAgent, got.ClientNet, got.Flash, rec.Remembered, rec.UserAgent, rec.ClientNet, rec.Flash)
		}
		if got.Sealed != rec.Sealed || got.IdentityTag() != rec.IdentityTag() || got.SuccessorKey() != rec.SuccessorKey() {
			t.Fatalf("sealing %v %q %q, want %v %q %q", got.Sealed, got.IdentityTag(), got.SuccessorKey(), rec.Sealed, rec.IdentityTag(), rec.SuccessorKey())
		}
		if got.Forwarded() != forward || isForward(b) != forward || forward && *got.Successor != *rec.Successor {
			t.Fatalf("successor %v (isForward %v), want %v", got.Successor, isForward(b), rec.Successor)
		}
		for i, pair := range [][2]time.Time{
			{got.Created, rec.Created}, {got.LastSeen, rec.LastSeen},
			{got.IdleDeadline, rec.IdleDeadline}, {got.AbsoluteDeadline, rec.AbsoluteDeadline},
		} {
			if pair[0].UnixNano() != pair[1].UnixNano() {
				t.Fatalf("time %d: %d, want %d", i, pair[0].UnixNano(), pair[1].UnixNano())
			}
		}
		if again := encode(got, gotIdentity); string(again) != string(b) {
			t.Fatalf("the encoding is not canonical:\n%x\n%x", b, again)
		}
		if exp, err := expiresAtOf(b); err != nil || exp.UnixNano() != rec.ExpiresAt().UnixNano() {
			t.Fatalf("expiresAtOf = %v, %v; want %v", exp, err, rec.ExpiresAt())
		}
	})
}

// fuzzResponses splits raw into responses ("\n\n" between them), each a
// header of "Name: value" lines, names kept exactly as written.
func fuzzResponses(raw string) []http.Header {
	var out []http.Header
	for block := range strings.SplitSeq(raw, "\n\n") {
		h := http.Header{}
		for line := range strings.SplitSeq(block, "\n") {
			if name, value, ok := strings.Cut(line, ": "); ok {
				h[name] = append(h[name], value)
			}
		}
		out = append(out, h)
	}
	return out
}

// FuzzUpdateSequence sends a sequence of the upstream's responses through
// the command parser and into a real store, as the handler does, and
// checks the store against a model after each one: no sequence of
// commands yields a session over the limits; a refused patch changes
// nothing; a renewal or a new session leaves nothing under the old hash;
// the indexes stay consistent.
func FuzzUpdateSequence(f *testing.F) {
	f.Add("X-Session-Set-User: alice\nX-Session-Set-Cart: apple\n\nX-Session-Set-Cart: pear\nX-Session-Renew: true\n\nX-Session-Delete: cart")
	f.Add("X-Session-Set-A: 1\nX-Session-Set-B: 2\nX-Session-Set-C: 3\n\nX-Session-Set-D: 4\nX-Session-Set-E: 5")
	f.Add("X-Session-Set-User: bob\n\nX-Session-Destroy: true\nX-Session-Set-User: eve\n\nX-Session-Destroy: true")
	f.Add("X-Session-Set-V: " + strings.Repeat("x", 64) + "\n\nX-Session-Set-W: " + strings.Repeat("y", 65))
	f.Add("X-Session-Set-A_b: 1\n\nX-Session-Set-A-b: 2\n\nX-Session-Delete: a_b\nX-Session-Set-A-b: 3")
	f.Fuzz(func(t *testing.T, raw string) {
		lim := session.Limits{Keys: 4, ValueSize: 64, SessionSize: 256}
		p := session.NewProtocol(session.DefaultHeaderPrefix, nil, lim)
		st, err := Open(filepath.Join(t.TempDir(), "s.db"), Options{SweepInterval: -1, NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ctx := t.Context()

		var (
			model   *session.Record // nil: no session
			current session.Hash
		)
		for i, h := range fuzzResponses(raw) {
			patch, err := p.TakeCommands(h)
			if err != nil || patch == nil {
				continue // refused or empty: the handler writes nothing
			}
			if model == nil && len(patch.Set) == 0 {
				continue // only a set creates a session
			}
			u := handlerUpdate(i, model, current, patch, lim)

			want, ruleErr := modelStep(model, patch, lim)

			res, err := st.Update(ctx, u)
			var re *session.RuleError
			switch {
			case ruleErr != nil:
				if !errors.As(err, &re) {
					t.Fatalf("response %d: the model refuses (%v), the store says %v", i, ruleErr, err)
				}
				checkHolds(t, st, current, model)
				continue
			case err != nil:
				t.Fatalf("response %d: %v", i, err)
			}
			wantAt := current
			if u.NewHash != nil {
				wantAt = *u.NewHash
			}
			checkResult(t, i, res, want, wantAt, lim)
			if u.NewHash != nil && u.HasHash {
				// The old ID opens nothing: it holds a forward record to
				// the new one after a renewal, and nothing at all after a
				// destroy.
				checkForward(t, st, u.Hash, u.NewHash, patch.Destroy)
			}
			if u.NewHash != nil {
				current = *u.NewHash
			}
			model = want
			checkHolds(t, st, current, model)
		}
		checkConsistent(t, st)
	})
}

// handlerUpdate is the update the handler makes of response i's patch,
// for a request that loaded model under current (nil: none).
func handlerUpdate(i int, model *session.Record, current session.Hash, patch *session.Patch, lim session.Limits) store.Update {
	u := store.Update{Patch: patch, Identity: "user", Realm: "shop", Now: base, Timeouts: timeouts, Limits: lim}
	if model != nil {
		u.Hash, u.HasHash, u.Seen = current, true, model.Values["user"]
	}
	sets := len(patch.Set) > 0
	if (model == nil || patch.Destroy) && sets || model != nil && !patch.Destroy && patch.Renew {
		next := session.HashID(fmt.Sprintf("id-%d", i))
		u.NewHash = &next
	}
	return u
}

// checkResult checks the result of response i against the model's want,
// stored under wantAt.
func checkResult(t *testing.T, i int, res store.Result, want *session.Record, wantAt session.Hash, lim session.Limits) {
	t.Helper()
	rec := res.Record
	if (rec == nil) != (want == nil) || rec != nil && !maps.Equal(rec.Values, want.Values) {
		t.Fatalf("response %d: the store holds %v, the model %v", i, rec, want)
	}
	if rec == nil {
		return
	}
	if len(rec.Values) > lim.Keys || rec.Size() > lim.SessionSize {
		t.Fatalf("response %d: a session over the limits: %d keys, %d bytes", i, len(rec.Values), rec.Size())
	}
	if res.Hash != wantAt || res.Followed || rec.Realm != "shop" {
		t.Fatalf("response %d: the session is at %s (followed %v, realm %q), want %s in realm shop", i, res.Hash.Short(), res.Followed, rec.Realm, wantAt.Short())
	}
}

// modelStep is what the session should hold after patch, model being what
// it holds before (nil: nothing), or the RuleError the patch causes.
func modelStep(model *session.Record, patch *session.Patch, lim session.Limits) (*session.Record, error) {
	want := model
	if patch.Destroy {
		want = nil
	}
	if !patch.Changes() {
		return want, nil
	}
	if want == nil {
		want = timeouts.NewRecord(base)
	} else {
		want = want.Clone()
	}
	return want, patch.ApplyTo(want, lim)
}

// checkForward checks that the record under old is a forward record to
// next, or none if gone.
func checkForward(t *testing.T, st *Store, old session.Hash, next *session.Hash, gone bool) {
	t.Helper()
	got, err := st.Load(t.Context(), old, base, timeouts)
	switch {
	case gone && !errors.Is(err, store.ErrNotFound):
		t.Fatalf("session %s: %v, %v; want none", old.Short(), got, err)
	case !gone && (err != nil || !got.Forwarded() || *got.Successor != *next || len(got.Values) != 0):
		t.Fatalf("session %s: %+v, %v; want a forward record to %s", old.Short(), got, err, next.Short())
	}
}

// checkHolds checks that the store holds want under hash (nil: nothing).
func checkHolds(t *testing.T, st *Store, hash session.Hash, want *session.Record) {
	t.Helper()
	got, err := st.Load(t.Context(), hash, base, timeouts)
	if want == nil {
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session %s: %v, %v; want none", hash.Short(), got, err)
		}
		return
	}
	if err != nil || !maps.Equal(got.Values, want.Values) || got.Realm != "shop" || got.Forwarded() {
		t.Fatalf("session %s: %+v, %v; want %v in realm shop", hash.Short(), got, err, want.Values)
	}
}
