package caddysession

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/store"
	redisstore "github.com/caddy-session/caddy-session/store/redis"
)

func init() {
	caddy.RegisterModule(RedisStore{})
}

// RedisStore keeps sessions in Redis (6.2 or later, or a compatible fork
// such as Valkey), so that several Caddy instances share them: a single
// server given by `url`, Redis Sentinel with `master_name` and
// `sentinel_addresses`, or Redis Cluster with `addresses`.
//
// Each session is a Redis hash that Redis expires by its TTL. When Redis
// cannot be reached, or answers slower than the timeouts, requests that
// need the session get a 503; service comes back by itself when Redis
// does, without a reload.
//
// The client is rueidis: it pipelines the commands of concurrent requests
// over a few connections per Redis node, and keeps a local copy of the
// sessions it read, which Redis keeps correct by telling it of every
// change (client tracking, RESP3). One client, with its connections and
// its cache, serves every config with the same connection settings, so
// `caddy reload` keeps them.
//
// The url, username, password, master name, addresses, the sentinels'
// username and password and the TLS files may hold placeholders such as
// `{env.REDIS_PASSWORD}`, which are replaced when the config is loaded.
type RedisStore struct {
	// The server, for a single Redis: `redis://[[user]:password@]host[:port][/db]`,
	// `rediss://` for TLS, or `unix:///path/to/socket`. Its query may
	// hold `dial_timeout`, `read_timeout` and `write_timeout` (a duration,
	// or whole seconds), `db`, `client_name` (the name the connections
	// give Redis, as CLIENT LIST shows) and `protocol=3`; any other query
	// option is refused, with the setting to use instead. Cannot be
	// combined with `addresses` or Sentinel. Default:
	// `redis://localhost:6379` when no other way to connect is given.
	URL string `json:"url,omitempty"`

	// The `host:port` addresses of a Redis Cluster: one or more of its
	// nodes, from which the client learns the rest. Cluster has only
	// database 0, so `db` is refused. Default: none.
	Addresses []string `json:"addresses,omitempty"`

	// The name of the master set that Redis Sentinel monitors; requires
	// `sentinel_addresses`. Default: none (no Sentinel).
	MasterName string `json:"master_name,omitempty"`

	// The `host:port` addresses of the Sentinels; requires `master_name`.
	// Default: none.
	SentinelAddresses []string `json:"sentinel_addresses,omitempty"`

	// The user to authenticate to the Sentinels themselves as, when they
	// require one (their own ACL). `username` is for the master. Default:
	// none.
	SentinelUsername string `json:"sentinel_username,omitempty"`

	// The password of the Sentinels themselves (their `requirepass`, or
	// the password of `sentinel_username`); `password` is the master's.
	// Use a placeholder such as `{env.SENTINEL_PASSWORD}`. It is never
	// logged. Default: none.
	SentinelPassword string `json:"sentinel_password,omitempty"`

	// The user to authenticate as (Redis 6 ACLs). Default: none, or the
	// user in the url.
	Username string `json:"username,omitempty"`

	// The password to authenticate with. Use a placeholder such as
	// `{env.REDIS_PASSWORD}` rather than the password itself. Default:
	// none, or the password in the url.
	Password string `json:"password,omitempty"`

	// The database number, for a single server or Sentinel. Default: 0, or
	// the database in the url.
	DB int `json:"db,omitempty"`

	// Connect with TLS, to Redis and to the Sentinels. A `rediss://` url
	// does too. Default: no TLS.
	TLS *RedisTLS `json:"tls,omitempty"`

	// What every key of the store starts with, so that several
	// applications or session configs can share one Redis. Must not
	// contain `{` or `}`. Default: `caddy-session:`.
	KeyPrefix string `json:"key_prefix,omitempty"`

	// How long to wait for a connection to Redis, its TLS handshake and
	// its HELLO. Default: 5s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// How long to wait for an answer from Redis. A request whose session
	// cannot be read or written in time gets a 503. rueidis has one
	// timeout per connection, for sending commands and for waiting on
	// their answers: the larger of `read_timeout` and `write_timeout` is
	// used for both. A connection that has been quiet for a second is
	// pinged, and closed if the ping is not answered within this timeout,
	// so a Redis that stops answering loses its connections, and with them
	// the local cache of what they read, within about 1s + read_timeout.
	// Default: 5s.
	ReadTimeout caddy.Duration `json:"read_timeout,omitempty"`

	// How long to wait for a command to be sent to Redis: see
	// `read_timeout`, whose larger value it shares. Default: the read
	// timeout.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`

	// The most memory, in bytes, the local cache of session reads takes,
	// for all connections of the client together (every config with the
	// same connection settings shares it). Redis tells the client of every
	// change to a session it holds, so a cached read is as fresh as one
	// from Redis, whichever Caddy instance wrote it. 0 turns the cache off:
	// every read goes to Redis. In the Caddyfile sizes such as `64MiB`, and
	// `off`, are accepted. Where Redis (or a proxy, or the ACL user)
	// refuses CLIENT TRACKING, the store logs a warning and works without
	// a cache. Default: 64 MiB.
	CacheSize *int64 `json:"cache_size,omitempty"`

	// The longest a cached read is used, even if Redis has not said that
	// the session changed: a bound on a missed invalidation. Default: 1m.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`

	// How many replicas must acknowledge each login, logout, rotation and
	// revocation (Redis WAIT) before it succeeds, so that a failover
	// cannot bring back a session that was logged out or rotated away. A
	// write that fewer replicas acknowledge within `wait_timeout` fails
	// with a 503, though the master has it. Other writes do not wait.
	// Default: 0 (none).
	WaitReplicas int `json:"wait_replicas,omitempty"`

	// How long to wait for `wait_replicas`. Requires `wait_replicas`.
	// Default: 1s.
	WaitTimeout caddy.Duration `json:"wait_timeout,omitempty"`

	// Refused: rueidis pipelines concurrent commands over a few
	// connections per Redis node, so there is no pool to size. Remove it.
	PoolSize json.RawMessage `json:"pool_size,omitempty"`

	key    string
	name   string
	shared *sharedStore
	client *redisClient // the pooled client, shared with other configs
	logger *zap.Logger
}

