package caddysession

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// SealConfig turns on values sealed at rest (seal_values): every value,
// flash value and recorded User-Agent of a session is stored encrypted
// under a key derived from the session's ID, which the store never holds
// (see session/seal.go and the README), and the identity index keys a
// user by a keyed hash of the name rather than the name.
type SealConfig struct {
	// IndexKey is the secret of the keyed hash (HMAC-SHA256) under which
	// the identity index finds the sessions of a user: at least 32 bytes,
	// such as the output of `openssl rand -base64 32`. Placeholders are
	// replaced when the config loads ({env.SESSION_INDEX_KEY}). Every
	// instance that shares a store must have the same one. Changing it
	// loses revocation by user of the sessions sealed before, until their
	// next write. Default: with the bolt store, a random secret generated
	// once and kept in Caddy's storage (never in the session store);
	// required with any other store.
	IndexKey string `json:"index_key,omitempty"`
}

// indexKeyStorageKey is where a generated index secret is kept in Caddy's
// storage.
const indexKeyStorageKey = "caddy-session/seal_index_key"

// provisionSeal sets up sealing, once the store is known: the index key,
// and the store wrapped so that revocations by user find sealed sessions.
func (h *Handler) provisionSeal(ctx caddy.Context) error {
	if h.SealValues == nil {
		h.lookupIndex = h.keptIndexKey(ctx)
	} else {
		secret, err := h.SealValues.secret(ctx, h.backend, ctx.Storage)
		if err != nil {
			return err
		}
		if h.sealIndex, err = session.NewIndexKey(secret); err != nil {
			return fmt.Errorf("seal_values: index_key: %v", err)
		}
		h.lookupIndex = h.sealIndex
	}
	if h.lookupIndex != nil {
		h.store = sealedIndex{Store: h.store, keys: []*session.IndexKey{h.lookupIndex}}
	}
	return nil
}

// keptIndexKey is, for a bolt store with seal_values off, the index key
// seal_values generated and kept in Caddy's storage when it was on, if it
// is there: sessions sealed then keep their sealed index entries until
// their next write, and logout everywhere must still find one that stays
// idle meanwhile. A configured index_key is gone with the option (README,
// "Turning it on and off").
func (h *Handler) keptIndexKey(ctx caddy.Context) *session.IndexKey {
	st := configStorage(ctx)
	if h.backend != "bolt" || st == nil {
		return nil
	}
	secret, err := st.Load(ctx, indexKeyStorageKey)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			h.logger.Warn("reading the index secret seal_values kept in Caddy's storage; logout everywhere and revocations by user miss sessions sealed while seal_values was on until their next write",
				zap.Error(err))
		}
		return nil
	}
	key, err := session.NewIndexKey(secret)
	if err != nil {
		h.logger.Warn("the index secret in Caddy's storage is not one seal_values made; sessions sealed under it are missed by revocations by user until their next write",
			zap.String("storage_key", indexKeyStorageKey), zap.Error(err))
		return nil
	}
	return key
}

