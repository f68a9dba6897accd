package bolt

import (
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"

	bbolt "go.etcd.io/bbolt"
)

// TestGroupCommitOnOnePGathersWritersReadiedByThePoller: with one P, the
// writers whose input is waiting in the network poller (a login whose
// upstream has answered, say) join the commit of a leader that is
// gathering, rather than each group of them paying a pair of fsyncs of its
// own. Each writer here waits on a pipe of its own, which has its byte
// before the leader starts; without a yield through the poller, the leader
// commits alone, since runtime.Gosched never lets the scheduler poll.
func TestGroupCommitOnOnePGathersWritersReadiedByThePoller(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	s := openTest(t)
	defer s.Close()
	const writers = 20
	txIDs := make([]int, writers+1)
	pipes := make([]*os.File, writers)
	var started, wg sync.WaitGroup
	for i := range writers {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		pipes[i] = w
		started.Add(1)
		wg.Go(func() {
			started.Done()
			var b [1]byte
			if _, err := r.Read(b[:]); err != nil { // parks in the poller
				t.Error(err)
				return
			}
			if err := s.write(func(tx *bbolt.Tx) error {
				txIDs[i] = tx.ID()
				return nil
			}); err != nil {
				t.Error(err)
			}
		})
	}
	started.Wait()
	for _, w := range pipes {
		if _, err := w.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	// The writers are ready in the poller, not in a run queue: this
	// goroutine has not blocked since it wrote their bytes.
	if err := s.write(func(tx *bbolt.Tx) error {
		txIDs[writers] = tx.ID()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	slices.Sort(txIDs)
	if txs := slices.Compact(txIDs); len(txs) != 1 {
		t.Fatalf("a leader and %d writers readied by the poller took %d transactions (%v), want one", writers, len(txs), txs)
	}
}

// TestPollYieldLetsTheReadyRunFirst: a yield returns only after the
// goroutines that were ready to run when it began have run.
func TestPollYieldLetsTheReadyRunFirst(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const n = 50
	var mu sync.Mutex
	ran := 0
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			mu.Lock()
			ran++
			mu.Unlock()
		})
	}
	pollYield()
	mu.Lock()
	got := ran
	mu.Unlock()
	wg.Wait()
	if got != n {
		t.Fatalf("%d of %d ready goroutines ran before the yield returned", got, n)
	}
}
