package session

import (
	"net/http"
	"testing"
)

// The benchmarks of the per-request work of the header protocol. They
// measure one step each; the root package's BenchmarkReadPath measures a
// whole request. `go test -run='^$' -bench=. -benchmem ./session/`

// benchID is a fixed, well-formed session ID.
var benchID = NewID()

// benchValues is a typical small session: 3 keys, about 100 bytes.
var benchValues = map[string]string{
	"user":  "user-000042@example.com",
	"roles": "admin,editor,viewer",
	"cart":  "sku-1001,sku-1002,sku-1003,sku-1004,sku-1005,sku-1006",
}

// browserHeader is what a browser sends with a session cookie among
// others, plus one forged namespace header for Scrub to find.
func browserHeader() http.Header {
	return http.Header{
		"Host":            {"app.example.com"},
		"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
		"Accept":          {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
		"Accept-Language": {"en-US,en;q=0.5"},
		"Accept-Encoding": {"gzip, deflate, br"},
		"Cookie":          {"theme=dark; sid=" + benchID + "; lang=en"},
		"Connection":      {"keep-alive"},
	}
}

func BenchmarkCandidates(b *testing.B) {
	c := &Cookie{Name: DefaultCookieName}
	r, _ := http.NewRequest(http.MethodGet, "http://app.example.com/", nil)
	r.Header = browserHeader()
	b.ReportAllocs()
	for b.Loop() {
		if ids := c.Candidates(r); len(ids) != 1 {
			b.Fatal(ids)
		}
	}
}

func BenchmarkCandidatesNoCookie(b *testing.B) {
	c := &Cookie{Name: DefaultCookieName}
	r, _ := http.NewRequest(http.MethodGet, "http://app.example.com/", nil)
	r.Header = browserHeader()
	delete(r.Header, "Cookie")
	b.ReportAllocs()
	for b.Loop() {
		if ids := c.Candidates(r); len(ids) != 0 {
			b.Fatal(ids)
		}
	}
}

func BenchmarkHashID(b *testing.B) {
	b.ReportAllocs()
	var h Hash
	for b.Loop() {
		h = HashID(benchID)
	}
	_ = h
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewID()
	}
}

func BenchmarkHashShort(b *testing.B) {
	h := HashID(benchID)
	b.ReportAllocs()
	for b.Loop() {
		_ = h.Short()
	}
}

// BenchmarkHeaderRewrite is the request side of the protocol for a read:
// scrub the namespace (and the Connection header), strip the session
// cookie, forward 3 keys. The
// header is rebuilt each iteration, as each request brings its own; that
// costs the same as in BenchmarkHeaderCopy, which is the baseline to
// subtract.
func BenchmarkHeaderRewrite(b *testing.B) {
	p := NewProtocol(DefaultHeaderPrefix, nil, DefaultLimits())
	c := &Cookie{Name: DefaultCookieName}
	tmpl := browserHeader()
	tmpl["X_session_user"] = []string{"mallory"}
	b.ReportAllocs()
	for b.Loop() {
		h := tmpl.Clone()
		p.Scrub(h)
		p.ScrubConnection(h)
		c.Strip(h)
		p.Forward(h, benchValues)
		if len(h["X-Session-User"]) != 1 {
			b.Fatal(h)
		}
	}
}

func BenchmarkHeaderCopy(b *testing.B) {
	tmpl := browserHeader()
	tmpl["X_session_user"] = []string{"mallory"}
	b.ReportAllocs()
	for b.Loop() {
		_ = tmpl.Clone()
	}
}

func BenchmarkScrub(b *testing.B) {
	p := NewProtocol(DefaultHeaderPrefix, nil, DefaultLimits())
	h := browserHeader()
	b.ReportAllocs()
	for b.Loop() {
		p.Scrub(h) // nothing to remove: the common case
	}
}

func BenchmarkStrip(b *testing.B) {
	c := &Cookie{Name: DefaultCookieName}
	line := browserHeader()["Cookie"]
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		h["Cookie"] = line
		c.Strip(h)
	}
}

func BenchmarkForward(b *testing.B) {
	p := NewProtocol(DefaultHeaderPrefix, nil, DefaultLimits())
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		p.Forward(h, benchValues)
	}
}

// BenchmarkTakeCommandsNone is the response side of a read: a response
// with no commands, searched and left as it was.
func BenchmarkTakeCommandsNone(b *testing.B) {
	p := NewProtocol(DefaultHeaderPrefix, nil, DefaultLimits())
	h := http.Header{
		"Content-Type":   {"text/html; charset=utf-8"},
		"Content-Length": {"1234"},
		"Date":           {"Tue, 25 Nov 2025 22:00:00 GMT"},
		"Cache-Control":  {"private"},
	}
	b.ReportAllocs()
	for b.Loop() {
		if patch, err := p.TakeCommands(h); patch != nil || err != nil {
			b.Fatal(patch, err)
		}
	}
}

// BenchmarkTakeCommandsLogin parses a login's commands: two keys set.
func BenchmarkTakeCommandsLogin(b *testing.B) {
	p := NewProtocol(DefaultHeaderPrefix, nil, DefaultLimits())
	tmpl := http.Header{
		"Content-Type":         {"text/html; charset=utf-8"},
		"X-Session-Set-User":   {"user-000042@example.com"},
		"X-Session-Set-Roles":  {"admin,editor,viewer"},
		"X-Session-Delete":     {"cart"},
		"Cache-Control":        {"private"},
		"X-Unrelated-Response": {"1"},
	}
	b.ReportAllocs()
	for b.Loop() {
		h := tmpl.Clone()
		if patch, err := p.TakeCommands(h); patch == nil || err != nil {
			b.Fatal(patch, err)
		}
	}
}

func BenchmarkApplyTo(b *testing.B) {
	patch := &Patch{Set: map[string]string{"cart": "sku-1001"}}
	rec := &Record{Values: map[string]string{}}
	for k, v := range benchValues {
		rec.Values[k] = v
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := patch.ApplyTo(rec, DefaultLimits()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScrubConnection is a browser's "Connection: keep-alive", which
// names no header of the namespace.
func BenchmarkScrubConnection(b *testing.B) {
	p := NewProtocol(DefaultHeaderPrefix, nil, DefaultLimits())
	h := browserHeader()
	b.ReportAllocs()
	for b.Loop() {
		p.ScrubConnection(h)
	}
}

// BenchmarkRecordClone is the copy every read from a store's cache makes.
func BenchmarkRecordClone(b *testing.B) {
	rec := &Record{Values: map[string]string{
		"user":  "user-000042@example.com",
		"roles": "admin,editor,viewer",
		"cart":  "sku-1001,sku-1002,sku-1003,sku-1004,sku-1005,sku-1006",
	}}
	b.ReportAllocs()
	for b.Loop() {
		if c := rec.Clone(); len(c.Values) != 3 {
			b.Fatal(c.Values)
		}
	}
}
