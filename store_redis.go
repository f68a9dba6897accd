package caddysession

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	goredis "github.com/redis/go-redis/v9"
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
// does, without a reload. One client (and connection pool) serves every
// config with the same connection settings, so `caddy reload` keeps it.
//
// The url, username, password, master name and addresses may hold
// placeholders such as `{env.REDIS_PASSWORD}`, which are replaced when the
// config is loaded.
type RedisStore struct {
	// The server, for a single Redis: `redis://[[user]:password@]host[:port][/db]`,
	// `rediss://` for TLS, or `unix:///path/to/socket`. Query options such
	// as `?dial_timeout=3s` are go-redis's. Cannot be combined with
	// `addresses` or Sentinel. Default: `redis://localhost:6379` when no
	// other way to connect is given.
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

	// Connect with TLS. A `rediss://` url does too. Default: no TLS.
	TLS *RedisTLS `json:"tls,omitempty"`

	// What every key of the store starts with, so that several
	// applications or session configs can share one Redis. Must not
	// contain `{` or `}`. Default: `caddy-session:`.
	KeyPrefix string `json:"key_prefix,omitempty"`

	// How long to wait for a connection to Redis. Default: 5s.
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// How long to wait for an answer from Redis. A request whose session
	// cannot be read or written in time gets a 503. Default: 5s.
	ReadTimeout caddy.Duration `json:"read_timeout,omitempty"`

	// How long to wait for a command to be sent to Redis. Default: the
	// read timeout.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`

	// The most connections per Redis node. Default: 10 per CPU, or 5 per
	// CPU with Redis Cluster.
	PoolSize int `json:"pool_size,omitempty"`

	key    string
	name   string
	shared *sharedStore
	client goredis.UniversalClient // the pooled client, shared with other configs
	logger *zap.Logger
}

