package caddysession

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/session"
	redisstore "github.com/caddy-session/caddy-session/store/redis"
)

// Defaults of the connection settings.
const (
	defaultRedisDialTimeout = 5 * time.Second
	defaultRedisReadTimeout = 5 * time.Second
)

// redisKeepAlive is how long a connection may be quiet before rueidis
// pings it; a ping that is not answered within the connection's timeout
// closes it, and with it its part of the cache. It is also the TCP
// keep-alive period.
const redisKeepAlive = time.Second

// redisRetries is how often rueidis may retry a read-only command that
// failed on the network (or on a Redis still loading its data), which
// also makes a new connection after a broken one. Its default retries
// until the command's context ends, and a request's context has no
// deadline: a read during an outage would wait for Redis instead of
// getting its 503.
const redisRetries = 2

func redisRetryDelay(attempts int, _ rueidis.Completed, _ error) time.Duration {
	if attempts > redisRetries {
		return -1
	}
	return time.Duration(attempts) * 5 * time.Millisecond
}

// redisMaxRedirects bounds the MOVED and ASK redirections of one command
// on Redis Cluster, which rueidis otherwise follows until the context
// ends: a cluster that keeps sending a command around gets a 503.
const redisMaxRedirects = 8

// redisSentinelRefresh is how often the client asks the sentinels which
// server is the master, besides following their failover messages: a
// missed message would bind it to the old master until a restart.
const redisSentinelRefresh = 5 * time.Second

// redisReconnectEvery is how often a client that could not be made is
// tried again; in between, callers get the last error at once.
const redisReconnectEvery = time.Second

// redisConn is where a config connects: its settings with placeholders
// replaced and checked against each other, and what follows from them.
type redisConn struct {
	// The settings, resolved. The settings of the store itself (key
	// prefix, cache TTL, waits) are left out: configs that differ only in
	// them share a client.
	cfg      RedisStore
	url      *redisURL // the url, for a single server
	describe string    // where it connects, for logs, without credentials
	where    string    // where the data is, for StoreName

	// What the url and the settings come to together.
	username, password string
	db                 int
	clientName         string
	dialTimeout        time.Duration
	timeout            time.Duration // rueidis's ConnWriteTimeout

	// Made by loadTLS from the files the settings name, at Provision.
	tlsConfig *tls.Config
	tlsDigest string // of the files' contents, so that new files make a new client
}

// poolKey is the key under which the client is shared: two configs with
// equal connection settings get one client. The password is part of it;
// the key stays in this process's memory.
func (c *redisConn) poolKey() (string, error) {
	key, err := json.Marshal(c.cfg)
	return string(key) + c.tlsDigest, err
}

// locate works out where the settings connect, for logs and StoreName,
// and what the url and the settings come to together.
func (c *redisConn) locate() error {
	s := &c.cfg
	c.username, c.password, c.db = s.Username, s.Password, s.DB
	dial, read, write := time.Duration(s.DialTimeout), time.Duration(s.ReadTimeout), time.Duration(s.WriteTimeout)
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
		u, err := parseRedisURL(s.URL)
		if err != nil {
			return err
		}
		if err := c.merge(u, &dial, &read, &write); err != nil {
			return err
		}
		c.url, c.describe = u, u.shown
		c.where = fmt.Sprintf("%s;db=%d", u.addr, c.db)
	}
	if dial == 0 {
		dial = defaultRedisDialTimeout
	}
	if read == 0 {
		read = defaultRedisReadTimeout
	}
	c.dialTimeout, c.timeout = dial, max(read, write)
	return nil
}

