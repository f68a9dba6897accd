package caddysession

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/quic-go/quic-go/http3"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/internal/testhook"
)

// responseWriter applies the upstream's session commands at the moment the
// response header is written: after the upstream has set its headers and
// before anything reaches the client. Every way of starting a response
// (WriteHeader, Write, ReadFrom, Flush) goes through WriteHeader first, so
// no namespace header can slip out on a streamed response.
type responseWriter struct {
	caddyhttp.ResponseWriterWrapper // by value: one allocation, not two
	state                           *requestState
	wroteHeader                     bool
	// judged: the session needs no read at a long body's first watched
	// write (longBodyCut): the header's judgement read it and found it
	// standing, or the response's own commit did (withheld.go), or the
	// store already failed for the request.
	judged bool
	// replaced is the status of an upstream error that a handle_response
	// of reverse_proxy took in hand for this response (replacedError);
	// 0 if none.
	replaced uint16
	// commitErr is set when the store failed to take the commands, or
	// the session ended while the app worked on the request
	// (errSessionEnded, withheld.go); the response is then dropped and
	// the handler returns a 503, or answerWithheldStatus, instead.
	commitErr error
	// preset is what the response held of the other handlers' namespaces
	// before the request went on (presetOthers): nil, but for a handler
	// nested in one with another header_prefix.
	preset http.Header
	// tunnel watches the session of a response that opened a tunnel or
	// streams (responseWriter.watch); nil otherwise.
	tunnel *tunnel
	// tunnelChecked: the tunnel's registration read its session before
	// it returned (tunnel.open), so a first long write need not again.
	tunnelChecked bool
	// watchable reports that the request carried a live session whose
	// end is to cancel ctx, the request's context, once the response
	// opens a tunnel or streams (Handler.serve).
	watchable bool
	ctx       watchCtx
	// held is the status of a watchable response's final header, which
	// its commit took and which has not gone to the writer underneath
	// yet (sendHeld); 0 once it has, or for any other response.
	held int
	// seenAtLoad is openTunnels.seen() before the session was loaded.
	seenAtLoad seenMark
	// login is the session the header's judgement accepted when a login
	// gave a user to the session the request loaded with none: the
	// response's watch starts from it (keepLogin); nil otherwise.
	login *loggedIn
	// deferred is the status of a final header whose commit waits for
	// its body (defersCommit); 0 when none is waiting.
	deferred int
	// body is what the handlers wrote of a deferred response's body.
	body []byte
}

// commitError is the error the handler returns for a response whose
// commit failed (commitErr): answerWithheldStatus for one whose session
// ended while the app worked on it (withheld.go), a 503 for a store that
// failed.
func (rw *responseWriter) commitError() error {
	if rw.commitErr == errSessionEnded {
		return caddyhttp.Error(answerWithheldStatus, rw.commitErr)
	}
	return caddyhttp.Error(http.StatusServiceUnavailable, rw.commitErr)
}

// errResponseDropped is what a write of the body gets once the commit has
// failed, or once the session of a stream ended (streamCut). It stops the
// handler that writes: a body that never ends (an event stream) or a long
// one would otherwise be copied into nothing while the client waits for
// its 503, or copied on to a device that was logged out. reverse_proxy answers it by
// aborting with http.ErrAbortHandler, which serveNext takes back.
var errResponseDropped error = responseDropped{}

// responseDropped is errResponseDropped. It says to reverse_proxy what it
// is: a copy that its receiver canceled, which reverse_proxy logs at
// debug. Any other error of a write it logs at warn, with the request it
// sent upstream, whose headers hold what the session handler forwarded:
// the session's values, its CSRF token and its signed token. The session
// handler logs the failure itself, and answers 503.
type responseDropped struct{}

func (responseDropped) Error() string {
	return "the session store failed to take the response's session commands, or its session ended while the app worked on the request: the response is dropped"
}

func (responseDropped) Unwrap() error { return receiverCanceled }

// receiverCanceled is the error by which reverse_proxy knows a copy its
// client canceled (an HTTP/3 stream reset with H3_REQUEST_CANCELLED);
// the only one it does not log at warn.
var receiverCanceled = &http3.Error{Remote: true, ErrorCode: http3.ErrCodeRequestCanceled}