// secret is the configured index secret, or, for the bolt store, the one
// kept in Caddy's storage (which storage returns), made on first use.
func (c *SealConfig) secret(ctx context.Context, backend string, storage func() certmagic.Storage) ([]byte, error) {
	if c.IndexKey != "" {
		return []byte(caddy.NewReplacer().ReplaceKnown(c.IndexKey, "")), nil
	}
	if backend != "bolt" {
		return nil, fmt.Errorf("seal_values: the %s store is shared by instances, which must index users under one secret: set index_key to a secret of at least %d bytes that all of them share (such as index_key {env.SESSION_INDEX_KEY}, made with openssl rand -base64 32)", backend, session.MinIndexSecret)
	}
	st := storage()
	if err := st.Lock(ctx, indexKeyStorageKey); err != nil {
		return nil, fmt.Errorf("seal_values: locking the index secret in Caddy's storage: %v", err)
	}
	defer func() { _ = st.Unlock(context.WithoutCancel(ctx), indexKeyStorageKey) }()
	secret, err := st.Load(ctx, indexKeyStorageKey)
	if err == nil {
		return secret, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("seal_values: reading the index secret from Caddy's storage: %v", err)
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	secret = []byte(base64.RawURLEncoding.EncodeToString(raw[:]))
	if err := st.Store(ctx, indexKeyStorageKey, secret); err != nil {
		return nil, fmt.Errorf("seal_values: keeping the index secret in Caddy's storage: %v", err)
	}
	return secret, nil
}

// unmarshalSealValues reads seal_values, with an optional block:
//
//	seal_values {
//		index_key <secret>
//	}
func (h *Handler) unmarshalSealValues(d *caddyfile.Dispenser) error {
	h.SealValues = new(SealConfig)
	if d.NextArg() {
		return d.ArgErr()
	}
	return eachSubdirective(d, "seal_values", h.SealValues, sealSubdirectives)
}

var sealSubdirectives = map[string]func(c *SealConfig, d *caddyfile.Dispenser) error{
	"index_key": func(c *SealConfig, d *caddyfile.Dispenser) error { return parseOneArg(d, &c.IndexKey) },
}

// unseal returns rec, the session that the request's ID id loaded from
// under hash, opened (a copy: the record may be shared, with the copy
// on_store_error keeps), and the ID's key, for the request's writes; with
// seal_values on, the key of a plain session too, which the next write
// seals. A sealed session that does not open with the ID whose hash it is
// stored under was changed in the store: the request fails as for a
// corrupt record.
func (s *requestState) unseal(id string, hash session.Hash, rec *session.Record) (*session.Record, *session.SealKey, error) {
	key := session.DeriveSealKey(id)
	if !rec.Sealed {
		return rec, key, nil
	}
	opened := rec.Clone()
	if err := key.Open(hash, opened); err != nil {
		s.handler.logger.Error("opening a sealed session; was the store changed by hand?",
			zap.String("session", hash.Short()), zap.Error(err))
		return nil, nil, fmt.Errorf("opening sealed session %s: %w", hash.Short(), err)
	}
	return opened, key, nil
}

// sealing is the store.Sealing of the request's updates: nil when
// seal_values is off and the session was not sealed.
func (s *requestState) sealing() *store.Sealing {
	var key *session.SealKey
	if f := s.fromID; f != nil && (f.sealed || s.handler.sealIndex != nil) {
		// A key derived only for a handler that shares the load seals
		// nothing of this one's: its plain sessions stay plain.
		key = f.sealKey
	}
	if s.handler.sealIndex == nil && key == nil {
		return nil
	}
	return &store.Sealing{Key: key, Index: s.handler.sealIndex}
}

// sealNewID gives u, an update that stores the session under a new ID,
// that ID's key.
func sealNewID(u *store.Update, id string) {
	if u.Seal != nil {
		u.Seal.NewKey = session.DeriveSealKey(id)
	}
}

// sealFlash gives u, a take or a restore of flash values, the request's
// key. The request holds the key of its own ID only: a restore to the
// session its take reached through a rotation starts from its own ID
// again, and follows the forward records, which carry the keys on, to
// where the session now is.
func (s *requestState) sealFlash(u store.Update) store.Update {
	if u.Seal = s.sealing(); u.Seal != nil && s.record != nil {
		u.Hash = s.hash
	}
	return u
}

// holdsIdentity reports whether rec, as the store returned it, is a
// session of user: by its identity value or, sealed, by its identity
// tag, which the index key gives for user.
func (h *Handler) holdsIdentity(rec *session.Record, user string) bool {
	if rec.Sealed {
		return h.sealIndex != nil && rec.IdentityTag() != "" &&
			hmac.Equal([]byte(rec.IdentityTag()), []byte(h.sealIndex.Tag(h.identity, user)))
	}
	v, ok := h.rules.identityOf(rec)
	return ok && v == user
}

// sealedIndex is the handler's store with seal_values on: revocations and
// listings by user look for the sessions indexed under the keyed hash of
// the name (sealed ones) as well as under the name (those stored before
// sealing, until their next write seals them).
type sealedIndex struct {
	store.Store
	// keys are the index keys whose keyed hashes are looked under: the
	// handler's own, or, in the admin API's view of a store (liveStore),
	// the distinct keys of all its handlers, which may each have their
	// own index_key.
	keys []*session.IndexKey
}

// DeleteByIdentity implements store.Store. A session is indexed under one
// of the names looked under and removed by the first look that finds it,
// so the counts add up to the sessions removed.
func (s sealedIndex) DeleteByIdentity(ctx context.Context, realm, key, value string) (int, error) {
	n := 0
	for _, x := range s.keys {
		sealed, err := s.Store.DeleteByIdentity(ctx, realm, key, x.Tag(key, value))
		n += sealed
		if err != nil {
			return n, err
		}
	}
	plain, err := s.Store.DeleteByIdentity(ctx, realm, key, value)
	return n + plain, err
}

// ListByIdentity implements store.Store. A sealed session is listed as
// what can be told of it without its ID: its times, realm and keys, and
// the identity it was found by; its other values are "" and its
// User-Agent is not known.
func (s sealedIndex) ListByIdentity(ctx context.Context, realm, key, value string, now time.Time) ([]store.Entry, error) {
	var all []store.Entry
	for _, x := range s.keys {
		sealed, err := s.Store.ListByIdentity(ctx, realm, key, x.Tag(key, value), now)
		if err != nil {
			return nil, err
		}
		for i, e := range sealed {
			sealed[i].Record = listedSealed(e.Record, key, value)
		}
		if all == nil {
			all = sealed // one key, as a handler has: no copy
		} else {
			all = append(all, sealed...)
		}
	}
	plain, err := s.Store.ListByIdentity(ctx, realm, key, value, now)
	if err != nil {
		return nil, err
	}
	all = append(all, plain...)
	slices.SortFunc(all, func(a, b store.Entry) int { return bytes.Compare(a.Hash[:], b.Hash[:]) })
	all = slices.CompactFunc(all, func(a, b store.Entry) bool { return a.Hash == b.Hash })
	return all[:min(len(all), store.MaxListByIdentity)], nil
}

// listedSealed is the sealed record rec as a listing by the identity key
// with value shows it.
func listedSealed(rec *session.Record, key, value string) *session.Record {
	shown := *rec
	shown.Values = make(map[string]string, len(rec.Values))
	for k := range rec.Values {
		shown.Values[k] = ""
	}
	shown.Values[key] = value
	shown.Flash, shown.UserAgent = nil, ""
	shown.Sealed = false
	shown.SetIdentityTag("")
	return &shown
}

// storeUpdate runs u, an update of the request's session, in the store.
// A handler without seal_values loads a plain session without deriving
// its ID's key; if another handler with seal_values (a reload that turned
// it on, another instance sharing the store) has renewed the session
// while the request was in flight, the successor is sealed and the update
// meets it with no key (store.ErrNoSealKey). It then runs again from the
// request's own session with the key of its ID, which opens the key the
// forward record carries for the successor: the late write lands, plain,
// as this handler writes every session, rather than failing with a 503
// and losing the response's change.
func (s *requestState) storeUpdate(ctx context.Context, u store.Update) (store.Result, error) {
	h := s.handler
	res, err := h.store.Update(ctx, u)
	if !errors.Is(err, store.ErrNoSealKey) || u.Seal != nil || !u.HasHash || s.record == nil {
		return res, err
	}
	key := s.ownKey()
	if key == nil {
		return res, err
	}
	u.Hash = s.hash
	u.Seal = &store.Sealing{Key: key}
	return h.store.Update(ctx, u)
}