// merge takes the settings of the url. Settings given both in the url and
// on their own are refused rather than one silently winning.
func (c *redisConn) merge(u *redisURL, dial, read, write *time.Duration) error {
	s := &c.cfg
	switch {
	case u.username != "" && s.Username != "":
		return fmt.Errorf("redis store: url %s already names a user: give it in one place", u.shown)
	case u.password != "" && s.Password != "":
		return fmt.Errorf("redis store: url %s already holds a password: give it in one place", u.shown)
	case u.db != 0 && s.DB != 0 && u.db != s.DB:
		return fmt.Errorf("redis store: url %s selects database %d, and db %d: give it in one place", u.shown, u.db, s.DB)
	case u.network == "unix" && s.TLS != nil:
		return fmt.Errorf("redis store: url %s is a unix socket, which takes no tls", u.shown)
	}
	for _, t := range []struct {
		name    string
		fromURL time.Duration
		setting *time.Duration
	}{
		{"dial_timeout", u.dialTimeout, dial},
		{"read_timeout", u.readTimeout, read},
		{"write_timeout", u.writeTimeout, write},
	} {
		if t.fromURL == 0 {
			continue
		}
		if *t.setting != 0 {
			return fmt.Errorf("redis store: url %s already sets %s: give it in one place", u.shown, t.name)
		}
		*t.setting = t.fromURL
	}
	setIf(&c.username, u.username)
	setIf(&c.password, u.password)
	setIf(&c.db, u.db)
	c.clientName = u.clientName
	return nil
}

func setIf[T comparable](into *T, v T) {
	var zero T
	if v != zero {
		*into = v
	}
}

// redisURL is what a url says.
type redisURL struct {
	shown   string // the url without its password or query, for messages
	network string // "tcp" or "unix"
	addr    string // host:port, or the socket's path
	host    string // the host, for TLS
	tls     bool   // rediss://

	username, password string
	db                 int
	dialTimeout        time.Duration
	readTimeout        time.Duration
	writeTimeout       time.Duration
	clientName         string
}

// redisURLQueryRefused says, for the query options of go-redis's urls
// that a url no longer takes, what to do instead.
var redisURLQueryRefused = func() map[string]string {
	m := map[string]string{
		"skip_verify":  "is now tls insecure_skip_verify: use that",
		"username":     "goes before the host (redis://user:password@host) or in username",
		"password":     "goes before the host (redis://:password@host) or in password",
		"addr":         "would make a cluster of a single server: give a cluster's nodes in addresses",
		"master_set":   "is Sentinel's: use sentinel",
		"master_name":  "is Sentinel's: use sentinel",
		"client_cache": "is now cache_size (off turns the cache off): use that",
	}
	for _, o := range []string{
		"pool_size", "pool_fifo", "pool_timeout", "min_idle_conns", "max_idle_conns",
		"max_active_conns", "max_concurrent_dials", "pipeline_pool_size",
		"pipeline_read_buffer_size", "pipeline_write_buffer_size", "conn_max_idle_time",
		"idle_timeout", "conn_max_lifetime", "max_conn_age", "conn_max_lifetime_jitter",
	} {
		m[o] = "no longer applies: the client pipelines concurrent commands over a few connections per Redis node, which it keeps open; remove it"
	}
	for _, o := range []string{"max_retries", "min_retry_backoff", "max_retry_backoff"} {
		m[o] = "no longer applies: the client retries a read on a new connection by itself; remove it"
	}
	return m
}()

// parseRedisURL reads a url of a single server. Its error never shows the
// password.
func parseRedisURL(raw string) (*redisURL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		// url.Parse's error repeats the url, password and all.
		return nil, errors.New("redis store: url is malformed: use redis://[[user]:password@]host[:port][/db]")
	}
	bare := *u
	bare.RawQuery, bare.ForceQuery = "", false
	r := &redisURL{shown: bare.Redacted()}
	if u.User != nil {
		r.username = u.User.Username()
		r.password, _ = u.User.Password()
	}
	switch u.Scheme {
	case "redis", "rediss":
		r.network, r.tls = "tcp", u.Scheme == "rediss"
		r.host = u.Hostname()
		if r.host == "" {
			r.host = "localhost"
		}
		port := u.Port()
		if port == "" {
			port = "6379"
		}
		r.addr = net.JoinHostPort(r.host, port)
		switch db := strings.Trim(u.Path, "/"); {
		case db == "":
		case strings.Contains(db, "/"):
			return nil, fmt.Errorf("redis store: url %s: its path is the database number alone", r.shown)
		default:
			if r.db, err = strconv.Atoi(db); err != nil || r.db < 0 {
				return nil, fmt.Errorf("redis store: url %s: %q is not a database number", r.shown, db)
			}
		}
	case "unix":
		if u.Host != "" || strings.TrimSpace(u.Path) == "" {
			return nil, fmt.Errorf("redis store: url %s: give the socket's path, as in unix:///run/redis.sock", r.shown)
		}
		r.network, r.addr = "unix", u.Path
	default:
		return nil, fmt.Errorf("redis store: url %s: the scheme is redis://, rediss:// or unix://", r.shown)
	}
	if err := r.parseQuery(u.RawQuery); err != nil {
		return nil, err
	}
	return r, nil
}