// RedisTLS configures TLS to Redis and to its Sentinels. Any of its
// settings turns TLS on.
type RedisTLS struct {
	// Accept any certificate the server presents. Only for testing: it
	// leaves the connection open to anyone in the middle. Cannot be
	// combined with `ca`. Default: false.
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`

	// A PEM file of the certificate authorities to trust instead of the
	// system's, for a Redis whose certificate a private CA signed.
	// Default: the system's.
	CA string `json:"ca,omitempty"`

	// A PEM file of the certificate to present, for a Redis that requires
	// client certificates (`tls-auth-clients yes`). Requires `client_key`.
	// Default: none.
	ClientCert string `json:"client_cert,omitempty"`

	// The PEM file of `client_cert`'s private key. Default: none.
	ClientKey string `json:"client_key,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (RedisStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.session.stores.redis",
		New: func() caddy.Module { return new(RedisStore) },
	}
}

// redisPool holds the clients by connection settings, across configs.
var redisPool = caddy.NewUsagePool()

// defaultRedisURL is the server used when the config names none.
const defaultRedisURL = "redis://localhost:6379"

// defaultRedisCacheSize is the default CacheSize.
const defaultRedisCacheSize = 64 << 20

// pingTimeout bounds the check at load time that Redis answers.
const pingTimeout = 2 * time.Second

// errPoolSizeGone refuses pool_size, in the Caddyfile and in JSON.
var errPoolSizeGone = errors.New("redis store: pool_size no longer applies: the client pipelines concurrent commands over a few connections per Redis node; remove pool_size")

