package tun

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// cloneDevice is the character device through which TUN interfaces are created.
const cloneDevice = "/dev/net/tun"

// checkCloneDevice reports ErrNoTUNDevice when the clone device is missing or is not a
// character device.
func checkCloneDevice() error {
	fi, err := os.Stat(cloneDevice)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return ErrNoTUNDevice
	case err != nil:
		return fmt.Errorf("stat %s: %w", cloneDevice, err)
	case fi.Mode()&os.ModeCharDevice == 0:
		return fmt.Errorf("%w (%s is not a character device)", ErrNoTUNDevice, cloneDevice)
	}
	return nil
}

// checkNetAdmin reports ErrNoNetAdmin when CAP_NET_ADMIN is missing from the calling
// thread's effective set. If the set cannot be read it returns nil and leaves the verdict
// to the kernel: an EPERM from the TUN ioctl or from rtnetlink is mapped the same way.
func checkNetAdmin() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData // version 3 carries 64 capability bits in two words
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil
	}
	const word, bit = unix.CAP_NET_ADMIN / 32, unix.CAP_NET_ADMIN % 32
	if data[word].Effective&(1<<bit) == 0 {
		return ErrNoNetAdmin
	}
	return nil
}

// classifyErrno maps the kernel's refusals to the package's sentinels, keeping the
// original error in the chain.
func classifyErrno(err error) error {
	switch {
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w: %w", ErrNoNetAdmin, err)
	case errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		return fmt.Errorf("%w: %w", ErrNoTUNDevice, err)
	}
	return err
}
