//go:build !unix

package freeport

// claim claims nothing where flock is missing: ports are then distinct
// within a process only.
func claim(int) bool { return true }
