//go:build unix

package freeport

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// claims keeps the lock files of this process's ports open: closing one
// would release its lock.
var claims struct {
	sync.Mutex
	files []*os.File
}

// claim takes the lock of port's file for the rest of the process's life,
// and reports false if another process holds it. Where the lock file
// cannot be had (a temporary directory of another user's), it claims
// nothing and reports true: ports are then distinct within this process
// only, as they were before claims.
//
// The files stay behind, one empty file per port ever claimed: removing
// one while another process opens it would let two processes lock two
// different files of one name.
func claim(port int) bool {
	dir := filepath.Join(os.TempDir(), "caddy-session-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return true
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return true
	}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err != nil {
		f.Close()
		return !errors.Is(err, syscall.EWOULDBLOCK)
	}
	claims.Lock()
	claims.files = append(claims.files, f)
	claims.Unlock()
	return true
}