// WriteHeader commits the session and then writes the header, or, if the
// commit failed, writes nothing and leaves the response to the error path.
// The commit of a response with commands waits for its body (defersCommit).
func (rw *responseWriter) WriteHeader(status int) {
	if rw.wroteHeader || rw.deferred != 0 {
		return
	}
	if rw.defersCommit(status) {
		rw.deferred = status
		return
	}
	rw.writeHeader(status)
}

// A response with commands has the store write for it, and its commit
// waits for the write to be durable (a bbolt fsync, a Redis round trip).
// (What follows holds for requests whose session is not watched, as a
// login's is not: defersCommit.)
// Committed at its header, it kept the upstream connection that brings
// its body through that wait, and every request proxied meanwhile that
// found the idle ones out (reverse_proxy keeps 32 per host by default)
// had a connection dialed for it, closed again once the pool was full.
// So the commit of such a response waits for its body instead, up to
// maxDeferredBody of it, held here: the upstream's body is read to its
// end and its connection goes back to the pool, then the commit runs,
// and the header and body go out after it, as before. Nothing of the
// response reaches the client before the commit, whichever comes first:
// the end of the handlers (Handler.ServeHTTP), a body past the bound, a
// flush (a stream), or a ReadFrom. A response whose handlers fail before
// then (reverse_proxy's abort on an upstream that broke off its body)
// commits nothing, and its client gets nothing of it.

// maxDeferredBody is the most of a body held while its response's commit
// waits for the rest of it: a login's page or redirect fits, and
// reverse_proxy copies in parts of 32 KiB.
const maxDeferredBody = 64 << 10

// defersCommit reports whether the commit of a final response written
// with status is to wait for its body: one whose upstream sent commands,
// which the store writes for, to a request whose session is not watched
// (watchable: none was loaded, as for a login, or `tunnels keep`), and
// which opens no tunnel. A watched session's response keeps its commit at
// its header, and holds only the header until its body (held), which is
// judged again at its first write if it comes late (longBodyCut): what
// its commands did is in the store while its body is on its way.
func (rw *responseWriter) defersCommit(status int) bool {
	return status >= http.StatusOK && !rw.watchable && !rw.opensTunnel(status) &&
		rw.state.handler.protocol.HasCommands(rw.Header())
}

// undefer commits a response whose commit waited for its body, and
// writes its header and what it held of its body; errResponseDropped
// if the commit failed. A no-op for any other response.
func (rw *responseWriter) undefer() error {
	status := rw.deferred
	if status == 0 {
		return nil
	}
	rw.deferred = 0
	rw.writeHeader(status)
	body := rw.body
	rw.body = nil
	if rw.commitErr != nil {
		return errResponseDropped
	}
	if len(body) == 0 {
		return nil
	}
	_, err := rw.Write(body)
	return err
}

// writeHeader is WriteHeader once the header is to go: it commits the
// session and then writes the header.
func (rw *responseWriter) writeHeader(status int) {
	hdr := rw.Header()
	rw.state.handler.screenAppCookies(rw.state.request, hdr)
	if status < http.StatusOK || rw.opensTunnel(status) {
		// 1xx responses are not the final response, except 101, after
		// which the connection is no longer HTTP; nor is a 2xx to a
		// CONNECT, which opens a tunnel (a WebSocket over HTTP/2's
		// extended CONNECT is answered 200 where HTTP/1.1 answers 101).
		// Commands on them are never applied, and never sent.
		if patch, err := rw.state.handler.protocol.TakeCommands(hdr); patch != nil || err != nil {
			rw.state.handler.logger.Warn("ignoring session commands on an informational or tunnel response",
				zap.Int("status", status))
		}
		rw.state.handler.scrubOthers(hdr, rw.preset)
		if status < http.StatusOK && status != http.StatusSwitchingProtocols && rw.sessionEnded(true) {
			// A 103 (or any 1xx) the app sent after its session ended
			// carries the app's headers for the session's user (a Link
			// to its avatar) to the device that was logged out: it is
			// not sent, as the final answer that follows is withheld.
			return
		}
		rw.wroteHeader = status == http.StatusSwitchingProtocols || status >= http.StatusOK
		if rw.wroteHeader {
			rw.watch(true, false) // before the header goes: an end meanwhile finds it
		}
		rw.ResponseWriter.WriteHeader(status)
		return
	}
	if rw.settle(hdr, status) {
		if rw.watchable && rw.tunnel == nil {
			rw.held = status // sent with the body, a flush or at the end (sendHeld)
			return
		}
		rw.ResponseWriter.WriteHeader(status)
	}
}

