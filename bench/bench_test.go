package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The load generator against a real server: plain, chunked and closing
// responses are all read to their end, and every request is counted.
func TestLoadGenerator(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.Write([]byte("part one, "))
			w.(http.Flusher).Flush()
			w.Write([]byte("part two"))
		case "/close":
			w.Header().Set("Connection", "close")
			fmt.Fprint(w, "bye")
		case "/status":
			w.WriteHeader(http.StatusTeapot)
		default:
			if !strings.Contains(r.Header.Get("Cookie"), "sid=") {
				http.Error(w, "no session cookie", http.StatusBadRequest)
				return
			}
			fmt.Fprint(w, "hello")
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		path string
		ids  []string
		bad  bool
	}{
		{"/", []string{"a", "b", "c"}, false},
		{"/chunked", nil, false},
		{"/close", nil, false},
		{"/status", nil, true},
	} {
		res := run(target{addr, requestTo(addr, tc.path, "sid", tc.ids, true)}, 4, 200*time.Millisecond)
		if res.requests == 0 || res.errors != 0 {
			t.Fatalf("%s: %d requests, %d errors", tc.path, res.requests, res.errors)
		}
		if (res.bad == res.requests) != tc.bad || (res.bad != 0) != tc.bad {
			t.Fatalf("%s: %d of %d responses not 200", tc.path, res.bad, res.requests)
		}
		if len(res.lat) != res.requests || res.percentile(50) <= 0 || res.percentile(99) < res.percentile(50) {
			t.Fatalf("%s: %d latencies for %d requests, p50 %s, p99 %s", tc.path, len(res.lat), res.requests, res.percentile(50), res.percentile(99))
		}
	}
}

// Each mode's results go between markers of their own: a run of one mode
// replaces its block and leaves the other's.
// sequence sends each request once, in keep-alive connections that a
// server may close, and hands back the session cookie of each response.
func TestSequence(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := r.Header.Get("X-Login")
		http.SetCookie(w, &http.Cookie{Name: "theme", Value: "dark"})
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "id-" + n, Path: "/", HttpOnly: true})
		if strings.HasSuffix(n, "7") {
			w.Header().Set("Connection", "close")
		}
		fmt.Fprint(w, "hello")
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	build := requestLogin(addr, "/login")
	got := make([]string, 500)
	first := loginSeq.Load() + 1
	err := sequence(addr, len(got), 8, func(_ int, buf []byte) []byte { return build(nil, buf) },
		"sid", func(i int, v []byte) { got[i] = string(v) })
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, v := range got {
		if !strings.HasPrefix(v, "id-") || seen[v] {
			t.Fatalf("request %d: cookie %q (a duplicate: %t)", i, v, seen[v])
		}
		seen[v] = true
	}
	if !seen["id-"+string(appendLoginTag(nil, first))] || !seen["id-"+string(appendLoginTag(nil, first+499))] {
		t.Fatalf("the X-Login tags were not those of the numbers %d to %d", first, first+499)
	}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer bad.Close()
	baddr := strings.TrimPrefix(bad.URL, "http://")
	if err := sequence(baddr, 10, 2, func(_ int, buf []byte) []byte { return build(nil, buf) }, "", nil); err == nil {
		t.Fatal("a 403 passed")
	}
}

func TestWriteResults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "B.md")
	os.WriteFile(path, []byte("# Title\n\nkept\n"), 0o644)
	for _, w := range []struct {
		text   string
		oneCPU bool
	}{{"first", false}, {"one", true}, {"second", false}, {"two", true}} {
		if err := writeResults(path, w.text, w.oneCPU); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	want := "# Title\n\nkept\n\n" + beginMarker + "\nsecond\n" + endMarker + "\n\n" +
		oneCPUBeginMarker + "\ntwo\n" + oneCPUEndMarker + "\n"
	if string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -5000: "-5,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// INFO commandstats as Redis 7 writes it: subcommands under their own
// names, and the bench's own INFO left out of what happened since.
func TestCommandStats(t *testing.T) {
	parse := func(text string) commandCalls {
		t.Helper()
		info := map[string]string{}
		for _, line := range strings.Split(text, "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok {
				info[name] = value
			}
		}
		c, err := parseCommandStats(info)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	before := parse("cmdstat_hgetall:calls=10,usec=40,usec_per_call=4.00,rejected_calls=0,failed_calls=0\n" +
		"cmdstat_info:calls=3,usec=300,usec_per_call=100.00,rejected_calls=0,failed_calls=0")
	after := parse("cmdstat_hgetall:calls=110,usec=400,usec_per_call=3.64,rejected_calls=0,failed_calls=0\n" +
		"cmdstat_info:calls=4,usec=400,usec_per_call=100.00,rejected_calls=0,failed_calls=0\n" +
		"cmdstat_evalsha:calls=2,usec=20,usec_per_call=10.00,rejected_calls=0,failed_calls=0\n" +
		"cmdstat_client|tracking:calls=1,usec=1,usec_per_call=1.00,rejected_calls=0,failed_calls=0\n" +
		"used_memory:123")
	got := after.since(before)
	want := commandCalls{"hgetall": 100, "evalsha": 2, "client|tracking": 1}
	if len(got) != len(want) || got.total() != 103 {
		t.Fatalf("got %v, want %v", got, want)
	}
	for cmd, n := range want {
		if got[cmd] != n {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if s := got.perRequest(100); s != "HGETALL 1.0000, EVALSHA 0.0200, CLIENT|TRACKING 0.0100" {
		t.Fatalf("perRequest: %q", s)
	}
	if _, err := parseCommandStats(map[string]string{"cmdstat_get": "usec=1"}); err == nil {
		t.Fatal("a line without calls= was accepted")
	}
}

// The login storm's users are distinct, short, and in no order: about
// half the names are above the one before, where u1, u2, ... were all
// above it (in the order an index would hold them, with equal lengths).
func TestLoginNames(t *testing.T) {
	const n = 100_000
	seen := make(map[string]bool, n)
	rising, longest := 0, 0
	prev := ""
	for i := int64(1); i <= n; i++ {
		name := loginName(i)
		if seen[name] {
			t.Fatalf("login %d: %q was given before", i, name)
		}
		seen[name] = true
		longest = max(longest, len(name))
		if name > prev {
			rising++
		}
		prev = name
	}
	if rising < n*4/10 || rising > n*6/10 {
		t.Fatalf("%d of %d names are above the one before: they come in order", rising, n)
	}
	if longest > 8 {
		t.Fatalf("a name of %d bytes: Redis's memory per session is measured over short ones", longest)
	}
}
