package caddysession

import (
	"testing"
	"time"
)

// TestStaleSlotFollowsItsHolders: the slot through which handlers
// without on_store_error stale tombstone in their store's copy holds the
// copy exactly while a handler does. A reload provisions the new config's
// holder before it cleans the old one up: the copy stays, and is the one
// both hold. Once the last holder lets go, a copy left in the slot would
// keep growing with tombstones no handler reads.
func TestStaleSlotFollowsItsHolders(t *testing.T) {
	const name = "test:reloadfly-slot"
	staleMu.Lock()
	slot := staleSlotFor(name)
	staleMu.Unlock()
	if slot.Load() != nil {
		t.Fatal("a slot holds a copy before any handler took one")
	}
	old := holdStaleCopy(name, time.Minute)
	if slot.Load() != old {
		t.Fatal("the slot does not hold the copy its first holder took")
	}
	renewed := holdStaleCopy(name, 5*time.Minute) // the new config
	if renewed != old {
		t.Fatal("the new config's holder took another copy of the same store")
	}
	releaseStaleCopy(name) // the old config is cleaned up
	if slot.Load() != renewed {
		t.Fatal("the slot lost the copy the new config still holds")
	}
	releaseStaleCopy(name)
	if slot.Load() != nil {
		t.Fatal("the slot keeps a copy no handler holds")
	}
	again := holdStaleCopy(name, time.Minute)
	t.Cleanup(func() { releaseStaleCopy(name) })
	if again == old || slot.Load() != again {
		t.Fatal("a handler that holds the copy after the last one let go does not find a new copy in the slot")
	}
}
