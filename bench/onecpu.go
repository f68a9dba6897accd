package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The one-CPU mode (-cpus 1): Caddy as it runs on a one-vCPU VPS or in a
// container limited to one CPU, where Go sets GOMAXPROCS to 1 by itself.
//
//   - Caddy runs under `taskset -c <server CPU>`; GOMAXPROCS is left to Go
//     (not set, and not passed on from the bench's environment), which
//     sizes it from the CPUs the process may run on: 1.
//   - The upstream is a site of that same Caddy (Caddyfile.tmpl), so that
//     the upstream's work competes for the same CPU and the same P as the
//     proxy's and the store's, as it does on such a machine when the
//     application and Caddy share it. Every site proxies to it over
//     loopback, as to the bench's own upstream in the other mode.
//   - Apache httpd runs under taskset on the same CPU, and so does its
//     upstream: bench/upstream.go's process, as in the other mode, whose
//     Go runtime also gets one P there. Not a virtual host of the same
//     httpd: a proxied request holds a worker thread while its backend
//     request needs another, and under the login storm's 64 clients the
//     event MPM, finding a process's workers all busy, closes the
//     keep-alive connections mod_proxy keeps to the backend; mod_proxy
//     answers 502 or drops the client (650 errors in 4,292 requests of a
//     smoke run, against 1 with the upstream in a process of its own).
//     That would measure the self-proxy, not mod_session_dbd. Caddy and
//     Apache take turns, as in the other mode, so one idles while the
//     other is measured.
//   - The bench itself, the load generator, runs on the other CPU: every
//     thread of its process is pinned there once cmd/caddy is built (what
//     it starts afterwards inherits that CPU, the servers are pinned away
//     from it by taskset).
//
// Nothing else of the machine is pinned or reserved: another process can
// still run on either CPU.

// pin chooses the two CPUs from those this process may use, the first for
// the servers and the second for the load generator, and moves this
// process to the second.
func (e *env) pin() error {
	m, err := affinity(0)
	if err != nil {
		return err
	}
	cpus := m.cpus()
	if len(cpus) < 2 {
		return fmt.Errorf("the one-CPU mode needs two CPUs, one for the servers and one for the load generator; this process may run on %v", cpus)
	}
	e.serverCPU, e.loadCPU = cpus[0], cpus[1]
	threads, err := pinProcess(e.loadCPU)
	if err != nil {
		return err
	}
	logf("one-CPU mode: the servers on CPU %d, the load generator (this process, %d threads) on CPU %d", e.serverCPU, threads, e.loadCPU)
	if v, ok := os.LookupEnv("GOMAXPROCS"); ok {
		os.Unsetenv("GOMAXPROCS")
		logf("GOMAXPROCS=%s is not passed on to Caddy: Go sets it from the CPUs Caddy may run on", v)
	}
	return nil
}

// server returns the command line that starts a server: in the one-CPU
// mode under taskset, on the servers' CPU.
func (e *env) server(argv ...string) []string {
	if !e.oneCPU {
		return argv
	}
	return append([]string{"taskset", "-c", strconv.Itoa(e.serverCPU)}, argv...)
}

// placement is what the one-CPU mode found of where things run, after
// starting them: the CPU lists the kernel allows each process (and every
// thread of the bench's), and Caddy's GOMAXPROCS from its own metrics.
type placement struct {
	caddyCPUs    string
	gomaxprocs   int
	apacheCPUs   string
	apacheProcs  int
	upstreamCPUs string // Apache's upstream's
	benchCPUs    string
}

func (p placement) String() string {
	s := fmt.Sprintf("Caddy on CPU %s with GOMAXPROCS %d (as Go set it, from Caddy's go_sched_gomaxprocs_threads), its upstream a site of the same Caddy", p.caddyCPUs, p.gomaxprocs)
	if p.apacheProcs > 0 {
		s += fmt.Sprintf("; Apache httpd on CPU %s (its %d processes), its upstream (bench/upstream.go's process) on CPU %s", p.apacheCPUs, p.apacheProcs, p.upstreamCPUs)
	}
	return s + fmt.Sprintf("; the load generator (the bench's process, every thread) on CPU %s", p.benchCPUs)
}

// checkPlacement reads where the main Caddy, Apache, Apache's upstream and
// the bench run, and fails if one is not where the mode puts it.
func (e *env) checkPlacement() error {
	server, load := strconv.Itoa(e.serverCPU), strconv.Itoa(e.loadCPU)
	p := placement{caddyCPUs: cpusAllowed(e.caddy.cmd.Process.Pid)}
	if p.caddyCPUs != server {
		return fmt.Errorf("caddy may run on CPUs %s, not on CPU %s alone", p.caddyCPUs, server)
	}
	g, err := gauge(e.admin, "go_sched_gomaxprocs_threads")
	if err != nil {
		return fmt.Errorf("reading Caddy's GOMAXPROCS: %w", err)
	}
	p.gomaxprocs = int(g)
	if p.gomaxprocs != 1 {
		logf("warning: Caddy runs with GOMAXPROCS %d on one CPU; nothing in its environment sets it", p.gomaxprocs)
	}
	if e.apache != nil {
		var lists []string
		for _, pid := range group(e.apache.cmd.Process.Pid) {
			lists = append(lists, cpusAllowed(pid))
		}
		slices.Sort(lists)
		lists = slices.Compact(lists)
		p.apacheCPUs, p.apacheProcs = strings.Join(lists, " "), len(group(e.apache.cmd.Process.Pid))
		if p.apacheCPUs != server {
			return fmt.Errorf("apache's processes may run on CPUs %s, not on CPU %s alone", p.apacheCPUs, server)
		}
		if p.upstreamCPUs = cpusAllowed(e.apacheUpstream.cmd.Process.Pid); p.upstreamCPUs != server {
			return fmt.Errorf("apache's upstream may run on CPUs %s, not on CPU %s alone", p.upstreamCPUs, server)
		}
	}
	var lists []string
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	for _, t := range tasks {
		if b, err := os.ReadFile(t); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
					lists = append(lists, strings.TrimSpace(v))
				}
			}
		}
	}
	slices.Sort(lists)
	p.benchCPUs = strings.Join(slices.Compact(lists), " ")
	if p.benchCPUs != load {
		return fmt.Errorf("the bench's threads may run on CPUs %s, not on CPU %s alone", p.benchCPUs, load)
	}
	e.placement = p
	logf("one-CPU mode: %s", p)
	return nil
}

// group lists the processes of the process group pgid (a server and its
// children: the bench starts each server in a group of its own).
func group(pgid int) []int {
	var pids []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// After the command's name in parentheses: state, ppid, pgrp.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 || f[2] != strconv.Itoa(pgid) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		pids = append(pids, pid)
	}
	return pids
}