// Provision connects to Redis, or takes a reference to the client already
// connected with the same settings.
func (r *RedisStore) Provision(ctx caddy.Context) error {
	r.logger = ctx.Logger()
	conn, err := r.resolve(caddy.NewReplacer())
	if err != nil {
		return err
	}
	if err := conn.loadTLS(); err != nil {
		return err
	}
	if r.key, err = conn.poolKey(); err != nil {
		return err
	}
	r.name = conn.storeName(r.KeyPrefix)
	logger := r.logger
	options := redisstore.Options{
		KeyPrefix:    r.KeyPrefix,
		CacheTTL:     time.Duration(r.CacheTTL),
		WaitReplicas: r.WaitReplicas,
		WaitTimeout:  time.Duration(r.WaitTimeout),
		// The client is the pool's: the last config that holds it
		// closes it.
		KeepClient: true,
		OnIndexError: func(err error) {
			logger.Warn("session index left with a stale entry; it is skipped and cleaned up later", zap.Error(err))
		},
	}
	open := func() (caddy.Destructor, error) { return newRedisClient(conn), nil }
	// wrap also runs for an operation that outlives its config and
	// borrows the client (see sharedStore): only the first call, in
	// holdShared, tells this config which client it holds.
	var first sync.Once
	var client *redisClient
	shared, loaded, err := holdShared(redisPool, r.key, open, func(d any) (store.Store, error) {
		c := d.(*redisClient)
		first.Do(func() { client = c })
		o := options
		o.Cache = c.cache
		return redisstore.New(func() (rueidis.Client, error) { return c.connect(logger) }, o)
	})
	if err != nil {
		return err
	}
	r.shared, r.client = shared, client
	if !loaded {
		// An unreachable Redis is not a config error: requests get a 503
		// until it is back, with no reload. Say so at once, though.
		if err := client.ping(logger, pingTimeout); err != nil {
			logger.Warn("redis does not answer yet; requests that need a session get 503 until it does",
				zap.String("redis", conn.describe), zap.Error(err))
		}
	}
	if ce := logger.Check(zap.DebugLevel, "redis session store ready"); ce != nil {
		ce.Write(zap.String("redis", conn.describe), zap.Bool("shared", loaded), zap.Bool("cache", client.cache != nil))
	}
	return nil
}

// storeName is StoreName for the store under keyPrefix on c.
func (c *redisConn) storeName(keyPrefix string) string {
	if keyPrefix == "" {
		keyPrefix = redisstore.DefaultKeyPrefix
	}
	return "redis:" + c.where + ";key_prefix=" + keyPrefix
}

// StoreName names the store in the admin API: where its data is (the
// server, cluster or Sentinel master, the database and the key prefix),
// without credentials, e.g. `redis:localhost:6379;db=0;key_prefix=caddy-session:`.
func (r *RedisStore) StoreName() string { return r.name }

// SessionStore returns the store on the shared client.
func (r *RedisStore) SessionStore() store.Store { return r.shared }

// Cleanup drops this config's reference; the last one closes the client.
func (r *RedisStore) Cleanup() error {
	if r.shared == nil {
		return nil
	}
	return r.shared.cleanup()
}

// resolve replaces the placeholders in the connection settings with repl
// and checks them against each other.
func (r *RedisStore) resolve(repl *caddy.Replacer) (*redisConn, error) {
	if err := r.checkStore(); err != nil {
		return nil, err
	}
	c := &redisConn{cfg: r.replaced(repl)}
	if err := c.cfg.checkConnection(); err != nil {
		return nil, err
	}
	if err := c.locate(); err != nil {
		return nil, err
	}
	return c, nil
}

// checkStore checks the settings of the store itself, which are not part
// of the connection.
func (r *RedisStore) checkStore() error {
	cacheOff := r.CacheSize != nil && *r.CacheSize == 0
	switch {
	case len(r.PoolSize) > 0:
		return errPoolSizeGone
	case r.CacheTTL < 0 || r.WaitTimeout < 0:
		return errors.New("redis store: cache_ttl and wait_timeout must be positive")
	case cacheOff && r.CacheTTL != 0:
		return errors.New("redis store: cache_ttl bounds the local cache, which cache_size 0 turns off: remove one of them")
	case r.WaitReplicas < 0:
		return fmt.Errorf("redis store: wait_replicas %d: give how many replicas must acknowledge a write, or 0 for none", r.WaitReplicas)
	case r.WaitTimeout != 0 && r.WaitReplicas == 0:
		return errors.New("redis store: wait_timeout bounds the wait for wait_replicas: set wait_replicas too, or remove wait_timeout")
	}
	if err := redisstore.CheckKeyPrefix(r.KeyPrefix); err != nil {
		return fmt.Errorf("redis store: %v", err)
	}
	return nil
}

