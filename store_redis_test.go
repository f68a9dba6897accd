package caddysession

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-session/caddy-session/internal/redistest"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

func TestRedisStoreCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    RedisStore
		wantErr string
	}{
		{name: "bare", input: `redis`, want: RedisStore{}},
		{name: "url", input: `redis redis://cache:6380/2`, want: RedisStore{URL: "redis://cache:6380/2"}},
		{name: "everything", input: `redis rediss://cache:6380 {
			username caddy
			password "{env.REDIS_PASSWORD}"
			db 3
			tls insecure_skip_verify
			key_prefix app1:
			dial_timeout 2s
			read_timeout 500ms
			write_timeout 1s
			pool_size 20
		}`, want: RedisStore{
			URL: "rediss://cache:6380", Username: "caddy", Password: "{env.REDIS_PASSWORD}", DB: 3,
			TLS: &RedisTLS{InsecureSkipVerify: true}, KeyPrefix: "app1:",
			DialTimeout: caddy.Duration(2 * time.Second), ReadTimeout: caddy.Duration(500 * time.Millisecond),
			WriteTimeout: caddy.Duration(time.Second), PoolSize: 20,
		}},
		{name: "cluster", input: `redis {
			addresses 10.0.0.1:6379 10.0.0.2:6379 10.0.0.3:6379
			tls
		}`, want: RedisStore{Addresses: []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"}, TLS: &RedisTLS{}}},
		{name: "sentinel", input: `redis {
			sentinel mymaster 10.0.0.1:26379 10.0.0.2:26379
			db 1
		}`, want: RedisStore{MasterName: "mymaster", SentinelAddresses: []string{"10.0.0.1:26379", "10.0.0.2:26379"}, DB: 1}},

		{name: "two urls", input: `redis redis://a redis://b`, wantErr: "wrong argument count"},
		{name: "unknown", input: `redis { database 1 }`, wantErr: `unknown redis store subdirective "database"`},
		{name: "cluster with db", input: `redis {
			addresses 10.0.0.1:6379 10.0.0.2:6379
			db 1
		}`, wantErr: "Redis Cluster has only database 0"},
		{name: "url and cluster", input: `redis redis://a:6379 {
			addresses 10.0.0.1:6379
		}`, wantErr: "give one of them"},
		{name: "url and sentinel", input: `redis redis://a:6379 {
			sentinel mymaster 10.0.0.1:26379
		}`, wantErr: "give one of them"},
		{name: "cluster and sentinel", input: `redis {
			addresses 10.0.0.1:6379
			sentinel mymaster 10.0.0.1:26379
		}`, wantErr: "give one of them"},
		{name: "sentinel without addresses", input: `redis {
			sentinel mymaster
		}`, wantErr: "sentinel needs the master name, then at least one host:port"},
		{name: "no addresses", input: `redis {
			addresses
		}`, wantErr: "addresses needs at least one host:port"},
		{name: "bad address", input: `redis {
			addresses 10.0.0.1
		}`, wantErr: `address "10.0.0.1" is not host:port`},
		{name: "malformed url", input: `redis http://cache:6379`, wantErr: "redis store: url http://cache:6379"},
		{name: "url with a bad db", input: `redis redis://cache:6379/x`, wantErr: "redis store: url redis://cache:6379/x"},
		{name: "password twice", input: `redis redis://:s3cret@cache:6379 {
			password other
		}`, wantErr: "already holds a password"},
		{name: "password is not shown", input: `redis redis://:s3cret@cache:6379 {
			password other
		}`, wantErr: "redis://:xxxxx@cache:6379"},
		{name: "db twice", input: `redis redis://cache:6379/2 {
			db 3
		}`, wantErr: "selects database 2, and db 3"},
		{name: "unix socket with tls", input: `redis unix:///run/redis.sock {
			tls
		}`, wantErr: "unix socket, which takes no tls"},
		{name: "bad db", input: `redis { db -1 }`, wantErr: `db: "-1" is not a valid number`},
		{name: "bad pool size", input: `redis { pool_size 0 }`, wantErr: `pool_size: "0" is not a valid number`},
		{name: "bad timeout", input: `redis { read_timeout soon }`, wantErr: `read_timeout: "soon" is not a positive duration`},
		{name: "bad tls option", input: `redis { tls verify }`, wantErr: `tls takes only insecure_skip_verify`},
		{name: "braces in the prefix", input: `redis {
			key_prefix "app{1}:"
		}`, wantErr: "must not contain '{' or '}'"},
		// Every setting may be given once: the second would silently win.
		{name: "repeated password", input: `redis {
			password one
			password two
		}`, wantErr: `redis store subdirective "password" is given twice; give it once, at Testfile:3`},
		{name: "repeated addresses", input: `redis {
			addresses 10.0.0.1:6379
			addresses 10.0.0.2:6379
		}`, wantErr: `"addresses" is given twice`},
		{name: "repeated sentinel", input: `redis {
			sentinel a 10.0.0.1:26379
			sentinel b 10.0.0.2:26379
		}`, wantErr: `"sentinel" is given twice`},
		{name: "repeated tls", input: `redis {
			tls
			tls insecure_skip_verify
		}`, wantErr: `"tls" is given twice`},
		{name: "repeated timeout", input: `redis {
			read_timeout 1s
			read_timeout 2s
		}`, wantErr: `"read_timeout" is given twice`},
		{name: "repeated db", input: `redis {
			db 1
			db 1
		}`, wantErr: `"db" is given twice`},
		// A contradiction found once the block is read still names the
		// file and line, and keeps the error it wraps.
		{name: "contradiction has a line", input: `redis redis://a:6379 {
			addresses 10.0.0.1:6379
		}`, wantErr: "give one of them, at Testfile:3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got RedisStore
			err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestRedisStoreJSON checks the contradictions that only JSON can express,
// where the Caddyfile's syntax rules them out, at Provision.
func TestRedisStoreJSON(t *testing.T) {
	tests := []struct {
		name, json, wantErr string
	}{
		{"sentinel without master", `{"sentinel_addresses": ["10.0.0.1:26379"]}`, "sentinel needs the name of the master"},
		{"master without sentinels", `{"master_name": "mymaster"}`, "sentinel needs the addresses of the sentinels"},
		{"cluster with db", `{"addresses": ["10.0.0.1:6379"], "db": 2}`, "Redis Cluster has only database 0"},
		{"negative timeout", `{"read_timeout": "-1s"}`, "must be positive"},
		{"malformed url", `{"url": "redis://cache:port"}`, "redis store: url"},
		{"malformed url in env", `{"url": "{env.CADDY_SESSION_TEST_URL}"}`, "redis store: url ftp://x"},
	}
	t.Setenv("CADDY_SESSION_TEST_URL", "ftp://x")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r RedisStore
			if err := json.Unmarshal([]byte(tc.json), &r); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			err := r.Provision(ctx)
			if err == nil {
				r.Cleanup()
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Provision = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// provision loads a RedisStore from JSON, as Caddy would, and cleans it up
// at the end of the test unless the test does.
func provision(t *testing.T, config string) *RedisStore {
	t.Helper()
	var r RedisStore
	if err := json.Unmarshal([]byte(config), &r); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := r.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Cleanup() })
	return &r
}

// TestRedisStorePasswordPlaceholder connects to a server that needs a
// password given as {env.X} in JSON, which is replaced at Provision.
func TestRedisStorePasswordPlaceholder(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", "p{a}ss")
	t.Setenv("CADDY_SESSION_TEST_PASSWORD", "p{a}ss")
	tests := []struct {
		name, password string
		ok             bool
	}{
		{"placeholder", "{env.CADDY_SESSION_TEST_PASSWORD}", true},
		// Braces that are no placeholder reach Redis as written.
		{"literal", "p{a}ss", true},
		{"wrong", "{env.CADDY_SESSION_NO_SUCH_VARIABLE}", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			config, _ := json.Marshal(map[string]any{"url": srv.URL(), "password": tc.password})
			s := provision(t, string(config)).SessionStore()
			_, err := s.Load(t.Context(), session.HashID("x"), time.Now(), session.Timeouts{Idle: time.Minute, Absolute: time.Hour})
			if tc.ok && !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Load = %v, want ErrNotFound from a server that let us in", err)
			}
			if !tc.ok && (err == nil || errors.Is(err, store.ErrNotFound)) {
				t.Fatalf("Load with a wrong password = %v, want an authentication error", err)
			}
		})
	}
}

// TestRedisStoreSharesClient checks that configs with the same connection
// share one client across a reload, whatever their key prefixes, and that
// the last one to go closes it.
func TestRedisStoreSharesClient(t *testing.T) {
	srv := redistest.Start(t)
	url := `"url": "` + srv.URL() + `"`
	a := provision(t, `{`+url+`}`)
	b := provision(t, `{`+url+`, "key_prefix": "other:"}`)
	c := provision(t, `{`+url+`, "read_timeout": "1s"}`)
	if want := "redis:" + srv.Addr() + ";db=0;key_prefix=other:"; b.StoreName() != want {
		t.Errorf("StoreName = %q, want %q", b.StoreName(), want)
	}
	if a.StoreName() == b.StoreName() {
		t.Error("stores with different key prefixes have the same name")
	}
	if a.client != b.client {
		t.Error("two configs with the same connection got two clients")
	}
	if a.client == c.client {
		t.Error("configs with different timeouts share a client")
	}
	client := a.client
	if err := a.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(t.Context()).Err(); err != nil {
		t.Fatalf("the client closed while another config uses it: %v", err)
	}
	if err := b.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(t.Context()).Err(); err == nil {
		t.Fatal("the client is still open after the last config using it went")
	}
}

// TestRedisStoreUnreachable checks that a Redis that is down at load time
// does not fail the config: requests get a 503 until it is up.
func TestRedisStoreUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: waits out the dial retries to a stopped Redis")
	}
	srv := redistest.Start(t)
	srv.Stop()
	s := provision(t, `{"url": "`+srv.URL()+`", "dial_timeout": "200ms"}`).SessionStore()
	_, err := s.Load(t.Context(), session.HashID("x"), time.Now(), session.Timeouts{Idle: time.Minute, Absolute: time.Hour})
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load from a stopped Redis = %v, want an error", err)
	}
	srv.Start()
	_, err = s.Load(t.Context(), session.HashID("x"), time.Now(), session.Timeouts{Idle: time.Minute, Absolute: time.Hour})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load once Redis is up = %v, want ErrNotFound", err)
	}
}
