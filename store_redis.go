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
	key, err := json.Marshal(conn)
	if err != nil {
		return err
	}
	r.key = string(key)
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
	r.logger.Debug("redis session store ready", zap.String("redis", conn.describe), zap.Bool("shared", loaded))
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

// redisConn is the connection settings of a config, with placeholders
// replaced and checked against each other. It is also the key under which
// the client is shared: two configs with equal settings get one client.
// The password is part of it; the key stays in this process's memory.
type redisConn struct {
	URL                string        `json:"url,omitempty"`
	Addresses          []string      `json:"addresses,omitempty"`
	MasterName         string        `json:"master_name,omitempty"`
	SentinelAddresses  []string      `json:"sentinel_addresses,omitempty"`
	Username           string        `json:"username,omitempty"`
	Password           string        `json:"password,omitempty"`
	DB                 int           `json:"db,omitempty"`
	TLS                bool          `json:"tls,omitempty"`
	InsecureSkipVerify bool          `json:"insecure_skip_verify,omitempty"`
	Dial, Read, Write  time.Duration `json:",omitempty"`
	PoolSize           int           `json:"pool_size,omitempty"`
	parsed             *goredis.Options
	describe           string // where it connects, for logs, without credentials
	where              string // where the data is, for StoreName
}

// resolve replaces the placeholders in the connection settings with repl
// and checks them against each other.
func (r *RedisStore) resolve(repl *caddy.Replacer) (*redisConn, error) {
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
	c := &redisConn{
		URL:                replace(r.URL),
		Addresses:          replaceAll(r.Addresses),
		MasterName:         replace(r.MasterName),
		SentinelAddresses:  replaceAll(r.SentinelAddresses),
		Username:           replace(r.Username),
		Password:           replace(r.Password),
		DB:                 r.DB,
		TLS:                r.TLS != nil,
		InsecureSkipVerify: r.TLS != nil && r.TLS.InsecureSkipVerify,
		Dial:               time.Duration(r.DialTimeout),
		Read:               time.Duration(r.ReadTimeout),
		Write:              time.Duration(r.WriteTimeout),
		PoolSize:           r.PoolSize,
	}
	sentinel := c.MasterName != "" || len(c.SentinelAddresses) > 0
	switch {
	case c.URL != "" && len(c.Addresses) > 0:
		return nil, errors.New("redis store: url is a single server and addresses a cluster: give one of them")
	case c.URL != "" && sentinel:
		return nil, errors.New("redis store: url is a single server and sentinel a monitored master: give one of them")
	case len(c.Addresses) > 0 && sentinel:
		return nil, errors.New("redis store: addresses is a cluster and sentinel a monitored master: give one of them")
	case sentinel && c.MasterName == "":
		return nil, errors.New("redis store: sentinel needs the name of the master the sentinels monitor (master_name)")
	case sentinel && len(c.SentinelAddresses) == 0:
		return nil, errors.New("redis store: sentinel needs the addresses of the sentinels (sentinel_addresses)")
	case len(c.Addresses) > 0 && c.DB != 0:
		return nil, fmt.Errorf("redis store: Redis Cluster has only database 0, not %d: remove db", c.DB)
	case c.DB < 0:
		return nil, fmt.Errorf("redis store: db %d: a database number is 0 or more", c.DB)
	case c.PoolSize < 0:
		return nil, fmt.Errorf("redis store: pool_size %d: a pool size is 1 or more", c.PoolSize)
	case c.Dial < 0 || c.Read < 0 || c.Write < 0:
		return nil, errors.New("redis store: dial_timeout, read_timeout and write_timeout must be positive")
	}
	for _, a := range slices.Concat(c.Addresses, c.SentinelAddresses) {
		if err := checkHostPort(a); err != nil {
			return nil, err
		}
	}
	if err := redisstore.CheckKeyPrefix(r.KeyPrefix); err != nil {
		return nil, fmt.Errorf("redis store: %v", err)
	}
	switch {
	case len(c.Addresses) > 0:
		c.describe = fmt.Sprintf("cluster %v", c.Addresses)
		c.where = "cluster=" + strings.Join(c.Addresses, ",")
	case sentinel:
		c.describe = fmt.Sprintf("sentinel master %q via %v", c.MasterName, c.SentinelAddresses)
		c.where = fmt.Sprintf("sentinel=%s@%s;db=%d", c.MasterName, strings.Join(c.SentinelAddresses, ","), c.DB)
	default:
		if c.URL == "" {
			c.URL = defaultRedisURL
		}
		if err := c.parseURL(); err != nil {
			return nil, err
		}
		db := c.parsed.DB
		if c.DB != 0 {
			db = c.DB
		}
		c.where = fmt.Sprintf("%s;db=%d", c.parsed.Addr, db)
	}
	return c, nil
}

