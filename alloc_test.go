package caddysession

import (
	"net/http"
	"net/url"
	"testing"
	"unsafe"
)

// readPathAllocBudget bounds the allocations that the session handler
// itself adds to a request that reads a session of three keys and writes
// nothing: the load, the forwarded headers, the placeholders, the response
// writer. The benchmarks show what each costs; this keeps a change from
// quietly adding to the hot path.
const readPathAllocBudget = 20

func TestReadPathAllocationBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts are measured in the full run")
	}
	h, id := benchHandler(t)
	u, _ := url.Parse("http://app.example.com/page")
	tmpl := browserHeader(id)
	w := &discard{h: http.Header{}}
	measure := func(serve func(w http.ResponseWriter, r *http.Request) error) float64 {
		return testing.AllocsPerRun(200, func() {
			clear(w.h)
			if err := serve(w, newBenchRequest(u, tmpl)); err != nil {
				t.Fatal(err)
			}
		})
	}
	baseline := measure(func(w http.ResponseWriter, r *http.Request) error { return app.ServeHTTP(w, r) })
	withSession := measure(func(w http.ResponseWriter, r *http.Request) error {
		if err := h.ServeHTTP(w, r, app); err != nil {
			return err
		}
		if r.Header.Get("X-Session-User") != benchValues["user"] {
			t.Fatalf("the session was not forwarded: %v", r.Header)
		}
		return nil
	})
	own := withSession - baseline
	t.Logf("the session handler allocates %.0f times per read (%.0f with it, %.0f without)", own, withSession, baseline)
	if own >= readPathAllocBudget {
		t.Fatalf("the session handler allocates %.0f times per read (%.0f with it, %.0f without), over the budget of %d",
			own, withSession, baseline, readPathAllocBudget)
	}
}

// TestRequestStateSize keeps the state of a request within its
// allocation's size class on the read path (144 bytes): a field more
// that takes it past that costs every request a larger allocation.
func TestRequestStateSize(t *testing.T) {
	if size := unsafe.Sizeof(requestState{}); size > 144 {
		t.Fatalf("requestState is %d bytes, past its size class of 144: keep the bools together, or move what is rare behind a pointer", size)
	}
}
