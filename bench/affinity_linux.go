package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// CPU affinity for the one-CPU mode, with the raw system calls: the
// servers are pinned with taskset(1), the bench's own process (the load
// generator) with sched_setaffinity on each of its threads.

// cpuMask is a kernel CPU set of up to 1,024 CPUs.
type cpuMask [16]uint64

func (m *cpuMask) set(cpu int)      { m[cpu/64] |= 1 << (cpu % 64) }
func (m *cpuMask) has(cpu int) bool { return m[cpu/64]&(1<<(cpu%64)) != 0 }

// cpus lists the CPUs of the set in order.
func (m *cpuMask) cpus() []int {
	var out []int
	for cpu := range len(m) * 64 {
		if m.has(cpu) {
			out = append(out, cpu)
		}
	}
	return out
}

// affinity returns the CPUs thread tid may run on (0: the calling thread).
func affinity(tid int) (cpuMask, error) {
	var m cpuMask
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, uintptr(tid), unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if errno != 0 {
		return m, fmt.Errorf("sched_getaffinity: %w", errno)
	}
	return m, nil
}

func setAffinity(tid int, m cpuMask) error {
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if errno != 0 {
		return errno
	}
	return nil
}

// pinProcess confines every thread of this process to cpu. A thread
// inherits the CPU set of the thread that creates it, so once every
// thread is pinned, every later one (the Go runtime starts more as it
// needs them) and every child process is pinned too; the listing is
// repeated until a pass finds no thread it had not pinned, for a thread
// created during the pass. It returns the number of threads.
func pinProcess(cpu int) (int, error) {
	var m cpuMask
	m.set(cpu)
	pinned := map[int]bool{}
	for range 100 {
		entries, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return 0, err
		}
		fresh := 0
		for _, e := range entries {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || pinned[tid] {
				continue
			}
			fresh++
			if err := setAffinity(tid, m); err != nil && err != syscall.ESRCH { // ESRCH: the thread has exited
				return 0, fmt.Errorf("sched_setaffinity of thread %d to CPU %d: %w", tid, cpu, err)
			}
			pinned[tid] = true
		}
		if fresh == 0 {
			return len(entries), nil
		}
	}
	return 0, fmt.Errorf("pinning to CPU %d: the threads kept changing", cpu)
}

// cpusAllowed reads the CPU list the kernel allows a process, from
// /proc/<pid>/status ("0", "0-1", ...).
func cpusAllowed(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, value, ok := strings.Cut(line, ":"); ok && name == "Cpus_allowed_list" {
			return strings.TrimSpace(value)
		}
	}
	return "?"
}