// parseURL checks the url with go-redis's parser, which also takes the
// options in its query. Settings given both in the url and on their own
// are refused rather than one silently winning.
func (c *redisConn) parseURL() error {
	u, err := url.Parse(c.URL)
	if err != nil {
		// url.Parse's error repeats the url, password and all.
		return errors.New("redis store: url is malformed: use redis://[[user]:password@]host[:port][/db]")
	}
	shown := u.Redacted()
	opt, err := goredis.ParseURL(c.URL)
	if err != nil {
		msg := err.Error()
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
		return fmt.Errorf("redis store: url %s: %s", shown, msg)
	}
	switch {
	case opt.Username != "" && c.Username != "":
		return fmt.Errorf("redis store: url %s already names a user: give it in one place", shown)
	case opt.Password != "" && c.Password != "":
		return fmt.Errorf("redis store: url %s already holds a password: give it in one place", shown)
	case opt.DB != 0 && c.DB != 0 && opt.DB != c.DB:
		return fmt.Errorf("redis store: url %s selects database %d, and db %d: give it in one place", shown, opt.DB, c.DB)
	case opt.Network == "unix" && c.TLS:
		return fmt.Errorf("redis store: url %s is a unix socket, which takes no tls", shown)
	}
	c.parsed = opt
	c.describe = shown
	return nil
}

// newClient makes the client for the settings.
func (c *redisConn) newClient() goredis.UniversalClient {
	var tlsConfig *tls.Config
	if c.TLS {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify}
	}
	if c.parsed != nil {
		o := *c.parsed
		if c.Username != "" {
			o.Username = c.Username
		}
		if c.Password != "" {
			o.Password = c.Password
		}
		if c.DB != 0 {
			o.DB = c.DB
		}
		if tlsConfig != nil {
			if o.TLSConfig != nil { // rediss://, which knows the server name
				o.TLSConfig.InsecureSkipVerify = c.InsecureSkipVerify
			} else {
				o.TLSConfig = tlsConfig
			}
		}
		setIf(&o.DialTimeout, c.Dial)
		setIf(&o.ReadTimeout, c.Read)
		setIf(&o.WriteTimeout, c.Write)
		setIf(&o.PoolSize, c.PoolSize)
		// A request's deadline or cancellation ends its Redis commands.
		o.ContextTimeoutEnabled = true
		return goredis.NewClient(&o)
	}
	o := &goredis.UniversalOptions{
		Username:              c.Username,
		Password:              c.Password,
		DB:                    c.DB,
		TLSConfig:             tlsConfig,
		DialTimeout:           c.Dial,
		ReadTimeout:           c.Read,
		WriteTimeout:          c.Write,
		PoolSize:              c.PoolSize,
		ContextTimeoutEnabled: true,
	}
	if len(c.Addresses) > 0 {
		o.Addrs = c.Addresses
		// Even one address is a cluster seed: a single server is a url.
		o.IsClusterMode = true
	} else {
		o.Addrs = c.SentinelAddresses
		o.MasterName = c.MasterName
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
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		switch sub {
		case "addresses":
			r.Addresses = d.RemainingArgs()
			if len(r.Addresses) == 0 {
				return d.Errf("addresses needs at least one host:port of a cluster node")
			}
		case "sentinel":
			args := d.RemainingArgs()
			if len(args) < 2 {
				return d.Errf("sentinel needs the master name, then at least one host:port of a sentinel")
			}
			r.MasterName, r.SentinelAddresses = args[0], args[1:]
		case "username", "password", "key_prefix":
			if !d.NextArg() {
				return d.ArgErr()
			}
			val := d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			switch sub {
			case "username":
				r.Username = val
			case "password":
				r.Password = val
			default:
				if val == "" {
					return d.Errf("key_prefix must not be empty")
				}
				r.KeyPrefix = val
			}
		case "db", "pool_size":
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil || n < 0 || sub == "pool_size" && n == 0 {
				return d.Errf("%s: %q is not a valid number", sub, d.Val())
			}
			if d.NextArg() {
				return d.ArgErr()
			}
			if sub == "db" {
				r.DB = n
			} else {
				r.PoolSize = n
			}
		case "tls":
			r.TLS = new(RedisTLS)
			if d.NextArg() {
				if d.Val() != "insecure_skip_verify" {
					return d.Errf("tls takes only insecure_skip_verify, not %q", d.Val())
				}
				r.TLS.InsecureSkipVerify = true
			}
			if d.NextArg() {
				return d.ArgErr()
			}
		case "dial_timeout":
			if err := parseDuration(d, &r.DialTimeout); err != nil {
				return err
			}
		case "read_timeout":
			if err := parseDuration(d, &r.ReadTimeout); err != nil {
				return err
			}
		case "write_timeout":
			if err := parseDuration(d, &r.WriteTimeout); err != nil {
				return err
			}
		default:
			return d.Errf("unknown redis store subdirective %q", sub)
		}
	}
	// The contradictions between settings are errors at parse time too,
	// with the file and line.
	if _, err := r.resolve(caddy.NewReplacer()); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner     = (*RedisStore)(nil)
	_ caddy.CleanerUpper    = (*RedisStore)(nil)
	_ caddyfile.Unmarshaler = (*RedisStore)(nil)
	_ StoreProvider         = (*RedisStore)(nil)
)
