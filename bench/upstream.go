package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The upstream: one small, fast app behind every proxy of every case. It
// runs in its own process (the bench binary with the argument
// "upstream"), so that its work is not charged to the load generator.
//
//	/read    a 100-byte page; no session commands
//	/login   a login: sets the user key to a short name of its own
//	         (loginName; a new session per request; with a session of
//	         another user, a rotation to a new ID)
//	/login3  a fuller login: sets user, roles and cart (about 100 bytes)
//	/logout  destroys the session
//	/whoami  the user the proxy forwarded (X-Session-User) as the body,
//	         empty without a session
//	/echo    the request headers as JSON, to check what a proxy forwards
//
// The session commands are given in both protocols, caddy-session's
// X-Session-Set-<Key> and mod_session's X-Replace-Session; each proxy acts
// on its own and passes the other through.

var page = []byte(strings.Repeat("benchmark page. ", 6) + "end.\n") // 100 bytes

var roles, cart = "admin,editor,viewer", "sku-1001,sku-1002,sku-1003,sku-1004,sku-1005,sku-1006"

// loginName is the user of the n-th login of the login storm: short and
// distinct, for Redis's memory per session is measured over them, one
// small key each, and in no order. Users do not log in in the order of
// their names, and an index keyed by names given in order fills one page
// at a time: the suite once named them u1, u2, ..., and bolt's identity
// index, then keyed by the clear name, measured 0.655 with those names
// and 0.550 with names in no order (BENCHMARKS.md, "Two CPUs"). The tag is
// n through murmur3's 32-bit finalizer, in base 36: each of its steps can
// be undone, so no two of the first 2^32 logins share a name.
func loginName(n int64) string {
	return "u" + string(appendLoginTag(nil, n))
}

// appendLoginTag appends the tag loginName puts after its "u".
func appendLoginTag(b []byte, n int64) []byte {
	x := uint32(n)
	x ^= x >> 16
	x *= 0x85ebca6b
	x ^= x >> 13
	x *= 0xc2b2ae35
	x ^= x >> 16
	return strconv.AppendUint(b, uint64(x), 36)
}

func serveUpstream(addr string) error {
	var logins atomic.Int64
	answer := func(w http.ResponseWriter, body []byte) {
		h := w.Header()
		h["Content-Type"] = []string{"text/plain; charset=utf-8"}
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
		w.WriteHeader(http.StatusOK)
		w.Write(body)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		answer(w, page)
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		user := loginName(logins.Add(1))
		h := w.Header()
		h["X-Session-Set-User"] = []string{user}
		h["X-Replace-Session"] = []string{"user=" + url.QueryEscape(user)}
		answer(w, page)
	})
	mux.HandleFunc("/login3", func(w http.ResponseWriter, r *http.Request) {
		user := fmt.Sprintf("user-%07d@example.com", logins.Add(1))
		h := w.Header()
		h["X-Session-Set-User"] = []string{user}
		h["X-Session-Set-Roles"] = []string{roles}
		h["X-Session-Set-Cart"] = []string{cart}
		h["X-Replace-Session"] = []string{url.Values{"user": {user}, "roles": {roles}, "cart": {cart}}.Encode()}
		answer(w, page)
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Session-Destroy"] = []string{"true"}
		answer(w, page)
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		answer(w, []byte(r.Header.Get("X-Session-User")))
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := json.Marshal(r.Header)
		answer(w, b)
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
	return srv.Serve(l)
}
