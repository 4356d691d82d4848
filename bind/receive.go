package bind

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
)

// maxGROSegments is the most datagrams the kernel's GRO coalesces into one
// received message (UDP_GRO_CNT_MAX). A GSO send of up to UDP_MAX_SEGMENTS
// (128 since Linux 6.x) crosses loopback or a veth whole, so a message may
// hold more; those that do not fit the caller's buffers are spilled.
const maxGROSegments = 64

// flowKey names the flow a datagram belongs to, in raw form so that building
// and hashing it does not allocate.
type flowKey struct {
	remote  [16]byte // IPv4 in the first 4 bytes
	port    uint16
	scope   uint32 // IPv6 scope id of remote
	local   [16]byte
	ifindex int32
}

// receiver reads one socket. Everything the kernel reads into or writes to
// is allocated once, here, so that a call allocates nothing.
type receiver struct {
	sock  *socket
	limit int // most entries in cache

	// mu is held for a whole call, so that concurrent calls of the same
	// ReceiveFunc take turns with the arrays below.
	mu     sync.Mutex
	readFn func(fd uintptr) bool // r.read, bound once: a new closure would escape
	want   int                   // messages to read; set before readFn runs
	got    int                   // messages read; set by readFn
	errno  unix.Errno            // recvmmsg's error; set by readFn

	info  [conn.IdealBatchSize]rxInfo // what each message's control messages say
	msgs  [conn.IdealBatchSize]unix.Mmsghdr
	iovs  [conn.IdealBatchSize]unix.Iovec
	names [conn.IdealBatchSize]unix.RawSockaddrInet6 // large enough for IPv4 too
	ctrl  [conn.IdealBatchSize]rxControl

	// cache interns endpoints. It is dropped whole when full, which bounds
	// it whatever the sources; lastKey and lastEP short-cut a run of one
	// flow.
	cache   map[flowKey]*Endpoint
	lastKey flowKey
	lastEP  *Endpoint

	// spill holds messages read but not yet handed out, when a call read
	// more datagrams than the caller gave buffers for (a GSO message of
	// more than maxGROSegments). The next calls hand them out before
	// reading again. Its buffers are allocated on first use.
	spill     [conn.IdealBatchSize / maxGROSegments][]byte
	pend      [conn.IdealBatchSize / maxGROSegments]pendingMessage
	npend     int    // messages in pend
	pendHead  int    // first message of pend not yet handed out whole
	coalesced uint64 // messages split from GRO, for tests
	spilled   uint64 // messages that went through spill, for tests
}

// pendingMessage is a message in the spill, handed out from off on.
type pendingMessage struct {
	data []byte
	seg  int // segment size; len(data) if not coalesced
	off  int
	ep   *Endpoint
}

// newReceiver makes the receiver of sock, whose endpoint cache holds at most
// limit entries.
func newReceiver(sock *socket, limit int) *receiver {
	r := &receiver{sock: sock, limit: limit, cache: make(map[flowKey]*Endpoint)}
	r.readFn = r.read
	for i := range r.msgs {
		h := &r.msgs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		h.Control = &r.ctrl[i].bytes()[0]
	}
	return r
}

// receiveIPv4 is the ReceiveFunc of an IPv4 socket; its name tells
// conn.ReceiveFunc.PrettyName the family.
func (r *receiver) receiveIPv4(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
	return r.receive(bufs, sizes, eps)
}

// receiveIPv6 is the ReceiveFunc of an IPv6 socket.
func (r *receiver) receiveIPv6(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
	return r.receive(bufs, sizes, eps)
}

// receive blocks until at least one message arrives, then returns n and
// puts one datagram in each of bufs[:n], its length in sizes[:n] and its
// sender in eps[:n]; n may be 0. sizes and eps must be at least as long as
// bufs; buffers past BatchSize are not used. A message longer than its
// buffer is dropped, so each buffer should hold 65535 bytes, the most a GRO
// message holds. With GRO it reads one message per 64 buffers, which is all
// it can be sure to split; with fewer than 64 buffers, segments that do not
// fit are dropped. A coalesced message's datagrams are copied out in order.
func (r *receiver) receive(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	nb := min(len(bufs), len(r.msgs))
	if nb == 0 {
		return 0, nil
	}
	bufs = bufs[:nb]
	if r.npend > 0 {
		return r.drain(bufs, sizes, eps), nil
	}
	want := nb
	if r.sock.gro {
		want = max(1, nb/maxGROSegments)
	}
	// Read into the tail, so that splitting forward never overwrites a
	// message not yet split.
	first := nb - want
	for i := range want {
		buf := bufs[first+i]
		r.iovs[i].Base = unsafe.SliceData(buf)
		r.iovs[i].SetLen(len(buf))
		h := &r.msgs[i].Hdr
		h.Namelen = unix.SizeofSockaddrInet6
		h.SetControllen(len(r.ctrl[i]) * 8)
		h.Flags = 0
	}
	r.want = want
	err := r.sock.rc.Read(r.readFn)
	clear(r.iovs[:want]) // do not keep the caller's buffers alive
	if err != nil {
		return 0, fmt.Errorf("bind: receive %s: %w", r.sock.network, err)
	}
	if r.errno != 0 {
		return 0, fmt.Errorf("bind: receive %s: %w", r.sock.network,
			os.NewSyscallError("recvmmsg", r.errno))
	}
	if r.parse() > nb {
		r.stash(bufs, first)
		return r.drain(bufs, sizes, eps), nil
	}
	return r.split(bufs, first, sizes, eps), nil
}

// read is the RawConn.Read callback: it reports false to wait for the
// socket to become readable.
func (r *receiver) read(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd,
			uintptr(unsafe.Pointer(&r.msgs[0])), uintptr(r.want), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			r.got, r.errno = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			r.got, r.errno = 0, e
			return true
		}
	}
}

