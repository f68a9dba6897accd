package caddysession

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"golang.org/x/net/http/httpguts"

	"github.com/caddy-session/caddy-session/session"
)

// The synchronizer token of csrf. The token of a session is derived from
// its ID (session.CSRFToken), so nothing is stored and it changes with the
// ID; the app gets it with every request of the session and puts it in
// its forms and scripts, and every unsafe request of the session must
// echo it in the token header or, for a form, in the token field. The
// body of a form is read up to max_body to find the field, and then given
// to the app whole, as it came.

// CSRFTokenConfig configures the token of csrf.
type CSRFTokenConfig struct {
	// The request header in which scripts send the token. It must not be
	// in the session's namespace (header_prefix), which is removed from
	// every request. Default: `X-CSRF-Token`.
	Header string `json:"header,omitempty"`

	// The field of an `application/x-www-form-urlencoded` or
	// `multipart/form-data` body in which forms send the token, when the
	// header is absent. Default: `csrf_token`.
	Field string `json:"field,omitempty"`

	// How many bytes of a form's body are read to find the field: a
	// field that does not end within them refuses the request, so put it
	// first in forms that upload files. The body reaches the app whole
	// either way. At most 16MiB. Default: 64KiB.
	MaxBody int `json:"max_body,omitempty"`
}

// Defaults of the token.
const (
	defaultCSRFHeader  = "X-CSRF-Token"
	defaultCSRFField   = "csrf_token"
	defaultCSRFMaxBody = 64 << 10
	maxCSRFMaxBody     = 16 << 20
	// maxCSRFFieldValue bounds what is read of a multipart token field:
	// a token is 43 bytes.
	maxCSRFFieldValue = 1 << 10
)

// tokenCheck is a provisioned CSRFTokenConfig.
type tokenCheck struct {
	header  string // canonical
	field   string
	maxBody int
}

// build checks the token's settings against the session's namespace.
func (c *CSRFTokenConfig) build(p *session.Protocol) (*tokenCheck, error) {
	t := &tokenCheck{header: defaultCSRFHeader, field: defaultCSRFField, maxBody: defaultCSRFMaxBody}
	if c.Header != "" {
		if !httpguts.ValidHeaderFieldName(c.Header) {
			return nil, fmt.Errorf("csrf token: header %q is not a header name", c.Header)
		}
		if p.InNamespace(c.Header) {
			return nil, fmt.Errorf("csrf token: header %q is in the session's namespace, which is removed from every request; choose another, such as %s", c.Header, defaultCSRFHeader)
		}
		t.header = c.Header
	}
	t.header = http.CanonicalHeaderKey(t.header)
	if c.Field != "" {
		t.field = c.Field
	}
	if c.MaxBody != 0 {
		if c.MaxBody < 0 || c.MaxBody > maxCSRFMaxBody {
			return nil, fmt.Errorf("csrf token: max_body (%d) must be a size from 1 byte to 16MiB", c.MaxBody)
		}
		t.maxBody = c.MaxBody
	}
	return t, nil
}

// check reports whether the request echoes want, in the header or else
// in the form field. An error means the body could not be read.
func (t *tokenCheck) check(r *http.Request, want string) (csrfVerdict, error) {
	if got, ok := r.Header[t.header]; ok {
		switch {
		case len(got) > 1:
			return csrfTokenTwice, nil
		case session.SameCSRFToken(got[0], want):
			return csrfPass, nil
		}
		return csrfTokenWrong, nil
	}
	got, verdict, err := t.fromForm(r)
	if err != nil || verdict != csrfPass {
		return verdict, err
	}
	if !session.SameCSRFToken(got, want) {
		return csrfTokenWrong, nil
	}
	return csrfPass, nil
}

// fromForm finds the token field in the first max_body bytes of a form's
// body, and puts what it read back in front of the rest of the body.
func (t *tokenCheck) fromForm(r *http.Request) (string, csrfVerdict, error) {
	kind, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || r.Body == nil || (kind != "application/x-www-form-urlencoded" && kind != "multipart/form-data") {
		return "", csrfTokenMissing, nil
	}
	read, err := io.ReadAll(io.LimitReader(r.Body, int64(t.maxBody)+1))
	if len(read) > 0 {
		r.Body = &replayedBody{Reader: io.MultiReader(bytes.NewReader(read), r.Body), Closer: r.Body}
	}
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return "", "", caddyhttp.Error(http.StatusRequestEntityTooLarge, err)
		}
		return "", "", caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("reading the form for its CSRF token: %w", err))
	}
	whole := len(read) <= t.maxBody
	read = read[:min(len(read), t.maxBody)]
	var got string
	var found bool
	if kind == "multipart/form-data" {
		got, found = t.multipartField(read, params["boundary"])
	} else {
		got, found = t.urlencodedField(read, whole)
	}
	switch {
	case found:
		return got, csrfPass, nil
	case whole:
		return "", csrfTokenMissing, nil
	}
	return "", csrfTokenBeyondMax, nil
}

// urlencodedField is the first value of the token field in body, counting
// only fields that end within it: all of them if it is the whole body, or
// those before its last '&'.
func (t *tokenCheck) urlencodedField(body []byte, whole bool) (string, bool) {
	if !whole {
		cut := bytes.LastIndexByte(body, '&')
		if cut < 0 {
			return "", false
		}
		body = body[:cut]
	}
	// A malformed field elsewhere does not hide a good one; only the
	// fields that parse are returned.
	values, _ := url.ParseQuery(string(body))
	v, ok := values[t.field]
	if !ok {
		return "", false
	}
	return v[0], true
}

// multipartField is the value of the first part named as the token field
// (not a file) that ends within body.
func (t *tokenCheck) multipartField(body []byte, boundary string) (string, bool) {
	if boundary == "" {
		return "", false
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		part, err := mr.NextPart()
		if err != nil {
			return "", false // the end, a malformed body, or cut by max_body
		}
		if part.FormName() != t.field || part.FileName() != "" {
			continue
		}
		v, err := io.ReadAll(io.LimitReader(part, maxCSRFFieldValue))
		if err != nil {
			return "", false // cut by max_body
		}
		return string(v), true
	}
}

// replayedBody is a request body with what was read of it put back in
// front of the rest.
type replayedBody struct {
	io.Reader
	io.Closer
}
