package bolt

import (
	"os"
	"runtime"
	"sync"
)

// Yielding through the network poller. With one P, runtime.Gosched runs
// only the goroutines already in the run queues: those whose socket has
// data waiting stay parked until the scheduler finds the queues empty and
// polls the network, which a leader that yields again and again never
// lets it do (sysmon polls on its own only every 10 ms). A login goes
// through the poller several times (the client's request, the upstream's
// answer), so a leader that gathers with Gosched alone commits the few
// writers that happened to be runnable, and leaves the rest for a commit
// of their own: one pair of fsyncs, during which the one P runs nothing,
// for every few logins.
//
// pollYield returns once the goroutines that were ready have run and the
// poller has been asked once: a byte written to a pipe wakes a relay
// goroutine parked on its read end, and the poller hands it back only
// when the run queues are empty. The relay yields once more before it
// wakes the caller, so that the goroutines the same poll made ready run
// first. It costs a write, a read and two switches, and it is used only
// with one P (committer.gather).

type netpollYield struct {
	w    *os.File
	woke chan struct{}
}

var (
	pollYieldOnce sync.Once
	pollYielder   *netpollYield // nil: no pipe; Gosched is all there is
)

// pollYield yields through the network poller, or with runtime.Gosched
// where no pipe could be made. The pipe and its relay live as long as the
// process: one per process, whichever stores use it.
func pollYield() {
	pollYieldOnce.Do(func() {
		r, w, err := os.Pipe()
		if err != nil {
			return
		}
		p := &netpollYield{w: w, woke: make(chan struct{}, 1)}
		go p.relay(r)
		pollYielder = p
	})
	if p := pollYielder; p != nil && p.yield() {
		return
	}
	runtime.Gosched()
}

// yield writes a byte for the relay and waits for it to be read.
func (p *netpollYield) yield() bool {
	if _, err := p.w.Write([]byte{0}); err != nil {
		return false
	}
	<-p.woke
	return true
}

// relay reads the bytes of yield, one wake each.
func (p *netpollYield) relay(r *os.File) {
	var buf [64]byte
	for {
		n, err := r.Read(buf[:])
		for range n {
			runtime.Gosched() // the goroutines this poll readied go first
			p.woke <- struct{}{}
		}
		if err != nil {
			return // never, as the write end stays open
		}
	}
}