// parse reads the control messages of the r.got messages read into r.info,
// with each message's segment size, and returns how many datagrams they
// hold in all.
func (r *receiver) parse() int {
	n := 0
	for j := range r.got {
		h := &r.msgs[j].Hdr
		size := int(r.msgs[j].Len)
		info := &r.info[j]
		*info = parseControl(r.ctrl[j].bytes()[:h.Controllen])
		if info.segment <= 0 || info.segment >= size {
			info.segment = max(size, 1)
		}
		n += max(1, (size+info.segment-1)/info.segment) // an empty datagram too
	}
	return n
}

// split moves the r.got messages read into bufs[first:] forward, one
// datagram per buffer from bufs[0] on, and returns how many buffers it
// filled. The messages must hold at most len(bufs) datagrams in all: then
// the datagrams before message j fill at most first+j buffers, and
// splitting never overwrites a message not yet split.
func (r *receiver) split(bufs [][]byte, first int, sizes []int, eps []conn.Endpoint) int {
	out := 0
	for j := range r.got {
		slot := first + j
		h := &r.msgs[j].Hdr
		if h.Flags&unix.MSG_TRUNC != 0 {
			continue
		}
		size := int(r.msgs[j].Len)
		ep := r.endpoint(&r.names[j], &r.info[j])
		seg := r.info[j].segment
		if seg < size {
			r.coalesced++
		}
		for off := 0; out < len(bufs); off += seg {
			end := min(off+seg, size)
			n := end - off
			if out != slot || off != 0 {
				n = copy(bufs[out], bufs[slot][off:end])
			}
			sizes[out], eps[out] = n, ep
			out++
			if end >= size {
				break
			}
		}
	}
	return out
}

// stash copies the r.got messages read into bufs[first:] to the spill,
// for drain to hand out.
func (r *receiver) stash(bufs [][]byte, first int) {
	r.npend, r.pendHead = 0, 0
	for j := range r.got {
		h := &r.msgs[j].Hdr
		if h.Flags&unix.MSG_TRUNC != 0 {
			continue
		}
		size := int(r.msgs[j].Len)
		k := r.npend
		if cap(r.spill[k]) < size {
			r.spill[k] = make([]byte, max(size, 1<<16))
		}
		data := r.spill[k][:size]
		copy(data, bufs[first+j])
		r.pend[k] = pendingMessage{data: data, seg: r.info[j].segment,
			ep: r.endpoint(&r.names[j], &r.info[j])}
		r.npend++
		r.coalesced++
		r.spilled++
	}
}

// drain hands out datagrams from the spill, one per buffer, and returns
// how many buffers it filled.
func (r *receiver) drain(bufs [][]byte, sizes []int, eps []conn.Endpoint) int {
	out := 0
	for r.pendHead < r.npend && out < len(bufs) {
		m := &r.pend[r.pendHead]
		end := min(m.off+m.seg, len(m.data))
		sizes[out] = copy(bufs[out], m.data[m.off:end])
		eps[out] = m.ep
		out++
		m.off = end
		if end >= len(m.data) {
			m.ep = nil
			r.pendHead++
		}
	}
	if r.pendHead == r.npend {
		r.npend, r.pendHead = 0, 0
	}
	return out
}

// endpoint returns the interned endpoint of a datagram from sa with the
// control information info.
func (r *receiver) endpoint(sa *unix.RawSockaddrInet6, info *rxInfo) *Endpoint {
	var k flowKey
	if r.sock.family == unix.AF_INET {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		copy(k.remote[:4], sa4.Addr[:])
		k.port = portOf(&sa4.Port)
	} else {
		k.remote = sa.Addr
		k.port = portOf(&sa.Port)
		k.scope = sa.Scope_id
	}
	if info.hasLocal {
		k.local, k.ifindex = info.local, info.ifindex
	}
	if r.lastEP != nil && k == r.lastKey && !stale(r.lastEP) {
		return r.lastEP
	}
	ep, ok := r.cache[k]
	if !ok || stale(ep) {
		// A stale endpoint is replaced, never revived: peers hold it.
		if len(r.cache) >= r.limit {
			clear(r.cache)
		}
		ep = r.newEndpoint(&k, info.hasLocal)
		r.cache[k] = ep
	}
	r.lastKey, r.lastEP = k, ep
	return ep
}

// stale reports whether ep had a sticky source that was cleared at least
// staleAfter ago: the datagram in hand suggests the source works again, so
// the flow gets a new endpoint with it. Waiting first keeps a local address
// that receives but cannot send (asymmetric routing) from costing a new
// endpoint per datagram and a failed send per batch.
func stale(ep *Endpoint) bool {
	if !ep.src.IsValid() {
		return false
	}
	gone := ep.srcGone.Load()
	return gone != 0 && clock()-gone >= int64(staleAfter)
}

// staleAfter is how long a flow keeps an endpoint whose source was cleared.
const staleAfter = time.Second

// newEndpoint makes the endpoint of flow k.
func (r *receiver) newEndpoint(k *flowKey, hasLocal bool) *Endpoint {
	var dst, src netip.Addr
	if r.sock.family == unix.AF_INET {
		dst = netip.AddrFrom4([4]byte(k.remote[:4]))
		if hasLocal {
			src = netip.AddrFrom4([4]byte(k.local[:4]))
		}
	} else {
		dst = netip.AddrFrom16(k.remote)
		if k.scope != 0 {
			dst = dst.WithZone(strconv.FormatUint(uint64(k.scope), 10))
		}
		if hasLocal {
			src = netip.AddrFrom16(k.local)
		}
	}
	return newEndpoint(netip.AddrPortFrom(dst, k.port), k.scope, src, k.ifindex)
}
