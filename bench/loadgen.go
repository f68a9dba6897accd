package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The load generator: closed-loop HTTP/1.1 clients on keep-alive
// connections, like wrk, written against the raw connection so that the
// client costs little CPU on a machine it shares with the servers it
// measures. Every request's latency is kept (a run is seconds long), so
// the percentiles are exact.

// target is what one variant of a case sends: to which address, and how
// to build each request.
type target struct {
	addr string
	// request appends the next request of client c to buf.
	request func(c *client, buf []byte) []byte
}

// client is one connection's worth of load.
type client struct {
	index int    // of the client in its run
	n     uint64 // requests sent so far, for choosing sessions
	conn  net.Conn
	br    *bufio.Reader
	buf   []byte
}

// result is what one run of one target measured.
type result struct {
	requests int
	errors   int // failed connections or unreadable responses
	bad      int // responses with a status other than 200
	elapsed  time.Duration
	lat      []time.Duration
}

func (r result) rate() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// merge adds another run of the same target.
func (r *result) merge(o result) {
	r.requests += o.requests
	r.errors += o.errors
	r.bad += o.bad
	r.elapsed += o.elapsed
	r.lat = append(r.lat, o.lat...)
}

// percentile returns the p-th percentile latency (0 < p < 100), sorting
// the samples in place.
func (r *result) percentile(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	if !slices.IsSorted(r.lat) {
		slices.Sort(r.lat)
	}
	i := int(float64(len(r.lat)-1) * p / 100)
	return r.lat[i]
}

// maxErrors ends a run early: something is broken, and the numbers would
// mean nothing.
const maxErrors = 1000

// run puts conns clients to work on t for d, and returns what they saw.
func run(t target, conns int, d time.Duration) result {
	results := make([]result, conns)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = drive(t, &client{index: i}, deadline)
		}()
	}
	wg.Wait()
	total := result{elapsed: time.Since(start)}
	for _, r := range results {
		total.requests += r.requests
		total.errors += r.errors
		total.bad += r.bad
		total.lat = append(total.lat, r.lat...)
	}
	return total
}

// drive sends requests one after another until the deadline.
func drive(t target, c *client, deadline time.Time) result {
	var r result
	r.lat = make([]time.Duration, 0, 1<<14)
	defer func() {
		if c.conn != nil {
			c.conn.Close()
		}
	}()
	for time.Now().Before(deadline) && r.errors < maxErrors/4 {
		if c.conn == nil {
			conn, err := net.DialTimeout("tcp", t.addr, 5*time.Second)
			if err != nil {
				r.errors++
				time.Sleep(10 * time.Millisecond)
				continue
			}
			c.conn, c.br = conn, bufio.NewReaderSize(conn, 16<<10)
		}
		c.buf = t.request(c, c.buf[:0])
		c.n++
		begin := time.Now()
		c.conn.SetDeadline(begin.Add(10 * time.Second))
		status, keep, _, err := roundTrip(c.conn, c.br, c.buf, nil)
		took := time.Since(begin)
		if err != nil {
			r.errors++
			c.conn.Close()
			c.conn = nil
			continue
		}
		r.requests++
		r.lat = append(r.lat, took)
		if status != 200 {
			r.bad++
		}
		if !keep {
			c.conn.Close()
			c.conn = nil
		}
	}
	return r
}

// roundTrip writes a request and reads its response, discarding the body.
// With cookie set (such as "sid="), it also returns a copy of the value
// of the response's Set-Cookie of that name, nil if it set none.
func roundTrip(conn net.Conn, br *bufio.Reader, req, cookie []byte) (status int, keep bool, set []byte, err error) {
	if _, err := conn.Write(req); err != nil {
		return 0, false, nil, err
	}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, nil, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, nil, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, nil, fmt.Errorf("bad status line %q", line)
	}
	length, chunked, keep := -1, false, true
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, false, nil, err
		}
		if len(line) <= 2 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, err = strconv.Atoi(string(value))
			if err != nil {
				return 0, false, nil, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		case cookie != nil && bytes.EqualFold(name, []byte("Set-Cookie")) && bytes.HasPrefix(value, cookie):
			v, _, _ := bytes.Cut(value[len(cookie):], []byte(";"))
			set = bytes.Clone(v)
		}
	}
	switch {
	case chunked:
		err = discardChunked(br)
	case length > 0:
		_, err = br.Discard(length)
	case length < 0 && status != 204 && status != 304:
		return 0, false, nil, errors.New("a response with no length: the bench needs keep-alive")
	}
	return status, keep, set, err
}