// parseQuery reads the query options that a url may hold, and refuses the
// others with what to do instead.
func (r *redisURL) parseQuery(raw string) error {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return fmt.Errorf("redis store: url %s: its query is malformed", r.shown)
	}
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if len(q[name]) > 1 {
			return fmt.Errorf("redis store: url %s: query option %q is given twice; give it once", r.shown, name)
		}
		parse, ok := redisURLOptions[name]
		if !ok {
			parse = refuseURLOption
		}
		err = parse(r, name, q.Get(name))
		if err != nil {
			return fmt.Errorf("redis store: url %s: %v", r.shown, err)
		}
	}
	return nil
}

// redisURLOptions parse each query option a url may hold.
var redisURLOptions = map[string]func(r *redisURL, name, v string) error{
	"dial_timeout":  func(r *redisURL, name, v string) error { return parseURLDuration(&r.dialTimeout, name, v) },
	"read_timeout":  func(r *redisURL, name, v string) error { return parseURLDuration(&r.readTimeout, name, v) },
	"write_timeout": func(r *redisURL, name, v string) error { return parseURLDuration(&r.writeTimeout, name, v) },
	"db": func(r *redisURL, _, v string) error {
		db, err := strconv.Atoi(v)
		switch {
		case err != nil || db < 0:
			return fmt.Errorf("db=%q is not a database number", v)
		case r.db != 0 && db != r.db:
			return fmt.Errorf("db=%d is not the database %d of its path: give it in one place", db, r.db)
		}
		r.db = db
		return nil
	},
	"client_name": func(r *redisURL, _, v string) error {
		if v == "" || strings.ContainsFunc(v, func(c rune) bool { return c <= ' ' || c > '~' }) {
			return fmt.Errorf("client_name=%q: a client name is printable ASCII without spaces", v)
		}
		r.clientName = v
		return nil
	},
	"protocol": func(_ *redisURL, _, v string) error {
		if v != "3" {
			return fmt.Errorf("protocol=%q: the store speaks RESP3, which its cache needs: remove protocol", v)
		}
		return nil
	},
}

// refuseURLOption refuses a query option the url may not hold, saying what
// to do instead.
func refuseURLOption(_ *redisURL, name, _ string) error {
	if instead, ok := redisURLQueryRefused[name]; ok {
		return fmt.Errorf("query option %q %s", name, instead)
	}
	return fmt.Errorf("unknown query option %q: a url takes only dial_timeout, read_timeout, write_timeout, db, client_name and protocol=3; give other settings in their own subdirectives", name)
}

// parseURLDuration reads a timeout of a url's query: a duration, or whole
// seconds as go-redis took them.
func parseURLDuration(into *time.Duration, name, v string) error {
	d, err := time.ParseDuration(v)
	if n, nerr := strconv.Atoi(v); nerr == nil {
		d, err = time.Duration(n)*time.Second, nil
	}
	if err != nil || d <= 0 {
		return fmt.Errorf("%s=%q is not a positive duration such as 3s", name, v)
	}
	*into = d
	return nil
}

