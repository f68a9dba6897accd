package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// pinProcess moves every thread of the process, those the runtime starts
// afterwards and the processes it starts, to the CPU. It runs in a child
// process, which it pins.
func TestPinProcess(t *testing.T) {
	if os.Getenv("BENCH_PIN_CHILD") == "" {
		m, err := affinity(0)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.cpus()) < 2 {
			t.Skip("one CPU: nothing to move to")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestPinProcess$", "-test.v")
		cmd.Env = append(os.Environ(), "BENCH_PIN_CHILD="+strconv.Itoa(m.cpus()[1]))
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestPinProcess") {
			t.Fatalf("%v\n%s", err, out)
		}
		return
	}
	cpu, _ := strconv.Atoi(os.Getenv("BENCH_PIN_CHILD"))
	if _, err := pinProcess(cpu); err != nil {
		t.Fatal(err)
	}
	// New threads: goroutines that hold theirs while others start.
	var started, release sync.WaitGroup
	release.Add(1)
	for range 8 {
		started.Add(1)
		go func() {
			runtime.LockOSThread()
			started.Done()
			release.Wait()
		}()
	}
	started.Wait()
	tasks, _ := filepath.Glob("/proc/self/task/*")
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(task, "status"))
		if err != nil {
			continue
		}
		if !strings.Contains(string(b), "\nCpus_allowed_list:\t"+strconv.Itoa(cpu)+"\n") {
			t.Errorf("thread %s is not on CPU %d alone", filepath.Base(task), cpu)
		}
	}
	release.Done()
	if t.Failed() {
		return
	}
	out, err := exec.Command("grep", "Cpus_allowed_list", "/proc/self/status").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(strings.TrimPrefix(string(out), "Cpus_allowed_list:")); got != strconv.Itoa(cpu) {
		t.Fatalf("a child process may run on CPUs %s, not on %d alone", got, cpu)
	}
}
