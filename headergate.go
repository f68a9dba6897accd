package caddysession

import (
	"io"
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// headerGate is the part of a response writer wrapper that sends every
// way of writing the header (Write, ReadFrom, Flush) through the
// wrapper's own WriteHeader first, which removes from the header what must
// not reach the client. writeHeader is that WriteHeader, which sets
// wroteHeader once the final header is out.
type headerGate struct {
	caddyhttp.ResponseWriterWrapper
	writeHeader func(status int)
	wroteHeader bool
}

func (g *headerGate) Write(b []byte) (int, error) {
	if !g.wroteHeader {
		g.writeHeader(http.StatusOK)
	}
	return g.ResponseWriter.Write(b)
}

// ReadFrom keeps io.Copy from reaching the underlying writer's ReadFrom,
// which would write the header as it is.
func (g *headerGate) ReadFrom(r io.Reader) (int64, error) {
	if !g.wroteHeader {
		g.writeHeader(http.StatusOK)
	}
	return g.ResponseWriterWrapper.ReadFrom(r)
}

// FlushError writes the header through writeHeader before flushing: a
// flush writes the header.
func (g *headerGate) FlushError() error {
	if !g.wroteHeader {
		g.writeHeader(http.StatusOK)
	}
	return http.NewResponseController(g.ResponseWriter).Flush()
}

// Flush implements http.Flusher for handlers that test for it.
func (g *headerGate) Flush() {
	_ = g.FlushError()
}

// Interface guards
var (
	_ http.Flusher  = (*headerGate)(nil)
	_ io.ReaderFrom = (*headerGate)(nil)
)