// The final header of a watchable response is held here, after its
// commit, until the first byte of its body, a flush, or the end of the
// handlers (sendHeld): a body whose session is found ended at its first
// write (longBodyCut, a body that comes a second or more after the
// load) has then sent nothing, and gets the withheld answer, a 403
// (withholdHeld), as a slow answer whose session ended is. The header
// used to go to net/http at once, which buffers it until the body's
// first bytes: the cut aborted the handler, and net/http closed the
// connection with the header still in its buffer. A client that sees a
// reused connection close before any response sends the request again
// (Go's client for a GET; browsers for any method, a POST included),
// and the app ran it a second time, without the session.

// sendHeld sends the held final header, if any, to the writer
// underneath: the body is to follow, or the handlers are done.
func (rw *responseWriter) sendHeld() {
	if status := rw.held; status != 0 {
		rw.held = 0
		rw.ResponseWriter.WriteHeader(status)
	}
}

// withholdHeld turns a response whose body was cut before any of it, or
// its header, was sent into the withheld answer (withheld.go): the
// client gets answerWithheldStatus with none of the app's headers, and
// the error routes get the request without its session. false if its
// header has gone already: the response can only end unfinished.
func (rw *responseWriter) withholdHeld() bool {
	if rw.held == 0 {
		return false
	}
	rw.held = 0
	s := rw.state
	s.handler.logger.Info("withholding an answer: its session ended before its body came",
		zap.String("session", s.hash.Short()), zap.String("uri", s.request.RequestURI),
		zap.Int("status", answerWithheldStatus))
	rw.commitErr = errSessionEnded
	s.withdraw()
	clear(rw.Header())
	return true
}

// bodyCut reports that nothing more of the response may be written
// (commitErr, or its session ended: longBodyCut, or streamCut for a
// flush), after turning a cut that came before anything was sent into
// the withheld answer; otherwise it sends the held header, the body
// being about to follow.
func (rw *responseWriter) bodyCut(cut bool) bool {
	if rw.commitErr != nil {
		return true
	}
	if cut {
		if !rw.withholdHeld() {
			// The header went before the cut, with the first bytes of
			// the body perhaps, which net/http may hold still in its
			// buffer: sent now, they give the client a response that
			// ends unfinished. Left there, the handler's abort dropped
			// them with the connection, which the client saw close with
			// no response at all, and sent the request again (Go's
			// client for a GET, browsers for a POST too). Each byte was
			// written before the cut.
			_ = http.NewResponseController(rw.ResponseWriter).Flush()
		}
		return true
	}
	rw.sendHeld()
	return false
}

// settle commits the final response, which is to go with this status,
// and readies its header; false if the commit failed, and the response is
// dropped for the error path.
func (rw *responseWriter) settle(hdr http.Header, status int) bool {
	rw.wroteHeader = true
	if f := testhook.ResponseCommitting.Load(); f != nil {
		(*f)()
	}
	err := rw.state.commit(rw, hdr, status)
	if err == nil && rw.sessionEnded(false) {
		err = errSessionEnded // withheld.go
		rw.state.withdraw()
	}
	rw.state.handler.scrubOthers(hdr, rw.preset) // after the commit took its own: a namespace may hold another
	if rw.state.flash != nil {
		rw.state.settleFlash(rw.upstreamStatus(status), err != nil)
	}
	if err != nil {
		rw.commitErr = err
		// None of the upstream's headers belong on the error response;
		// the cookies of what the store took before it failed do.
		clear(hdr)
		var partial *partialCommit
		if errors.As(err, &partial) {
			for _, c := range partial.cookies {
				setCookie(rw.state.request, hdr, c)
			}
		}
		return false
	}
	rw.tellOuter()
	if rw.state.record != nil && !rw.state.handler.sharedCacheAllowed {
		// The app got the session's keys: the page is the user's now,
		// whatever Cache-Control the app wrote for it. A 304 too: it
		// updates the header a cache keeps, and must say what the 200 did.
		privateToSharedCaches(hdr)
	}
	return true
}