// sequence sends n requests to addr, request i built by build, over
// workers keep-alive connections at once, and gives got the value of the
// cookie each response set (nil if none; got may be nil). Unlike run, it
// stops at the first error or status other than 200: it makes state that
// a case then measures.
func sequence(addr string, n, workers int, build func(i int, buf []byte) []byte, cookie string, got func(i int, value []byte)) error {
	var next atomic.Int64
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var conn net.Conn
			var br *bufio.Reader
			var buf []byte
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if conn == nil {
					c, err := net.DialTimeout("tcp", addr, 5*time.Second)
					if err != nil {
						errs <- err
						return
					}
					conn, br = c, bufio.NewReaderSize(c, 16<<10)
				}
				buf = build(i, buf[:0])
				conn.SetDeadline(time.Now().Add(30 * time.Second))
				var want []byte
				if cookie != "" {
					want = []byte(cookie + "=")
				}
				status, keep, set, err := roundTrip(conn, br, buf, want)
				if err == nil && status != 200 {
					err = fmt.Errorf("%s answered %d", addr, status)
				}
				if err != nil {
					errs <- err
					return
				}
				if got != nil {
					got(i, set)
				}
				if !keep {
					conn.Close()
					conn = nil
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func discardChunked(br *bufio.Reader) error {
	for range 1 << 20 {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.SplitN(line, []byte(";"), 2)[0])), 16, 64)
		if err != nil {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if size == 0 {
			// Trailers, then the final CRLF.
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(line) <= 2 {
					return nil
				}
			}
		}
		if _, err := br.Discard(int(size) + 2); err != nil {
			return err
		}
	}
	return io.ErrUnexpectedEOF
}

// requestTo returns a request builder for GET path on addr, with a Cookie
// header naming a session from ids (cookie name=value), or no session
// cookie when ids is empty. The other headers are what a browser sends, so
// that the header rewrite has work to do. Clients walk the sessions in
// turn from different starting points, so that every session is used and
// none by two clients at once; with random, each request draws a session
// at random instead, so that a large store is read all over rather than in
// a small working set.
func requestTo(addr, path, cookie string, ids []string, random bool) func(*client, []byte) []byte {
	return requestWith(addr, path, cookie, ids, random, "")
}

// carried are three request headers as large as the ones the session
// handler forwards for a session of the read case, under names outside its
// namespace: a plain proxy that carries them does the work of forwarding
// the session's data, without a session.
const carried = "X-Carried-User: user-0000042@example.com\r\n" +
	"X-Carried-Roles: " + "admin,editor,viewer" + "\r\n" +
	"X-Carried-Cart: " + "sku-1001,sku-1002,sku-1003,sku-1004,sku-1005,sku-1006" + "\r\n"

// browserHead is a request's first lines, up to the cookies: what a
// browser sends.
func browserHead(addr, path, extra string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\n" + extra +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\n" +
		"Accept-Language: en-US,en;q=0.5\r\n" +
		"Connection: keep-alive\r\n"
}

// loginSeq numbers the logins of the whole run, for the X-Login header.
var loginSeq atomic.Int64

// requestLogin returns a request builder for GET path on addr without a
// session, each request with an X-Login header of its own: the tag of its
// number that loginName uses. The upstreams inside the servers of the
// one-CPU mode, which keep no counter, name the user of a login after it,
// as bench/upstream.go names it after its own counter.
func requestLogin(addr, path string) func(*client, []byte) []byte {
	head := browserHead(addr, path, "") + "Cookie: theme=dark; lang=en\r\nX-Login: "
	return func(_ *client, buf []byte) []byte {
		buf = append(buf, head...)
		buf = appendLoginTag(buf, loginSeq.Add(1))
		return append(buf, "\r\n\r\n"...)
	}
}

// requestWith is requestTo with extra header lines.
func requestWith(addr, path, cookie string, ids []string, random bool, extra string) func(*client, []byte) []byte {
	head := browserHead(addr, path, extra)
	if len(ids) == 0 {
		full := []byte(head + "Cookie: theme=dark; lang=en\r\n\r\n")
		return func(_ *client, buf []byte) []byte { return append(buf, full...) }
	}
	prefix := head + "Cookie: theme=dark; " + cookie + "="
	const suffix = "; lang=en\r\n\r\n"
	n := uint64(len(ids))
	return func(c *client, buf []byte) []byte {
		i := uint64(c.index)*7919 + c.n
		if random {
			i = mix(i)
		}
		buf = append(buf, prefix...)
		buf = append(buf, ids[i%n]...)
		return append(buf, suffix...)
	}
}

// mix is splitmix64's finalizer: a cheap, well-scattered hash.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 27
	x *= 0x94D049BB133111EB
	return x ^ x>>31
}
