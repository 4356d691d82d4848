package bind

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// socketBuffer is the receive and send buffer size asked of the kernel.
const socketBuffer = 4 << 20

// socket is one bound UDP socket of a Bind.
type socket struct {
	conn    *net.UDPConn
	rc      syscall.RawConn // conn's, for recvmmsg and sendmmsg via the netpoller
	network string          // "udp4" or "udp6", for errors
	family  int             // unix.AF_INET or unix.AF_INET6
	port    uint16          // the bound port
	gro     bool            // UDP_GRO is on: received messages may be coalesced
	gso     atomic.Bool     // UDP_SEGMENT may be used; cleared if the device cannot

	// sendHook, if set (by tests), runs before each sendmmsg. It returns how
	// many of msgs to pass to the kernel, or an errno to fail with instead.
	sendHook func(msgs []unix.Mmsghdr) (int, unix.Errno)
}

// listen opens and configures the socket for network ("udp4" or "udp6") on
// port, with IPV6_V6ONLY for udp6. It must be called with b.mu held.
func (b *Bind) listen(network string, port uint16) (*socket, error) {
	s := &socket{network: network, family: unix.AF_INET}
	if network == "udp6" {
		s.family = unix.AF_INET6
		if b.noIPv6 {
			return nil, fmt.Errorf("bind: open %s port %d: %w", network, port,
				unix.EAFNOSUPPORT)
		}
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) { err = b.configure(s, int(fd)) }); cerr != nil {
			return cerr
		}
		return err
	}}
	// Go sets IPV6_V6ONLY on a "udp6" wildcard socket.
	addr := net.JoinHostPort("", strconv.Itoa(int(port)))
	pc, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err
		}
		return nil, fmt.Errorf("bind: open %s port %d: %w", network, port, err)
	}
	s.conn = pc.(*net.UDPConn)
	if s.rc, err = s.conn.SyscallConn(); err != nil {
		_ = s.conn.Close()
		return nil, fmt.Errorf("bind: open %s port %d: %w", network, port, err)
	}
	s.port = uint16(s.conn.LocalAddr().(*net.UDPAddr).Port)
	return s, nil
}

// configure sets the options of a new socket before it is bound.
func (b *Bind) configure(s *socket, fd int) error {
	// Larger buffers absorb bursts. The FORCE variants pass net.core.rmem_max
	// and wmem_max but need CAP_NET_ADMIN; the plain ones are capped there.
	// Either failing only leaves the default, so errors are ignored.
	for _, o := range [][2]int{
		{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF},
		{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF},
	} {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[0], socketBuffer) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[1], socketBuffer)
		}
	}
	if s.family == unix.AF_INET {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1); err != nil {
			return fmt.Errorf("set IP_PKTINFO: %w", err)
		}
	} else {
		err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		if err != nil {
			return fmt.Errorf("set IPV6_RECVPKTINFO: %w", err)
		}
	}
	if b.mark != 0 {
		err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(b.mark))
		if err != nil {
			return fmt.Errorf("set mark %d: %w", b.mark, err)
		}
	}
	// UDP_GRO (Linux 5.0) and UDP_SEGMENT (4.18) are optional: without them
	// datagrams go one per message.
	if !b.noGRO {
		s.gro = unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_GRO, 1) == nil
	}
	if !b.noGSO {
		_, err := unix.GetsockoptInt(fd, unix.SOL_UDP, unix.UDP_SEGMENT)
		s.gso.Store(err == nil)
	}
	return nil
}

// close closes the socket, which wakes blocked reads and writes.
func (s *socket) close() error {
	return s.conn.Close()
}

// Control messages are built and parsed in arrays of uint64 so that each
// header is aligned as the kernel's struct cmsghdr is.

// rxControlWords sizes a received message's control buffer: room for
// IPV6_PKTINFO (40 bytes) and UDP_GRO (24) with some to spare.
const rxControlWords = 16

// txControlWords sizes a sent message's control buffer: IPV6_PKTINFO (40
// bytes) and UDP_SEGMENT (16).
const txControlWords = 8

// rxControl is the control buffer of one received message.
type rxControl [rxControlWords]uint64

// txControl is the control buffer of one sent message.
type txControl [txControlWords]uint64

// bytes views c as bytes.
func (c *rxControl) bytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(c)), len(c)*8)
}

// bytes views c as bytes.
func (c *txControl) bytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(c)), len(c)*8)
}

// rxInfo is what a received message's control messages say.
type rxInfo struct {
	local    [16]byte // the address it was sent to; IPv4 in the first 4 bytes
	hasLocal bool     // a PKTINFO message was present
	ifindex  int32    // the interface it arrived on
	segment  int      // UDP_GRO segment size; 0 if not coalesced
}

// parseControl reads the control messages of a received message from b.
func parseControl(b []byte) rxInfo {
	var info rxInfo
	for len(b) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		n := int(h.Len)
		if n < unix.CmsgLen(0) || n > len(b) {
			break
		}
		data := b[unix.CmsgLen(0):n]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO &&
			len(data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo: ifindex, spec_dst, addr. spec_dst is the
			// local address a reply should come from.
			info.ifindex = int32(binary.NativeEndian.Uint32(data))
			copy(info.local[:4], data[4:8])
			info.hasLocal = true
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO &&
			len(data) >= unix.SizeofInet6Pktinfo:
			// struct in6_pktinfo: addr, ifindex.
			copy(info.local[:], data[:16])
			info.ifindex = int32(binary.NativeEndian.Uint32(data[16:]))
			info.hasLocal = true
		case h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && len(data) >= 4:
			info.segment = int(int32(binary.NativeEndian.Uint32(data)))
		}
		next := unix.CmsgSpace(n - unix.CmsgLen(0))
		if next >= len(b) {
			break
		}
		b = b[next:]
	}
	return info
}

// putPktinfo writes at the start of b, which must be 8-byte aligned, an
// IP_PKTINFO or IPV6_PKTINFO message that sends from src on ifindex, and
// returns its length.
func putPktinfo(b []byte, family int, src *[16]byte, ifindex int32) int {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	data := b[unix.CmsgLen(0):]
	if family == unix.AF_INET {
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		binary.NativeEndian.PutUint32(data, uint32(ifindex))
		copy(data[4:8], src[:4])
		clear(data[8:12])
		return unix.CmsgSpace(unix.SizeofInet4Pktinfo)
	}
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	copy(data[:16], src[:])
	binary.NativeEndian.PutUint32(data[16:], uint32(ifindex))
	return unix.CmsgSpace(unix.SizeofInet6Pktinfo)
}

// putSegment writes at the start of b, which must be 8-byte aligned, a
// UDP_SEGMENT message for segments of size bytes, and returns its length.
func putSegment(b []byte, size int) int {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[unix.CmsgLen(0):], uint16(size))
	return unix.CmsgSpace(2)
}

// Ports in sockaddrs are in network byte order.

// portOf reads a port in network byte order.
func portOf(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return binary.BigEndian.Uint16(b[:])
}

// setPort writes a port in network byte order.
func setPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	binary.BigEndian.PutUint16(b[:], port)
}