// settleUnwritten commits a response that the handlers inside this one
// left unwritten, as the 200 that net/http sends for it, but writes no
// status itself: what is around this handler may still answer. The
// `handle_response` of `intercept` sends the response it intercepted when
// its routes write nothing, with that response's status (a 404 or 500 of
// the app; its commands apply or not by that status, upstreamStatus); a
// 200 written here went out in its place.
func (rw *responseWriter) settleUnwritten() {
	rw.settle(rw.Header(), http.StatusOK)
}

// tellOuter tells the handler around this one that handles the same
// session for the request (the one whose load this one adopted: a
// `session` nested in a `handle`, or in the `handle_response` of
// `reverse_proxy` or `intercept`) what the response's commands did,
// before it commits the response in turn: this handler took them, and
// left it none. Without this, an outer handler touched a session whose
// app had said X-Session-Touch: false, and watched a stream under the
// session its own logout had just ended, and cut it.
func (rw *responseWriter) tellOuter() {
	s := rw.state
	if !s.handler.sharedLoad || s.record == nil {
		return
	}
	outer := outerWriter(rw.ResponseWriter)
	for outer != nil {
		o := outer.state
		if o != s && o.record != nil && o.hash == s.hash && o.handler.sharesLoad(s.handler) {
			o.leftSession = o.leftSession || s.leftSession
			o.endedAll = o.endedAll || s.endedAll
			o.untouched = o.untouched || s.untouched
			o.leaving = o.leaving || s.leaving
			o.stood = o.stood || s.stood
			o.storeFailed = o.storeFailed || s.storeFailed
			return // it tells the next one in its turn
		}
		outer = outerWriter(outer.ResponseWriter)
	}
}

// outerWriter is the first session responseWriter that w is or wraps,
// nil if none (or past a wrapper that does not unwrap).
func outerWriter(w http.ResponseWriter) *responseWriter {
	for range 64 { // a bound, not a depth any config reaches
		switch x := w.(type) {
		case *responseWriter:
			return x
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return nil
		}
	}
	return nil
}

// opensTunnel reports whether a response with this status to the request
// turns the connection, or the HTTP/2 stream, into a tunnel.
func (rw *responseWriter) opensTunnel(status int) bool {
	return status >= http.StatusOK && status < http.StatusMultipleChoices &&
		rw.state.request.Method == http.MethodConnect
}

// upstreamStatus is the status of the response, written as status, that
// decides whether its commands apply and its flash values are used up:
// the one written, unless a handler between the app and the session
// replaced an upstream error or 425 Too Early (intercept, or
// reverse_proxy's handle_response and replace_status). The app's commands
// came with that answer, which Caddy leaves in these placeholders; an
// answer that says the request was not carried out (notCarriedOut) is
// not a success, whatever status the client gets, nor whatever a second
// app that a handle_response asked answered (replacedError: that app's
// status is the one left in the placeholder). It is read only when a
// response has commands or flash values to settle: two lookups through
// every placeholder provider were a tenth of a read's own work.
func (rw *responseWriter) upstreamStatus(status int) int {
	if status >= http.StatusInternalServerError {
		return status
	}
	if code := rw.replacedStatus(); code != 0 {
		return code
	}
	repl, ok := rw.state.request.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return status
	}
	for _, name := range upstreamStatusPlaceholders {
		if v, ok := repl.Get(name); ok {
			if code := statusValue(v); notCarriedOut(code) {
				return code
			}
		}
	}
	return status
}

// upstreamStatusPlaceholders hold the status of a response that a handler
// took from upstream and answered in its own way.
var upstreamStatusPlaceholders = [...]string{
	"http.intercept.status_code",     // intercept's handle_response and replace_status
	"http.reverse_proxy.status_code", // the latest upstream response of reverse_proxy
}

// statusValue reads a status placeholder, which Caddy sets as an int.
func statusValue(v any) int {
	if code, ok := v.(int); ok {
		return code
	}
	code, _ := strconv.Atoi(caddy.ToString(v))
	return code
}

func (rw *responseWriter) Write(b []byte) (int, error) {
	if !rw.wroteHeader && rw.deferred == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.deferred != 0 {
		if len(rw.body)+len(b) <= maxDeferredBody {
			rw.body = append(rw.body, b...)
			return len(b), nil
		}
		if err := rw.undefer(); err != nil {
			return 0, err
		}
	}
	if rw.bodyCut(rw.commitErr == nil && rw.longBodyCut()) {
		return 0, errResponseDropped
	}
	return rw.ResponseWriter.Write(b)
}