// loadTLS reads the TLS files the settings name and makes the TLS
// configuration, if TLS is on.
func (c *redisConn) loadTLS() error {
	t := c.cfg.TLS
	if t == nil && (c.url == nil || !c.url.tls) {
		return nil
	}
	if t == nil {
		t = new(RedisTLS)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify}
	if c.url != nil {
		// Cluster nodes and sentinels are checked against the host of
		// their own address, which the TLS dialer takes when this is
		// empty.
		cfg.ServerName = c.url.host
	}
	digest := sha256.New()
	read := func(what, path string) ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("redis store: tls %s: %v", what, err)
		}
		fmt.Fprintf(digest, "%s:%d:", what, len(b))
		digest.Write(b)
		return b, nil
	}
	if t.CA != "" {
		pem, err := read("ca", t.CA)
		if err != nil {
			return err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("redis store: tls ca %s holds no PEM certificate", t.CA)
		}
	}
	if t.ClientCert != "" {
		certPEM, err := read("client_cert", t.ClientCert)
		if err != nil {
			return err
		}
		keyPEM, err := read("client_key", t.ClientKey)
		if err != nil {
			return err
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return fmt.Errorf("redis store: tls client_cert %s with key %s: %v", t.ClientCert, t.ClientKey, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	c.tlsConfig = cfg
	c.tlsDigest = hex.EncodeToString(digest.Sum(nil))
	return nil
}

// clientOption is the rueidis configuration of the settings, with cache as
// its cache unless noCache.
func (c *redisConn) clientOption(cache *redisstore.Cache, noCache bool) rueidis.ClientOption {
	s := &c.cfg
	dialer := net.Dialer{Timeout: c.dialTimeout, KeepAlive: redisKeepAlive}
	o := rueidis.ClientOption{
		Username:         c.username,
		Password:         c.password,
		SelectDB:         c.db,
		ClientName:       c.clientName,
		Dialer:           dialer,
		ConnWriteTimeout: c.timeout,
		TLSConfig:        c.tlsConfig,
		ClientSetInfo:    rueidis.DisableClientSetInfo,
		RetryDelay:       redisRetryDelay,
		DisableCache:     noCache || cache == nil,
	}
	if !o.DisableCache {
		cache.Configure(&o)
	}
	switch {
	case len(s.Addresses) > 0:
		o.InitAddress = slices.Clone(s.Addresses)
		o.ClusterOption.MaxMovedRedirections = redisMaxRedirects
	case s.sentinel():
		o.InitAddress = slices.Clone(s.SentinelAddresses)
		o.Sentinel = rueidis.SentinelOption{
			MasterSet:               s.MasterName,
			Username:                s.SentinelUsername,
			Password:                s.SentinelPassword,
			Dialer:                  dialer,
			TLSConfig:               c.tlsConfig,
			TopologyRefreshInterval: redisSentinelRefresh,
		}
	default:
		o.InitAddress = []string{c.url.addr}
		// A url is one server, never taken for a cluster seed.
		o.ForceSingleClient = true
		if c.url.network == "unix" {
			o.DialCtxFn = func(ctx context.Context, path string, d *net.Dialer, _ *tls.Config) (net.Conn, error) {
				return d.DialContext(ctx, "unix", path)
			}
		}
	}
	return o
}

// newClient makes a client with o.
func (c *redisConn) newClient(o rueidis.ClientOption) (rueidis.Client, error) {
	client, err := rueidis.NewClient(o)
	if err != nil {
		// A single client comes back with the error of its first dial.
		if client != nil {
			client.Close()
		}
		return nil, err
	}
	// rueidis takes a single address that is no cluster for a single
	// server; addresses are a cluster's.
	if len(c.cfg.Addresses) > 0 && client.Mode() != rueidis.ClientModeCluster {
		client.Close()
		return nil, fmt.Errorf("%v is no Redis Cluster (its cluster_enabled is off): give a single server as url", c.cfg.Addresses)
	}
	return client, nil
}

// redisClient is the pooled resource: the client of one set of connection
// settings and its cache, shared by every config with those settings. The
// client is made when a store first needs it, and again after a failure,
// at most once a second; Destruct closes it.
type redisClient struct {
	conn  *redisConn
	cache *redisstore.Cache // nil when cache_size is 0

	mu      sync.Mutex
	client  rueidis.Client
	dialing chan struct{} // closed when the making under way ends
	noCache bool          // Redis refused client tracking
	lastTry time.Time
	lastErr error
	closed  bool
}

func newRedisClient(conn *redisConn) *redisClient {
	size := int64(defaultRedisCacheSize)
	if conn.cfg.CacheSize != nil {
		size = *conn.cfg.CacheSize
	}
	p := &redisClient{conn: conn}
	if size > 0 {
		p.cache = redisstore.NewCache(size)
		p.cache.OnChange(redisSessionsChanged)
	}
	return p
}

// errRedisClientClosed is the error of a client that its last config let
// go of.
var errRedisClientClosed = errors.New("the redis client is closed")

// connect returns the client, making it if there is none yet. Errors are
// logged to logger, the logger of the config that asks.
func (p *redisClient) connect(logger *zap.Logger) (rueidis.Client, error) {
	p.mu.Lock()
	for {
		switch {
		case p.closed:
			p.mu.Unlock()
			return nil, errRedisClientClosed
		case p.client != nil:
			client := p.client
			p.mu.Unlock()
			return client, nil
		case p.dialing != nil:
			dialing := p.dialing
			p.mu.Unlock()
			<-dialing
			p.mu.Lock()
			continue
		case p.lastErr != nil && time.Since(p.lastTry) < redisReconnectEvery:
			err := p.lastErr
			p.mu.Unlock()
			return nil, err
		}
		break
	}
	dialing := make(chan struct{})
	p.dialing, p.lastTry = dialing, time.Now()
	noCache := p.noCache
	p.mu.Unlock()

	client, noCache, err := p.make(logger, noCache)

	p.mu.Lock()
	defer p.mu.Unlock()
	close(dialing)
	p.dialing, p.noCache = nil, noCache
	if err == nil && p.closed {
		client.Close()
		err = errRedisClientClosed
	}
	if err != nil {
		p.lastErr = err
		return nil, err
	}
	p.client, p.lastErr = client, nil
	return client, nil
}

// make makes the client, without the cache if noCache, or if Redis refuses
// client tracking, which it reports.
func (p *redisClient) make(logger *zap.Logger, noCache bool) (rueidis.Client, bool, error) {
	client, err := p.conn.newClient(p.conn.clientOption(p.cache, noCache))
	if err != nil && p.cache != nil && !noCache && errors.Is(err, rueidis.ErrNoCache) {
		logger.Warn("redis refused client tracking (CLIENT TRACKING, RESP3): the session store works without a local cache, "+
			"reading every session from Redis; allow the ACL user client|tracking, or set cache_size off to say so",
			zap.String("redis", p.conn.describe), zap.Error(err))
		noCache = true
		client, err = p.conn.newClient(p.conn.clientOption(p.cache, true))
	}
	if err == nil {
		checkEviction(logger, client, p.conn.describe)
	}
	return client, noCache, err
}

// ping makes the client if there is none yet and has Redis answer a PING,
// waiting at most timeout; a client still being made then is kept when it
// is.
func (p *redisClient) ping(logger *zap.Logger, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() {
		client, err := p.connect(logger)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			err = client.Do(ctx, client.B().Ping().Build()).Error()
		}
		done <- err
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("no answer within %s", timeout)
	}
}

// Destruct closes the client when the last config that holds it lets go.
func (p *redisClient) Destruct() error {
	p.mu.Lock()
	client := p.client
	p.client, p.closed = nil, true
	p.mu.Unlock()
	if client != nil {
		client.Close()
	}
	return nil
}

// redisSessionsChanged is told by a Redis cache of the keys that Redis
// invalidated: the sessions they hold changed, perhaps on another
// instance (sessionsChanged).
func redisSessionsChanged(keys []string) {
	var hashes []session.Hash
	for _, key := range keys {
		if hash, ok := redisstore.HashOfKey(key); ok {
			hashes = append(hashes, hash)
		}
	}
	sessionsChanged(keys, hashes)
}