// replaced returns the connection settings with their placeholders
// replaced, and without the settings of the store itself (key prefix,
// cache TTL, waits): configs that differ only in those share a client.
func (r *RedisStore) replaced(repl *caddy.Replacer) RedisStore {
	// ReplaceKnown, not ReplaceAll: a password may hold braces that are
	// no placeholder, and must reach Redis as written.
	replace := func(s string) string { return repl.ReplaceKnown(s, "") }
	replaceAll := func(ss []string) []string {
		var out []string
		for _, s := range ss {
			out = append(out, replace(s))
		}
		return out
	}
	var tlsCfg *RedisTLS
	if r.TLS != nil {
		tlsCfg = &RedisTLS{
			InsecureSkipVerify: r.TLS.InsecureSkipVerify,
			CA:                 replace(r.TLS.CA),
			ClientCert:         replace(r.TLS.ClientCert),
			ClientKey:          replace(r.TLS.ClientKey),
		}
	}
	return RedisStore{
		URL:               replace(r.URL),
		Addresses:         replaceAll(r.Addresses),
		MasterName:        replace(r.MasterName),
		SentinelAddresses: replaceAll(r.SentinelAddresses),
		SentinelUsername:  replace(r.SentinelUsername),
		SentinelPassword:  replace(r.SentinelPassword),
		Username:          replace(r.Username),
		Password:          replace(r.Password),
		DB:                r.DB,
		TLS:               tlsCfg,
		DialTimeout:       r.DialTimeout,
		ReadTimeout:       r.ReadTimeout,
		WriteTimeout:      r.WriteTimeout,
		CacheSize:         r.CacheSize,
	}
}

func (s *RedisStore) sentinel() bool { return s.MasterName != "" || len(s.SentinelAddresses) > 0 }

// checkConnection checks resolved connection settings against each other.
func (s *RedisStore) checkConnection() error {
	for _, check := range []func() error{s.checkTopology, s.checkValues, s.TLS.check} {
		if err := check(); err != nil {
			return err
		}
	}
	for _, a := range slices.Concat(s.Addresses, s.SentinelAddresses) {
		if err := checkHostPort(a); err != nil {
			return err
		}
	}
	return nil
}

// checkTopology checks that the settings name one way to reach Redis: a
// url, a cluster or a Sentinel setup, whole.
func (s *RedisStore) checkTopology() error {
	sentinel := s.sentinel()
	switch {
	case s.URL != "" && len(s.Addresses) > 0:
		return errors.New("redis store: url is a single server and addresses a cluster: give one of them")
	case s.URL != "" && sentinel:
		return errors.New("redis store: url is a single server and sentinel a monitored master: give one of them")
	case len(s.Addresses) > 0 && sentinel:
		return errors.New("redis store: addresses is a cluster and sentinel a monitored master: give one of them")
	case sentinel && s.MasterName == "":
		return errors.New("redis store: sentinel needs the name of the master the sentinels monitor (master_name)")
	case sentinel && len(s.SentinelAddresses) == 0:
		return errors.New("redis store: sentinel needs the addresses of the sentinels (sentinel_addresses)")
	case !sentinel && (s.SentinelUsername != "" || s.SentinelPassword != ""):
		return errors.New("redis store: sentinel_username and sentinel_password authenticate to the sentinels: set sentinel too, or remove them")
	case len(s.Addresses) > 0 && s.DB != 0:
		return fmt.Errorf("redis store: Redis Cluster has only database 0, not %d: remove db", s.DB)
	}
	return nil
}

