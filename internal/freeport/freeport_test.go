package freeport

import "testing"

func TestPickNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 2000 {
		p := Must(t)
		if seen[p] {
			t.Fatalf("port %d given twice", p)
		}
		seen[p] = true
	}
}