// RedisTLS configures TLS to Redis.
type RedisTLS struct {
	// Accept any certificate the server presents. Only for testing: it
	// leaves the connection open to anyone in the middle. Default: false.
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
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

type redisDestructor struct{ goredis.UniversalClient }

func (d redisDestructor) Destruct() error { return d.Close() }

// defaultRedisURL is the server used when the config names none.
const defaultRedisURL = "redis://localhost:6379"

// pingTimeout bounds the check at load time that Redis answers.
const pingTimeout = 2 * time.Second

// Provision connects to Redis, or takes a reference to the client already
// connected with the same settings.
func (r *RedisStore) Provision(ctx caddy.Context) error {
	r.logger = ctx.Logger()
	conn, err := r.resolve(caddy.NewReplacer())
	if err != nil {
		return err
	}
	r.key, err = conn.poolKey()
	if err != nil {
		return err
	}
	prefix := r.KeyPrefix
	if prefix == "" {
		prefix = redisstore.DefaultKeyPrefix
	}
	r.name = "redis:" + conn.where + ";key_prefix=" + prefix
	options := redisstore.Options{
		KeyPrefix: r.KeyPrefix,
		OnIndexError: func(err error) {
			r.logger.Warn("session index left with a stale entry; it is skipped and cleaned up later", zap.Error(err))
		},
	}
	open := func() (caddy.Destructor, error) { return redisDestructor{conn.newClient()}, nil }
	var client goredis.UniversalClient
	shared, loaded, err := holdShared(redisPool, r.key, open, func(d any) (store.Store, error) {
		client = d.(redisDestructor).UniversalClient
		return redisstore.New(client, options)
	})
	if err != nil {
		return err
	}
	r.shared, r.client = shared, client
	if !loaded {
		// An unreachable Redis is not a config error: requests get a 503
		// until it is back, with no reload. Say so at once, though.
		pctx, cancel := context.WithTimeout(ctx, pingTimeout)
		defer cancel()
		if err := client.Ping(pctx).Err(); err != nil {
			r.logger.Warn("redis does not answer yet; requests that need a session get 503 until it does",
				zap.String("redis", conn.describe), zap.Error(err))
		}
	}
	if ce := r.logger.Check(zap.DebugLevel, "redis session store ready"); ce != nil {
		ce.Write(zap.String("redis", conn.describe), zap.Bool("shared", loaded))
	}
	return nil
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

// redisConn is where a config connects: its settings with placeholders
// replaced and checked against each other, and what follows from them.
type redisConn struct {
	// The settings, resolved. The key prefix is left out: it is not a
	// connection setting, and configs that differ only in it share a
	// client.
	cfg      RedisStore
	parsed   *goredis.Options // the url's options, for a single server
	describe string           // where it connects, for logs, without credentials
	where    string           // where the data is, for StoreName
}

// poolKey is the key under which the client is shared: two configs with
// equal connection settings get one client. The password is part of it;
// the key stays in this process's memory.
func (c *redisConn) poolKey() (string, error) {
	key, err := json.Marshal(c.cfg)
	return string(key), err
}

// resolve replaces the placeholders in the connection settings with repl
// and checks them against each other.
func (r *RedisStore) resolve(repl *caddy.Replacer) (*redisConn, error) {
	c := &redisConn{cfg: r.replaced(repl)}
	if err := c.cfg.checkConnection(); err != nil {
		return nil, err
	}
	if err := redisstore.CheckKeyPrefix(r.KeyPrefix); err != nil {
		return nil, fmt.Errorf("redis store: %v", err)
	}
	if err := c.locate(); err != nil {
		return nil, err
	}
	return c, nil
}

// replaced returns the connection settings with their placeholders
// replaced, and without the key prefix.
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
	return RedisStore{
		URL:               replace(r.URL),
		Addresses:         replaceAll(r.Addresses),
		MasterName:        replace(r.MasterName),
		SentinelAddresses: replaceAll(r.SentinelAddresses),
		Username:          replace(r.Username),
		Password:          replace(r.Password),
		DB:                r.DB,
		TLS:               r.TLS,
		DialTimeout:       r.DialTimeout,
		ReadTimeout:       r.ReadTimeout,
		WriteTimeout:      r.WriteTimeout,
		PoolSize:          r.PoolSize,
	}
}

func (s *RedisStore) sentinel() bool { return s.MasterName != "" || len(s.SentinelAddresses) > 0 }

// checkConnection checks resolved connection settings against each other.
func (s *RedisStore) checkConnection() error {
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
	case len(s.Addresses) > 0 && s.DB != 0:
		return fmt.Errorf("redis store: Redis Cluster has only database 0, not %d: remove db", s.DB)
	case s.DB < 0:
		return fmt.Errorf("redis store: db %d: a database number is 0 or more", s.DB)
	case s.PoolSize < 0:
		return fmt.Errorf("redis store: pool_size %d: a pool size is 1 or more", s.PoolSize)
	case s.DialTimeout < 0 || s.ReadTimeout < 0 || s.WriteTimeout < 0:
		return errors.New("redis store: dial_timeout, read_timeout and write_timeout must be positive")
	}
	for _, a := range slices.Concat(s.Addresses, s.SentinelAddresses) {
		if err := checkHostPort(a); err != nil {
			return err
		}
	}
	return nil
}

// locate works out where the settings connect, for logs and StoreName.
func (c *redisConn) locate() error {
	s := &c.cfg
	switch {
	case len(s.Addresses) > 0:
		c.describe = fmt.Sprintf("cluster %v", s.Addresses)
		c.where = "cluster=" + strings.Join(s.Addresses, ",")
	case s.sentinel():
		c.describe = fmt.Sprintf("sentinel master %q via %v", s.MasterName, s.SentinelAddresses)
		c.where = fmt.Sprintf("sentinel=%s@%s;db=%d", s.MasterName, strings.Join(s.SentinelAddresses, ","), s.DB)
	default:
		if s.URL == "" {
			s.URL = defaultRedisURL
		}
		if err := c.parseURL(); err != nil {
			return err
		}
		db := c.parsed.DB
		if s.DB != 0 {
			db = s.DB
		}
		c.where = fmt.Sprintf("%s;db=%d", c.parsed.Addr, db)
	}
	return nil
}