// checkValues checks the numbers of the settings.
func (s *RedisStore) checkValues() error {
	switch {
	case s.DB < 0:
		return fmt.Errorf("redis store: db %d: a database number is 0 or more", s.DB)
	case s.DialTimeout < 0 || s.ReadTimeout < 0 || s.WriteTimeout < 0:
		return errors.New("redis store: dial_timeout, read_timeout and write_timeout must be positive")
	case s.CacheSize != nil && *s.CacheSize < 0:
		return fmt.Errorf("redis store: cache_size %d: give a size in bytes, or 0 for no cache", *s.CacheSize)
	}
	return nil
}

// check checks the TLS settings against each other; nil is no TLS.
func (t *RedisTLS) check() error {
	switch {
	case t == nil:
	case t.InsecureSkipVerify && t.CA != "":
		return errors.New("redis store: tls insecure_skip_verify accepts any certificate, so ca would not be used: give one of them")
	case (t.ClientCert == "") != (t.ClientKey == ""):
		return errors.New("redis store: tls client_cert and client_key go together: give both, or neither")
	}
	return nil
}

// checkHostPort checks an address of a cluster node or sentinel.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("redis store: address %q is not host:port", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("redis store: address %q: %q is not a port", addr, port)
	}
	return nil
}

// UnmarshalCaddyfile sets up the Redis store from Caddyfile tokens, the
// part after `store`. Syntax:
//
//	redis [<url>] {
//		addresses <host:port...>
//		sentinel <master-name> <host:port...>
//		sentinel_username <user>
//		sentinel_password <password>
//		username <user>
//		password <password>
//		db <n>
//		tls [insecure_skip_verify]
//		ca <pem file>
//		client_cert <cert file> <key file>
//		key_prefix <prefix>
//		dial_timeout <duration>
//		read_timeout <duration>
//		write_timeout <duration>
//		cache_size <size>|off
//		cache_ttl <duration>
//		wait_replicas <n>
//		wait_timeout <duration>
//	}
//
// `ca` and `client_cert` turn TLS on, as `tls` does.
func (r *RedisStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // "redis"
	if d.NextArg() {
		r.URL = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	if err := eachSubdirective(d, "redis store", r, redisSubdirectives); err != nil {
		return err
	}
	// The contradictions between settings are errors at parse time too,
	// with the file and line.
	if _, err := r.resolve(caddy.NewReplacer()); err != nil {
		return d.WrapErr(err)
	}
	return nil
}

// redisSubdirectives parse each subdirective of the redis store, with the
// dispenser on its name.
var redisSubdirectives = map[string]func(r *RedisStore, d *caddyfile.Dispenser) error{
	"addresses": func(r *RedisStore, d *caddyfile.Dispenser) error {
		if r.Addresses = d.RemainingArgs(); len(r.Addresses) == 0 {
			return d.Errf("addresses needs at least one host:port of a cluster node")
		}
		return nil
	},
	"sentinel": func(r *RedisStore, d *caddyfile.Dispenser) error {
		args := d.RemainingArgs()
		if len(args) < 2 {
			return d.Errf("sentinel needs the master name, then at least one host:port of a sentinel")
		}
		r.MasterName, r.SentinelAddresses = args[0], args[1:]
		return nil
	},
	"sentinel_username": func(r *RedisStore, d *caddyfile.Dispenser) error { return parseOneArg(d, &r.SentinelUsername) },
	"sentinel_password": func(r *RedisStore, d *caddyfile.Dispenser) error { return parseOneArg(d, &r.SentinelPassword) },
	"username":          func(r *RedisStore, d *caddyfile.Dispenser) error { return parseOneArg(d, &r.Username) },
	"password":          func(r *RedisStore, d *caddyfile.Dispenser) error { return parseOneArg(d, &r.Password) },
	"db":                func(r *RedisStore, d *caddyfile.Dispenser) (err error) { r.DB, err = wholeNumber(d, 0); return err },
	"tls":               (*RedisStore).unmarshalTLS,
	"ca": func(r *RedisStore, d *caddyfile.Dispenser) error {
		return parseOneArg(d, &r.tlsSettings().CA)
	},
	"client_cert": func(r *RedisStore, d *caddyfile.Dispenser) error {
		args := d.RemainingArgs()
		if len(args) != 2 {
			return d.Errf("client_cert needs the certificate's PEM file, then its key's")
		}
		t := r.tlsSettings()
		t.ClientCert, t.ClientKey = args[0], args[1]
		return nil
	},
	"key_prefix": func(r *RedisStore, d *caddyfile.Dispenser) error {
		if err := parseOneArg(d, &r.KeyPrefix); err != nil {
			return err
		}
		if r.KeyPrefix == "" {
			return d.Errf("key_prefix must not be empty")
		}
		return nil
	},
	"dial_timeout":  func(r *RedisStore, d *caddyfile.Dispenser) error { return parseDuration(d, &r.DialTimeout) },
	"read_timeout":  func(r *RedisStore, d *caddyfile.Dispenser) error { return parseDuration(d, &r.ReadTimeout) },
	"write_timeout": func(r *RedisStore, d *caddyfile.Dispenser) error { return parseDuration(d, &r.WriteTimeout) },
	"cache_size": func(r *RedisStore, d *caddyfile.Dispenser) (err error) {
		r.CacheSize, err = parseCacheSize(d)
		return err
	},
	"cache_ttl": func(r *RedisStore, d *caddyfile.Dispenser) error { return parseDuration(d, &r.CacheTTL) },
	"wait_replicas": func(r *RedisStore, d *caddyfile.Dispenser) (err error) {
		r.WaitReplicas, err = wholeNumber(d, 0)
		return err
	},
	"wait_timeout": func(r *RedisStore, d *caddyfile.Dispenser) error { return parseDuration(d, &r.WaitTimeout) },
	"pool_size": func(r *RedisStore, d *caddyfile.Dispenser) error {
		return d.Err(strings.TrimPrefix(errPoolSizeGone.Error(), "redis store: "))
	},
}

// tlsSettings returns the TLS settings, making them if there are none.
func (r *RedisStore) tlsSettings() *RedisTLS {
	if r.TLS == nil {
		r.TLS = new(RedisTLS)
	}
	return r.TLS
}

// wholeNumber returns the single argument of the current subdirective, a
// whole number no less than least.
func wholeNumber(d *caddyfile.Dispenser, least int) (int, error) {
	name := d.Val()
	if !d.NextArg() {
		return 0, d.ArgErr()
	}
	n, err := strconv.Atoi(d.Val())
	if err != nil || n < least {
		return 0, d.Errf("%s: %q is not a valid number: give a whole number from %d", name, d.Val(), least)
	}
	if d.NextArg() {
		return 0, d.ArgErr()
	}
	return n, nil
}

// unmarshalTLS parses `tls [insecure_skip_verify]`.
func (r *RedisStore) unmarshalTLS(d *caddyfile.Dispenser) error {
	t := r.tlsSettings()
	if d.NextArg() {
		if d.Val() != "insecure_skip_verify" {
			return d.Errf("tls takes only insecure_skip_verify, not %q", d.Val())
		}
		t.InsecureSkipVerify = true
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// parseCacheSize parses `cache_size <size>|off`: 0 and off turn the cache
// off.
func parseCacheSize(d *caddyfile.Dispenser) (*int64, error) {
	var size uint64
	if !d.NextArg() {
		return nil, d.ArgErr()
	}
	if v := d.Val(); v != "off" {
		var err error
		if size, err = humanize.ParseBytes(v); err != nil || size > math.MaxInt64 {
			return nil, d.Errf("cache_size: %q is not a size such as 64MiB, or off", v)
		}
	}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	n := int64(size)
	return &n, nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*RedisStore)(nil)
	_ caddy.CleanerUpper    = (*RedisStore)(nil)
	_ caddyfile.Unmarshaler = (*RedisStore)(nil)
	_ StoreProvider         = (*RedisStore)(nil)
	_ caddy.Destructor      = (*redisClient)(nil)
)
