//go:build !linux

package main

import "errors"

// The one-CPU mode pins processes with Linux's sched_setaffinity; the rest
// of the bench does not need it.

type cpuMask [16]uint64

func (m *cpuMask) cpus() []int { return nil }

var errNoAffinity = errors.New("the one-CPU mode needs Linux")

func affinity(int) (cpuMask, error) { return cpuMask{}, errNoAffinity }
func pinProcess(int) (int, error)   { return 0, errNoAffinity }
func cpusAllowed(int) string        { return "?" }
