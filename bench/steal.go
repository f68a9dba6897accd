package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// The one-CPU mode's servers get one CPU of a virtual machine, and the
// hypervisor takes time from it now and then to run other guests: a turn
// that loses 5% of its CPU that way serves about 5% fewer requests, which
// is noise in a ratio of two turns. The kernel counts that time (steal in
// /proc/stat), so each turn's share is read and reported beside the
// ratios, with what the ratios would be without it. The targets stay on
// the ratios as measured.
//
// The same line gives the CPU's idle time (idle and iowait): under a
// closed-loop load that saturates the server, a turn whose CPU sat idle
// lost requests to waiting (a thread blocked in a system call with the
// only P, the load generator not keeping up), not to work; so the idle
// share is reported too.

// cpuTime is a CPU's time from /proc/stat, in clock ticks: all of it,
// what the hypervisor stole, and what the CPU spent idle.
type cpuTime struct{ total, stolen, idle uint64 }

func (t cpuTime) minus(o cpuTime) cpuTime {
	return cpuTime{total: t.total - o.total, stolen: t.stolen - o.stolen, idle: t.idle - o.idle}
}

// readCPUTime reads the line of CPU cpu from /proc/stat; false where
// there is none (another OS, or cpu < 0).
func readCPUTime(cpu int) (cpuTime, bool) {
	if cpu < 0 {
		return cpuTime{}, false
	}
	f, err := os.Open("/proc/stat")
	if err != nil {
		return cpuTime{}, false
	}
	defer f.Close()
	prefix := "cpu" + strconv.Itoa(cpu) + " "
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		// user nice system idle iowait irq softirq steal (guest time is
		// counted in user already)
		fields := strings.Fields(line)
		if len(fields) < 8 {
			return cpuTime{}, false
		}
		var t cpuTime
		for i, s := range fields[:8] {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return cpuTime{}, false
			}
			t.total += n
			switch i {
			case 3, 4:
				t.idle += n
			case 7:
				t.stolen = n
			}
		}
		return t, true
	}
	return cpuTime{}, false
}

// stolenShare is the share of its turns' CPU time the hypervisor took
// from o's CPU.
func (o *outcome) stolenShare() float64 {
	if o.cpu.total == 0 {
		return 0
	}
	return float64(o.cpu.stolen) / float64(o.cpu.total)
}

// idleShare is the share of its turns' CPU time o's CPU spent idle.
func (o *outcome) idleShare() float64 {
	if o.cpu.total == 0 {
		return 0
	}
	return float64(o.cpu.idle) / float64(o.cpu.total)
}

// clockTick is the unit of /proc/stat: USER_HZ, 100 on Linux.
const clockTick = 10 * time.Millisecond

// busyPerRequest is the time o's CPU spent working (neither idle nor
// stolen) per request o's turns served: the servers' CPU time a request
// cost, measured in the turns themselves.
func (o *outcome) busyPerRequest() time.Duration {
	if o.total.requests == 0 {
		return 0
	}
	busy := o.cpu.total - o.cpu.idle - o.cpu.stolen
	return time.Duration(busy) * clockTick / time.Duration(o.total.requests)
}

// stealNote reports the stolen and idle shares of a case's variants, and
// each ratio with the stolen time taken out, or "" if none was counted.
func stealNote(all []*outcome) string {
	var shares, idle, adjusted, cost []string
	for _, o := range all {
		if o.pending || o.cpu.total == 0 {
			continue
		}
		shares = append(shares, fmt.Sprintf("%s %.1f%%", o.name, 100*o.stolenShare()))
		idle = append(idle, fmt.Sprintf("%s %.1f%% (busy %.0f µs a request)", o.name, 100*o.idleShare(), float64(o.busyPerRequest())/float64(time.Microsecond)))
		base := baseline(all, o)
		if o == base || base.cpu.total == 0 {
			continue
		}
		ratio := (o.rate() / (1 - o.stolenShare())) / (base.rate() / (1 - base.stolenShare()))
		adjusted = append(adjusted, fmt.Sprintf("%s %.3f", o.name, ratio))
		if busy := o.busyPerRequest(); busy > 0 {
			cost = append(cost, fmt.Sprintf("%s %.3f", o.name, float64(base.busyPerRequest())/float64(busy)))
		}
	}
	if len(shares) == 0 {
		return ""
	}
	return fmt.Sprintf("Time the hypervisor stole from the servers' CPU during each variant's turns (steal in /proc/stat): %s. "+
		"The throughput ratios with it taken out of each variant's time (for reading the noise; the targets are on the ratios above): %s. "+
		"Time the servers' CPU sat idle during each variant's turns (idle and iowait): %s. "+
		"The plain proxy's busy time per request over each variant's (what the throughput ratio would be with the CPU all the server's, neither stolen nor idle): %s.\n",
		strings.Join(shares, ", "), strings.Join(adjusted, ", "), strings.Join(idle, ", "), strings.Join(cost, ", "))
}

// timedCPU is the CPU whose time the cases read around each turn: the
// servers' CPU in the one-CPU mode, none (-1) in the other, where the
// servers share every CPU with the load generator.
func (e *env) timedCPU() int {
	if !e.oneCPU {
		return -1
	}
	return e.serverCPU
}
