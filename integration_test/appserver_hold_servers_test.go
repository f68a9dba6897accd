package integration_test

// The app servers of the held-request tests: a request held inside a real app
// server (gunicorn, waitress, Express, php-fpm through php_fastcgi, and a
// Go app over an HTTP/2 upstream connection, reverse_proxy's `versions
// h2c`), its header not yet written, while its session changes
// underneath it. Each app holds the request on a named pipe: opening the
// pipe for writing returns once the app has opened it, so the request is
// in the app and its session loaded; closing it lets the app answer,
// with the session commands of the request's h=Name:value parameters.
// No sleep and no polling: the pipe is the rendezvous.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// holdServer is an app server behind Caddy, with the path that holds a
// request until its pipe is closed.
type holdServer struct {
	apps2Server // name, serve, command (its stream is unused here)
	// hold answers as command does, once the pipe of its query is
	// closed.
	hold string
}

// holdingPHP holds a PHP request on its pipe, then answers as the report
// script (index.php) does.
const holdingPHP = `<?php
$pipe = fopen($_GET['pipe'], 'r');
while (fgets($pipe) !== false) {
}
fclose($pipe);
require __DIR__ . '/index.php';
`

// holdServers starts one server of each kind, for the whole test.
func holdServers(t *testing.T) []holdServer {
	t.Helper()
	var out []holdServer
	for _, kind := range appServerKinds() {
		app := startAppServer(t, kind)
		out = append(out, holdServer{
			apps2Server: apps2Server{name: kind.name, serve: "reverse_proxy " + app.addr, command: "/emit"},
			hold:        "/hold",
		})
	}
	php := startPHPApp(t)
	php.write("index.php", phpReportScript)
	php.write("hold.php", holdingPHP)
	out = append(out, holdServer{
		apps2Server: apps2Server{
			name:    "php-fpm",
			serve:   fmt.Sprintf("root * %s\n\tphp_fastcgi %s {\n\t\ttry_files {path}.php index.php\n\t}", php.root, php.fpm.addr),
			command: "/report",
		},
		hold: "/hold",
	})
	h2c := startH2CApp(t)
	out = append(out, holdServer{
		apps2Server: apps2Server{
			name:    "h2c upstream",
			serve:   fmt.Sprintf("reverse_proxy %s {\n\t\ttransport http {\n\t\t\tversions h2c\n\t\t}\n\t}", h2c),
			command: "/emit",
		},
		hold: "/hold",
	})
	return out
}

