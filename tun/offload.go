package tun

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// offloads says which segmentation offloads the kernel enabled on the link. They decide
// whether one read of the device can return a 64 KiB TCP or UDP segment for the engine to
// split, and whether writes can hand such segments back. Only logged and tested.
type offloads struct {
	checksum bool // tx-checksum-ip-generic: the kernel leaves checksums to the reader
	tso4     bool // tx-tcp-segmentation
	tso6     bool // tx-tcp6-segmentation
	uso      bool // tx-udp-segmentation (Linux 6.2 and later)
}

// String lists the enabled offloads, or "none".
func (o offloads) String() string {
	s := ""
	for _, f := range []struct {
		on   bool
		name string
	}{{o.checksum, "csum"}, {o.tso4, "tso4"}, {o.tso6, "tso6"}, {o.uso, "uso"}} {
		if f.on {
			s += "," + f.name
		}
	}
	if s == "" {
		return "none"
	}
	return s[1:]
}

// ethtool ABI values that golang.org/x/sys/unix does not define.
const (
	ethSSFeatures = 4  // ETH_SS_FEATURES: the string set naming device features
	ethGStringLen = 32 // ETH_GSTRING_LEN
	ifreqSize     = 40 // sizeof(struct ifreq) on 64-bit Linux
	featureWords  = 4  // available, requested, active, never_changed per 32 features
	featureCsum   = "tx-checksum-ip-generic"
	featureTSO4   = "tx-tcp-segmentation"
	featureTSO6   = "tx-tcp6-segmentation"
	featureUSO    = "tx-udp-segmentation"
)

// probeOffloads reads the active features of the link called name through the ethtool
// ioctl, in the calling thread's network namespace.
func probeOffloads(name string) (offloads, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return offloads{}, fmt.Errorf("probe offloads: %w", err)
	}
	defer unix.Close(fd)

	// How many features the kernel knows.
	sset := make([]byte, 16+4) // cmd, reserved, sset_mask, data[1]
	binary.NativeEndian.PutUint32(sset[0:], unix.ETHTOOL_GSSET_INFO)
	binary.NativeEndian.PutUint64(sset[8:], 1<<ethSSFeatures)
	if err := ethtool(fd, name, sset); err != nil {
		return offloads{}, fmt.Errorf("probe offloads: count features: %w", err)
	}
	if binary.NativeEndian.Uint64(sset[8:])&(1<<ethSSFeatures) == 0 {
		return offloads{}, fmt.Errorf("probe offloads: kernel lists no feature names")
	}
	n := int(binary.NativeEndian.Uint32(sset[16:]))

	// Their names, 32 bytes each.
	names := make([]byte, 12+n*ethGStringLen)
	binary.NativeEndian.PutUint32(names[0:], unix.ETHTOOL_GSTRINGS)
	binary.NativeEndian.PutUint32(names[4:], ethSSFeatures)
	binary.NativeEndian.PutUint32(names[8:], uint32(n))
	if err := ethtool(fd, name, names); err != nil {
		return offloads{}, fmt.Errorf("probe offloads: feature names: %w", err)
	}

	// Their state, in blocks of 32 features.
	blocks := (n + 31) / 32
	state := make([]byte, 8+blocks*featureWords*4)
	binary.NativeEndian.PutUint32(state[0:], unix.ETHTOOL_GFEATURES)
	binary.NativeEndian.PutUint32(state[4:], uint32(blocks))
	if err := ethtool(fd, name, state); err != nil {
		return offloads{}, fmt.Errorf("probe offloads: feature state: %w", err)
	}

	var o offloads
	for i := range n {
		raw := names[12+i*ethGStringLen : 12+(i+1)*ethGStringLen]
		block := state[8+(i/32)*featureWords*4:]
		active := binary.NativeEndian.Uint32(block[8:])&(1<<(i%32)) != 0
		switch unix.ByteSliceToString(raw) {
		case featureCsum:
			o.checksum = active
		case featureTSO4:
			o.tso4 = active
		case featureTSO6:
			o.tso6 = active
		case featureUSO:
			o.uso = active
		}
	}
	return o, nil
}

// ifreqData is struct ifreq with its union holding a pointer, as SIOCETHTOOL wants it.
// The pointer is a typed field so that the runtime sees it.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [ifreqSize - unix.IFNAMSIZ - unsafe.Sizeof(uintptr(0))]byte
}

// ethtool issues one SIOCETHTOOL request for the link called name; buf holds the request
// and receives the answer.
func ethtool(fd int, name string, buf []byte) error {
	ifr := &ifreqData{data: unsafe.Pointer(&buf[0])}
	copy(ifr.name[:unix.IFNAMSIZ-1], name)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL,
		uintptr(unsafe.Pointer(ifr)))
	runtime.KeepAlive(ifr)
	runtime.KeepAlive(buf)
	if errno != 0 {
		return errno
	}
	return nil
}