// streamCut reports that the response streams and its session ended
// (its watcher closed it): nothing more of it may reach the client. The
// watcher cancels the request's context, which reverse_proxy's HTTP
// transport answers by closing the upstream connection; its FastCGI
// transport (php_fastcgi) looks at the context only while it dials, and
// copied on every byte PHP flushed to the device that was logged out.
// The write that fails stops the copy, whatever the transport.
func (rw *responseWriter) streamCut() bool {
	return rw.tunnel != nil && rw.tunnel.cut.Load()
}

// ReadFrom keeps io.Copy from reaching the underlying writer's ReadFrom,
// which would write the header without a commit. A response whose
// session may be watched (watchable) is copied in parts of
// readFromPart, each judged as a write is (longBodyCut): file_server
// hands its whole file to one ReadFrom (sendfile over HTTP/1.1, a copy
// past Write over HTTP/2), which judged the session once, at its first
// byte, and sent the rest of a large file to the device whose session
// ended meanwhile. Each part of a file still goes by sendfile.
func (rw *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if !rw.wroteHeader && rw.deferred == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	if err := rw.undefer(); err != nil { // a reader is not held back
		return 0, err
	}
	if rw.bodyCut(rw.commitErr == nil && rw.longBodyCut()) {
		return 0, errResponseDropped
	}
	if !rw.watchable {
		return rw.ResponseWriterWrapper.ReadFrom(r)
	}
	// io.CopyN (http.ServeContent) limits the file itself: a part is
	// cut from that limit, so that the file stays the reader sendfile
	// takes.
	src, limit, limited := r, int64(0), false
	if lr, ok := r.(*io.LimitedReader); ok {
		src, limit, limited = lr.R, max(lr.N, 0), true
		defer func() { lr.N = limit }()
	}
	var n int64
	for {
		part := &io.LimitedReader{R: src, N: readFromPart}
		if limited {
			part.N = min(part.N, limit)
		}
		want := part.N
		m, err := rw.ResponseWriterWrapper.ReadFrom(part)
		n += m
		if limited {
			limit -= m
		}
		if err != nil || m < want || limited && limit == 0 {
			return n, err
		}
		if rw.commitErr != nil || rw.longBodyCut() {
			return n, errResponseDropped
		}
	}
}

// readFromPart is the most of a body given to ReadFrom that is copied
// before its session is judged again (ReadFrom): a megabyte, a few
// sendfile calls' worth, which keeps a large file's copy fast.
const readFromPart = 1 << 20

// FlushError commits before flushing: a flush writes the header. A
// response flushed before its handler returns streams: from its first
// flush, its session is watched as a tunnel's (stream.go).
func (rw *responseWriter) FlushError() error {
	if !rw.wroteHeader && rw.deferred == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	if err := rw.undefer(); err != nil { // a flush sends what was written
		return err
	}
	if rw.commitErr != nil {
		return errResponseDropped
	}
	rw.watch(false, false)
	if rw.bodyCut(rw.streamCut()) {
		return errResponseDropped
	}
	return http.NewResponseController(rw.ResponseWriter).Flush()
}

// Flush implements http.Flusher for handlers that test for it.
func (rw *responseWriter) Flush() {
	_ = rw.FlushError()
}

// serveNext runs the handlers after the session's. Once the commit has
// failed, a handler that stops on errResponseDropped may abort with
// http.ErrAbortHandler, as reverse_proxy does when it cannot copy a body:
// nothing has been sent, and the client is owed its 503, not a closed
// connection. Any other panic goes on, and net/http closes the
// connection; if it comes before the header was written, the app's page
// never reached the client, so the flash values the request took are
// put back as for any failed response: they would be lost otherwise,
// since no commit settles them.
func serveNext(rw *responseWriter, r *http.Request, next caddyhttp.Handler) error {
	returned := false
	defer func() {
		if returned {
			return
		}
		if !rw.wroteHeader {
			rw.state.settleFlash(http.StatusInternalServerError, true)
		}
		if rw.commitErr == nil {
			return
		}
		if p := recover(); p != nil && p != http.ErrAbortHandler {
			panic(p)
		}
	}()
	err := next.ServeHTTP(rw, r)
	returned = true
	return err
}

// Interface guards
var (
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ http.Flusher        = (*responseWriter)(nil)
	_ io.ReaderFrom       = (*responseWriter)(nil)
)
