package bind

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
)

// Kernel limits on one UDP_SEGMENT send.
const (
	maxSegments = 64    // UDP_MAX_SEGMENTS
	maxPayload4 = 65507 // 65535 less the IPv4 and UDP headers
	maxPayload6 = 65527 // 65535 less the UDP header
)

// target is where a Send goes, resolved from its endpoint.
type target struct {
	family  int      // unix.AF_INET or unix.AF_INET6
	addr    [16]byte // IPv4 in the first 4 bytes
	port    uint16
	scope   uint32 // IPv6 scope id
	hasSrc  bool   // send from src on ifindex
	src     [16]byte
	ifindex int32
}

// setDst sets the destination. An IPv4-mapped IPv6 address goes out of the
// IPv4 socket, as the IPv6 one is IPV6_V6ONLY.
func (t *target) setDst(addr netip.Addr, port uint16, scope uint32) {
	addr = addr.Unmap()
	t.port, t.scope = port, scope
	if addr.Is4() {
		t.family = unix.AF_INET
		a := addr.As4()
		copy(t.addr[:], a[:])
	} else {
		t.family = unix.AF_INET6
		t.addr = addr.As16()
	}
}

// setSrc sets the sticky source, unless it is of the other family.
func (t *target) setSrc(src netip.Addr, ifindex int32) {
	src = src.Unmap()
	if !src.IsValid() || src.Is4() != (t.family == unix.AF_INET) {
		return
	}
	t.hasSrc, t.ifindex = true, ifindex
	if src.Is4() {
		a := src.As4()
		copy(t.src[:], a[:])
	} else {
		t.src = src.As16()
	}
}

// sendScratch is the state of one Send call, pooled so that a call
// allocates nothing. The kernel reads msgs, iovs, ctrl and name.
type sendScratch struct {
	sock    *socket
	t       target
	writeFn func(fd uintptr) bool // s.write, bound once: a new closure would escape

	nmsgs int        // messages built
	next  int        // first message not yet sent
	errno unix.Errno // why message next failed; 0 if all were sent
	used  int        // iovs that may point at caller buffers

	namelen uint32
	name    unix.RawSockaddrInet6 // or a RawSockaddrInet4
	msgs    [conn.IdealBatchSize]unix.Mmsghdr
	iovs    [conn.IdealBatchSize]unix.Iovec
	ctrl    [conn.IdealBatchSize]txControl
	start   [conn.IdealBatchSize + 1]int // index of each message's first buffer
}

var scratchPool = sync.Pool{New: func() any {
	s := new(sendScratch)
	s.writeFn = s.write
	return s
}}

// Send sends each of bufs as one datagram to ep, which is an *Endpoint or a
// *conn.StdNetEndpoint (whose sticky source is honoured too). It may be
// called concurrently. bufs is not modified or kept. A Send of more than
// BatchSize buffers is split.
func (b *Bind) Send(bufs [][]byte, ep conn.Endpoint) error {
	if len(bufs) == 0 {
		return nil
	}
	var t target
	switch e := ep.(type) {
	case *Endpoint:
		t.setDst(e.dst.Addr(), e.dst.Port(), e.scope)
		if e.hasSrc() {
			t.setSrc(e.src, e.ifindex)
		}
	case *conn.StdNetEndpoint:
		scope, err := zoneIndex(e.Addr().Zone())
		if err != nil {
			return fmt.Errorf("bind: send to %s: zone: %w", e.DstToString(), err)
		}
		t.setDst(e.Addr(), e.Port(), scope)
		t.setSrc(e.SrcIP(), e.SrcIfidx())
	default:
		return fmt.Errorf("bind: send to %T: %w", ep, conn.ErrWrongEndpointType)
	}
	socks := b.socks.Load()
	if socks == nil {
		return fmt.Errorf("bind: send: %w", net.ErrClosed)
	}
	sock := socks.v4
	if t.family == unix.AF_INET6 {
		sock = socks.v6
	}
	if sock == nil {
		return fmt.Errorf("bind: send to %s: %w", ep.DstToString(), unix.EAFNOSUPPORT)
	}
	s := scratchPool.Get().(*sendScratch)
	s.sock, s.t = sock, t
	err := s.send(bufs, ep)
	clear(s.iovs[:s.used])
	s.sock, s.used = nil, 0
	scratchPool.Put(s)
	return err
}