// parseURL checks the url with go-redis's parser, which also takes the
// options in its query. Settings given both in the url and on their own
// are refused rather than one silently winning.
func (c *redisConn) parseURL() error {
	s := &c.cfg
	u, err := url.Parse(s.URL)
	if err != nil {
		// url.Parse's error repeats the url, password and all.
		return errors.New("redis store: url is malformed: use redis://[[user]:password@]host[:port][/db]")
	}
	shown := u.Redacted()
	opt, err := goredis.ParseURL(s.URL)
	if err != nil {
		msg := err.Error()
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
		return fmt.Errorf("redis store: url %s: %s", shown, msg)
	}
	switch {
	case opt.Username != "" && s.Username != "":
		return fmt.Errorf("redis store: url %s already names a user: give it in one place", shown)
	case opt.Password != "" && s.Password != "":
		return fmt.Errorf("redis store: url %s already holds a password: give it in one place", shown)
	case opt.DB != 0 && s.DB != 0 && opt.DB != s.DB:
		return fmt.Errorf("redis store: url %s selects database %d, and db %d: give it in one place", shown, opt.DB, s.DB)
	case opt.Network == "unix" && s.TLS != nil:
		return fmt.Errorf("redis store: url %s is a unix socket, which takes no tls", shown)
	}
	c.parsed = opt
	c.describe = shown
	return nil
}

// newClient makes the client for the settings.
func (c *redisConn) newClient() goredis.UniversalClient {
	s := &c.cfg
	var tlsConfig *tls.Config
	insecure := s.TLS != nil && s.TLS.InsecureSkipVerify
	if s.TLS != nil {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure}
	}
	if c.parsed != nil {
		o := *c.parsed
		setIf(&o.Username, s.Username)
		setIf(&o.Password, s.Password)
		setIf(&o.DB, s.DB)
		if tlsConfig != nil {
			if o.TLSConfig != nil { // rediss://, which knows the server name
				o.TLSConfig.InsecureSkipVerify = insecure
			} else {
				o.TLSConfig = tlsConfig
			}
		}
		setIf(&o.DialTimeout, time.Duration(s.DialTimeout))
		setIf(&o.ReadTimeout, time.Duration(s.ReadTimeout))
		setIf(&o.WriteTimeout, time.Duration(s.WriteTimeout))
		setIf(&o.PoolSize, s.PoolSize)
		// A request's deadline or cancellation ends its Redis commands.
		o.ContextTimeoutEnabled = true
		return goredis.NewClient(&o)
	}
	o := &goredis.UniversalOptions{
		Username:              s.Username,
		Password:              s.Password,
		DB:                    s.DB,
		TLSConfig:             tlsConfig,
		DialTimeout:           time.Duration(s.DialTimeout),
		ReadTimeout:           time.Duration(s.ReadTimeout),
		WriteTimeout:          time.Duration(s.WriteTimeout),
		PoolSize:              s.PoolSize,
		ContextTimeoutEnabled: true,
	}
	if len(s.Addresses) > 0 {
		o.Addrs = s.Addresses
		// Even one address is a cluster seed: a single server is a url.
		o.IsClusterMode = true
	} else {
		o.Addrs = s.SentinelAddresses
		o.MasterName = s.MasterName
	}
	return goredis.NewUniversalClient(o)
}

func setIf[T comparable](into *T, v T) {
	var zero T
	if v != zero {
		*into = v
	}
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
//		username <user>
//		password <password>
//		db <n>
//		tls [insecure_skip_verify]
//		key_prefix <prefix>
//		dial_timeout <duration>
//		read_timeout <duration>
//		write_timeout <duration>
//		pool_size <n>
//	}
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
	"username": func(r *RedisStore, d *caddyfile.Dispenser) error { return parseOneArg(d, &r.Username) },
	"password": func(r *RedisStore, d *caddyfile.Dispenser) error { return parseOneArg(d, &r.Password) },
	"db":       func(r *RedisStore, d *caddyfile.Dispenser) (err error) { r.DB, err = wholeNumber(d, 0); return err },
	"tls":      func(r *RedisStore, d *caddyfile.Dispenser) (err error) { r.TLS, err = parseRedisTLS(d); return err },
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
	"pool_size": func(r *RedisStore, d *caddyfile.Dispenser) (err error) {
		r.PoolSize, err = wholeNumber(d, 1)
		return err
	},
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

// parseRedisTLS parses `tls [insecure_skip_verify]`.
func parseRedisTLS(d *caddyfile.Dispenser) (*RedisTLS, error) {
	t := new(RedisTLS)
	if d.NextArg() {
		if d.Val() != "insecure_skip_verify" {
			return nil, d.Errf("tls takes only insecure_skip_verify, not %q", d.Val())
		}
		t.InsecureSkipVerify = true
	}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	return t, nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*RedisStore)(nil)
	_ caddy.CleanerUpper    = (*RedisStore)(nil)
	_ caddyfile.Unmarshaler = (*RedisStore)(nil)
	_ StoreProvider         = (*RedisStore)(nil)
)
