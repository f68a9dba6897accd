package bolt

import (
	"fmt"
	"os"

	bbolt "go.etcd.io/bbolt"
)

// update runs fn in a read-write transaction of its own, which commits
// only if the file open is still the one at the store's path.
func (s *Store) update(fn func(tx *bbolt.Tx) error) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		if err := s.checkFile(); err != nil {
			return err
		}
		return fn(tx)
	})
}

// checkFile returns an error if the store's path no longer names the file
// it opened: an operator removed it (rm), or moved another file onto it (a
// backup restored with mv). The open file goes on working, but nothing
// will find it again: the next start opens whatever is at the path, and
// every session written since would be lost, a logout undone by a
// restored backup included. So the commit is refused, and its requests
// get a 503, rather than acknowledged; reads of the open file go on. One
// stat a commit, next to its fsync. A file copied over the open one in
// place (cp) is the same file to this check, and is bbolt's undoing.
func (s *Store) checkFile() error {
	fi, err := os.Stat(s.path)
	switch {
	case err == nil && os.SameFile(fi, s.file):
		return nil
	case err != nil && !os.IsNotExist(err):
		return fmt.Errorf("checking that session store %s is still the file open, so writes are refused: %w", s.path, err)
	}
	return fmt.Errorf("session store %s was removed or replaced while open, so writes are refused: "+
		"they would be lost at the next start; put the file back, or restart Caddy to open the file now at that path", s.path)
}
