// Package peercred tells who is at the other end of a Unix socket, so that
// the daemon's local sockets answer only root and the daemon's own user
// whatever the socket's file mode, which a umask or a shared directory
// can leave open for a moment.
package peercred

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// UID returns the user id of the process at the other end of c, as the
// kernel recorded it when the connection was made (SO_PEERCRED).
func UID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, fmt.Errorf("peer credentials: %w", err)
	}
	if credErr != nil {
		return 0, fmt.Errorf("peer credentials: %w", credErr)
	}
	return cred.Uid, nil
}

// Trusted reports whether the process at the other end of c is root or
// runs as this process's effective user. It returns the peer's uid for
// logs, and false with the error when the credentials cannot be read.
func Trusted(c *net.UnixConn) (uint32, bool, error) {
	uid, err := UID(c)
	if err != nil {
		return 0, false, err
	}
	return uid, uid == 0 || uid == uint32(os.Geteuid()), nil
}
