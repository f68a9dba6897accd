package caddysession

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-session/caddy-session/store"
)

// The commit of a response with commands waits for its body, held up to
// maxDeferredBody (responsewriter.go, defersCommit), so that the upstream
// connection that brought it is free during the store's write (through
// a real reverse_proxy: TestLoginGivesBackItsAppConnectionBeforeItsCommit
// in integration_test). Nothing of such a response may reach the client
// before its commit.

// sink is a ResponseWriter that keeps what reaches the client: the
// status, once sent, the body and the flushes.
type sink struct {
	h       http.Header
	code    int
	body    bytes.Buffer
	flushes int
}

func newSink() *sink { return &sink{h: http.Header{}} }

func (s *sink) Header() http.Header { return s.h }
func (s *sink) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
}
func (s *sink) Write(b []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	return s.body.Write(b)
}
func (s *sink) Flush() {
	s.WriteHeader(http.StatusOK)
	s.flushes++
}

// wentOut reports whether anything of the response reached the client.
func (s *sink) wentOut() bool { return s.code != 0 }

// TestDeferredCommitEvents: what makes a response whose commit waits for
// its body commit, and that nothing of it goes out before: the end of the
// handlers, a body past maxDeferredBody (the part within it held, the
// rest after the commit, in order), a flush, a ReadFrom. The commit runs
// once in every case.
func TestDeferredCommitEvents(t *testing.T) {
	big := bytes.Repeat([]byte("x"), maxDeferredBody-10)
	tests := []struct {
		name string
		// write writes the body after the header; commitAt names the
		// step during which the commit is to run (-1: once the handlers
		// return).
		write    []func(w http.ResponseWriter) error
		commitAt int
		want     string
		flushes  int
	}{
		{
			name:  "the handlers end",
			write: []func(http.ResponseWriter) error{writeString("hello, "), writeString("alice")},
			want:  "hello, alice", commitAt: -1,
		},
		{
			name:     "a body past the bound",
			write:    []func(http.ResponseWriter) error{writeBytes(big), writeString("0123456789tail")},
			want:     string(big) + "0123456789tail",
			commitAt: 1,
		},
		{
			name:     "a flush",
			write:    []func(http.ResponseWriter) error{writeString("event: hi\n\n"), flush},
			want:     "event: hi\n\n",
			commitAt: 1, flushes: 1,
		},
		{
			name:     "a ReadFrom",
			write:    []func(http.ResponseWriter) error{writeString("a"), readFrom("bc")},
			want:     "abc",
			commitAt: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := provisionedHandler(t, nil)
			counting := &countingStore{Store: h.store}
			h.store = counting
			w := newSink()
			next := caddyhttp.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) error {
				rw.Header().Set("X-Session-Set-User", "alice")
				rw.WriteHeader(http.StatusOK)
				for i, write := range tt.write {
					if w.wentOut() || counting.updates.Load() != 0 {
						t.Errorf("before step %d: the response went out (%v) or was committed (%d)", i, w.wentOut(), counting.updates.Load())
					}
					if err := write(rw); err != nil {
						return err
					}
					if i == tt.commitAt && counting.updates.Load() != 1 {
						t.Errorf("step %d did not commit", i)
					}
				}
				return nil
			})
			u, _ := url.Parse("http://app.example.com/login")
			if err := h.ServeHTTP(w, newBenchRequest(u, http.Header{}), next); err != nil {
				t.Fatal(err)
			}
			if n := counting.updates.Load(); n != 1 {
				t.Errorf("%d commits, want 1", n)
			}
			if w.code != http.StatusOK || w.body.String() != tt.want || w.flushes != tt.flushes || w.h.Get("Set-Cookie") == "" {
				t.Errorf("sent %d, %d bytes (want %d), %d flushes, cookie %q", w.code, w.body.Len(), len(tt.want), w.flushes, w.h.Get("Set-Cookie"))
			}
		})
	}
}

func writeString(s string) func(http.ResponseWriter) error {
	return writeBytes([]byte(s))
}

func writeBytes(b []byte) func(http.ResponseWriter) error {
	return func(w http.ResponseWriter) error { _, err := w.Write(b); return err }
}

func flush(w http.ResponseWriter) error { return http.NewResponseController(w).Flush() }

func readFrom(s string) func(http.ResponseWriter) error {
	return func(w http.ResponseWriter) error {
		_, err := w.(io.ReaderFrom).ReadFrom(strings.NewReader(s))
		return err
	}
}

// updateFailingStore fails every Update.
type updateFailingStore struct{ store.Store }

func (updateFailingStore) Update(context.Context, store.Update) (store.Result, error) {
	return store.Result{}, errStoreDown
}

// TestDeferredCommitThatFails: a response whose commit waited for its body
// and failed sends none of it: the client's answer is the 503, and the
// header's cookie and body the app wrote are gone. One whose handler
// aborted before its end (reverse_proxy's panic when the app broke off
// its body) is not committed at all, and sends nothing either.
func TestDeferredCommitThatFails(t *testing.T) {
	u, _ := url.Parse("http://app.example.com/login")
	page := func(rw http.ResponseWriter) {
		rw.Header().Set("X-Session-Set-User", "alice")
		rw.WriteHeader(http.StatusOK)
		io.WriteString(rw, "welcome, alice")
	}

	t.Run("the store fails", func(t *testing.T) {
		h := provisionedHandler(t, nil)
		h.store = updateFailingStore{h.store}
		w := newSink()
		err := h.ServeHTTP(w, newBenchRequest(u, http.Header{}), caddyhttp.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) error {
			page(rw)
			return nil
		}))
		var he caddyhttp.HandlerError
		if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("ServeHTTP = %v, want a 503", err)
		}
		if w.wentOut() || w.h.Get("X-Session-Set-User") != "" {
			t.Fatalf("the dropped response went out: %d %q, header %v", w.code, w.body.String(), w.h)
		}
	})

	t.Run("the handler aborts", func(t *testing.T) {
		h := provisionedHandler(t, nil)
		counting := &countingStore{Store: h.store}
		h.store = counting
		w := newSink()
		func() {
			defer func() {
				if p := recover(); p != http.ErrAbortHandler {
					t.Errorf("panic %v, want http.ErrAbortHandler to go on to net/http", p)
				}
			}()
			h.ServeHTTP(w, newBenchRequest(u, http.Header{}), caddyhttp.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) error {
				page(rw)
				panic(http.ErrAbortHandler)
			}))
		}()
		if n := counting.updates.Load(); n != 0 {
			t.Errorf("%d commits of a response that never ended", n)
		}
		if w.wentOut() {
			t.Errorf("the aborted response went out: %d %q", w.code, w.body.String())
		}
	})
}