// startH2CApp serves holdH2CApp over cleartext HTTP/2 only, on loopback,
// and returns its address.
func startH2CApp(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: http.HandlerFunc(holdH2CApp), Protocols: &protocols}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// holdH2CApp answers /emit and /hold as the other apps do, and refuses a
// request that did not come over HTTP/2: the tests must run over the
// HTTP/2 upstream they name.
func holdH2CApp(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 2 {
		http.Error(w, "not over HTTP/2", http.StatusHTTPVersionNotSupported)
		return
	}
	q := r.URL.Query()
	if r.URL.Path == "/stream" {
		// An event stream: a greeting for the session's user, flushed,
		// then one event once the pipe is closed.
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, "data: hello %s\n\n", r.Header.Get("X-Session-User"))
		http.NewResponseController(w).Flush()
		f, err := os.Open(q.Get("pipe"))
		if err != nil {
			return
		}
		secret, _ := io.ReadAll(f)
		f.Close()
		fmt.Fprintf(w, "data: %s\n\n", strings.TrimSpace(string(secret)))
		return
	}
	if r.URL.Path == "/hold-body" {
		// The header at once, the body once the pipe is closed.
		for _, h := range q["h"] {
			name, value, _ := strings.Cut(h, ":")
			w.Header().Add(name, value)
		}
		body, _ := json.Marshal(map[string]any{"server": "go-h2c", "headers": r.Header})
		first := q.Get("first")
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(first)+len(body)))
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, first)
		http.NewResponseController(w).Flush()
		f, err := os.Open(q.Get("pipe"))
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, f)
		f.Close()
		w.Write(body)
		return
	}
	if r.URL.Path == "/hold" {
		f, err := os.Open(q.Get("pipe"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.Copy(io.Discard, f)
		f.Close()
	}
	for _, h := range q["h"] {
		name, value, _ := strings.Cut(h, ":")
		w.Header().Add(name, value)
	}
	body, _ := json.Marshal(map[string]any{"server": "go-h2c", "headers": r.Header})
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// holdIn sends the hold path for the visitor with these commands
// ("Name:value") and returns once the app holds the request; the function
// it returns lets the app answer, and returns the answer read to its end.
func (srv holdServer) holdIn(t *testing.T, s *site, v *visitor, commands ...string) func() sentAnswer {
	t.Helper()
	raw := srv.holdWith(t, s, v, nil, commands...)
	return func() sentAnswer {
		t.Helper()
		r := raw()
		if r.err != nil {
			t.Fatalf("the held request: %v", r.err)
		}
		assertNoNamespace(t, r.res.Header)
		assertNoNamespace(t, r.res.Trailer)
		return r
	}
}

// holdWith is holdIn with more query parameters (name, value pairs); the
// answer it returns is as the client got it, an error included (r.res
// set if a response came before it).
func (srv holdServer) holdWith(t *testing.T, s *site, v *visitor, query []string, commands ...string) func() sentAnswer {
	t.Helper()
	pipe := filepath.Join(t.TempDir(), "hold")
	if err := syscall.Mkfifo(pipe, 0o600); err != nil {
		t.Fatal(err)
	}
	params := append([]string{"pipe", pipe}, query...)
	for _, c := range commands {
		params = append(params, "h", c)
	}
	req, err := http.NewRequest(http.MethodGet, s.url(appPath(srv.hold, params...)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.sid != "" {
		req.Header.Set("Cookie", "sid="+v.sid)
	}
	done := sendAside(t, req, &http.Transport{})
	opened := make(chan *os.File, 1)
	go func() {
		// Returns once the app has opened the pipe for reading.
		f, err := os.OpenFile(pipe, os.O_WRONLY, 0)
		if err != nil {
			close(opened)
			return
		}
		opened <- f
	}()
	var w *os.File
	t.Cleanup(func() {
		// Unblocks the open above if the app never opened the pipe.
		if r, err := os.OpenFile(pipe, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			defer r.Close()
		}
		if w != nil {
			w.Close()
		}
	})
	select {
	case w = <-opened:
		if w == nil {
			t.Fatal("opening the pipe the app holds the request on failed")
		}
	case r := <-done:
		t.Fatalf("the request was answered without being held in the app: %+v %q", r.res, r.body)
	case <-time.After(appServerStartTimeout):
		t.Fatal("the app never held the request")
	}
	return func() sentAnswer {
		t.Helper()
		w.Close()
		w = nil
		var r sentAnswer
		within(t, "the held request got no answer", func() { r = <-done })
		return r
	}
}

// holdLine is a live session as GET /session/export gives it.
type holdLine struct {
	Hash         string            `json:"hash"`
	IdleDeadline time.Time         `json:"idle_deadline"`
	Remembered   bool              `json:"remembered"`
	Values       map[string]string `json:"values"`
	Flash        map[string]string `json:"flash"`
}

// holdSessions returns every live session of the loaded config's one store,
// by hash.
func holdSessions(t *testing.T) map[string]holdLine {
	t.Helper()
	a := sessionAPI(t, http.MethodGet, "/session/export", "")
	if a.status != http.StatusOK {
		t.Fatalf("GET /session/export: %d %s", a.status, a.body)
	}
	var page struct {
		Sessions   []holdLine `json:"sessions"`
		NextCursor string     `json:"next_cursor"`
	}
	if err := json.Unmarshal(a.body, &page); err != nil {
		t.Fatalf("decoding the export %s: %v", a.body, err)
	}
	if page.NextCursor != "" {
		t.Fatal("the export has more than one page: the test's store holds more sessions than it made")
	}
	out := map[string]holdLine{}
	for _, l := range page.Sessions {
		out[l.Hash] = l
	}
	return out
}

// holding returns the live sessions that hold value under any key, as a
// value or a flash value.
func holding(sessions map[string]holdLine, value string) []holdLine {
	var out []holdLine
	for _, l := range sessions {
		for _, m := range []map[string]string{l.Values, l.Flash} {
			for _, v := range m {
				if v == value {
					out = append(out, l)
				}
			}
		}
	}
	return out
}