// send sends bufs, falling back as the package comment says when the
// kernel refuses a message, and resending from the first unsent buffer.
func (s *sendScratch) send(bufs [][]byte, ep conn.Endpoint) error {
	s.setName()
	noGSO, clearedSrc := false, false
	for len(bufs) > 0 {
		s.build(bufs, s.sock.gso.Load() && !noGSO)
		if err := s.sock.rc.Write(s.writeFn); err != nil {
			return fmt.Errorf("bind: send %s: %w", s.sock.network, err)
		}
		bufs = bufs[s.start[s.next]:]
		if s.errno == 0 {
			continue
		}
		segmented := s.start[s.next+1]-s.start[s.next] > 1
		switch {
		case s.errno == unix.EIO && segmented:
			// The route's device cannot checksum segments (or the route is
			// through xfrm): GSO will not work on this socket.
			s.sock.gso.Store(false)
		case (s.errno == unix.EINVAL || s.errno == unix.EMSGSIZE) && segmented && !noGSO:
			// A segment does not fit the route's MTU (EINVAL, or EMSGSIZE
			// for IPv6); sent one by one the datagrams are fragmented.
			noGSO = true
		case staleSource(s.errno) && s.t.hasSrc && !clearedSrc:
			// The sticky source address or its interface went away, or
			// the route to the peer no longer leaves through that
			// interface. Clearing it on the shared endpoint is safe:
			// ClearSrc is an atomic, one-way flag, so a concurrent Send
			// sees either the old source (and fails and clears it too) or
			// none, and no holder sees a source reappear. The receive
			// cache replaces the endpoint rather than reviving it when
			// the flow still arrives on that address a second later.
			ep.ClearSrc()
			s.t.hasSrc, clearedSrc = false, true
		default:
			return fmt.Errorf("bind: send %s to %s: %w", s.sock.network, ep.DstToString(),
				os.NewSyscallError("sendmmsg", s.errno))
		}
	}
	return nil
}

// setName writes the destination sockaddr.
func (s *sendScratch) setName() {
	if s.t.family == unix.AF_INET {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&s.name))
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: [4]byte(s.t.addr[:4])}
		setPort(&sa.Port, s.t.port)
		s.namelen = unix.SizeofSockaddrInet4
		return
	}
	s.name = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: s.t.addr, Scope_id: s.t.scope}
	setPort(&s.name.Port, s.t.port)
	s.namelen = unix.SizeofSockaddrInet6
}

// build lays out messages for the first BatchSize buffers of bufs. With gso,
// a run of buffers of one size, of which the last may be shorter, becomes
// one message with a UDP_SEGMENT control message and an iovec entry per
// buffer, within the kernel's limits on segments and payload.
func (s *sendScratch) build(bufs [][]byte, gso bool) {
	limit := maxPayload4
	if s.t.family == unix.AF_INET6 {
		limit = maxPayload6
	}
	nb := min(len(bufs), len(s.iovs))
	s.used = max(s.used, nb)
	m, i := 0, 0
	for i < nb {
		size := len(bufs[i])
		end := i + 1
		if gso && size > 0 {
			total := size
			for end < nb && end-i < maxSegments {
				n := len(bufs[end])
				if n == 0 || n > size || total+n > limit {
					break
				}
				total += n
				end++
				if n < size {
					break
				}
			}
		}
		for j := i; j < end; j++ {
			s.iovs[j].Base = unsafe.SliceData(bufs[j])
			s.iovs[j].SetLen(len(bufs[j]))
		}
		h := &s.msgs[m].Hdr
		h.Name = (*byte)(unsafe.Pointer(&s.name))
		h.Namelen = s.namelen
		h.Iov = &s.iovs[i]
		h.SetIovlen(end - i)
		ctrl := s.ctrl[m].bytes()
		n := 0
		if s.t.hasSrc {
			n += putPktinfo(ctrl, s.t.family, &s.t.src, s.t.ifindex)
		}
		if end-i > 1 {
			n += putSegment(ctrl[n:], size)
		}
		h.Control = nil
		if n > 0 {
			h.Control = &ctrl[0]
		}
		h.SetControllen(n)
		s.start[m] = i
		m++
		i = end
	}
	s.start[m] = i
	s.nmsgs, s.next, s.errno = m, 0, 0
}

// write is the RawConn.Write callback: it sends messages next on, and
// reports false to wait for the socket to become writable.
func (s *sendScratch) write(fd uintptr) bool {
	for s.next < s.nmsgs {
		msgs := s.msgs[s.next:s.nmsgs]
		vlen := len(msgs)
		if s.sock.sendHook != nil {
			var e unix.Errno
			if vlen, e = s.sock.sendHook(msgs); e != 0 {
				s.errno = e
				return true
			}
		}
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd,
			uintptr(unsafe.Pointer(&msgs[0])), uintptr(vlen), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			if n == 0 {
				return false
			}
			s.next += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			s.errno = e
			return true
		}
	}
	return true
}

// staleSource reports whether errno is how the kernel refuses a sticky
// source: EINVAL for an IPv6 address that is not local; ENETUNREACH for an
// IPv4 one (as Linux 6.18 does; EINVAL is handled too) or for an interface
// with no route to the peer; ENODEV for an interface that is gone.
func staleSource(errno unix.Errno) bool {
	return errno == unix.EINVAL || errno == unix.ENETUNREACH || errno == unix.ENODEV
}
