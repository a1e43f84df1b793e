//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package storage

import (
	"errors"
	"os"
)

// lockDir fails where flock is not available: running without the lock would
// let two brokers corrupt one directory.
func lockDir(dir string) (*os.File, error) {
	return nil, errors.New("storage: the disk store needs flock, not available on this platform")
}
