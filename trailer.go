package caddysession

import (
	"io"
	"net/http"

	"github.com/caddy-session/caddy-session/session"
)

// scrubTrailerAtEOF wraps the body of a request that announced trailers.
// net/http fills in the request's trailers only when the body has been
// read to its end, long after the handler scrubbed them, and it adds every
// trailer the client sent, announced or not. Scrubbing the trailers again
// at EOF, before the reader sees it, keeps a client from passing a
// namespace header to the upstream as a trailer.
type scrubTrailerAtEOF struct {
	io.ReadCloser
	trailer  http.Header
	protocol *session.Protocol
}

func (b *scrubTrailerAtEOF) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.protocol.Scrub(b.trailer)
	}
	return n, err
}
