package bind

import (
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

// Endpoint is a remote UDP address and, optionally, a sticky source: the
// local address and interface that datagrams to it leave from, which is the
// address and interface the peer's last datagram arrived on.
//
// An Endpoint never changes after it is handed out, except that ClearSrc
// drops the source, atomically and for good. It is safe for concurrent use,
// and a receive socket hands the same pointer to every datagram of a flow.
// Make one with Bind.ParseEndpoint; the zero value is not usable.
type Endpoint struct {
	dst      netip.AddrPort
	dstBytes []byte   // dst.MarshalBinary(), usually backed by dstBuf
	dstBuf   [18]byte // room for a zoneless IPv6 address and port
	scope    uint32   // IPv6 scope id of dst, from its zone; 0 if none

	src     netip.Addr   // sticky source; invalid if none
	ifindex int32        // interface of src
	srcGone atomic.Int64 // monotonic time of ClearSrc (see clock), never reset
}

var _ conn.Endpoint = (*Endpoint)(nil)

// newEndpoint makes an Endpoint for dst, whose IPv6 scope id is scope, with
// the sticky source src on interface ifindex (src may be invalid).
func newEndpoint(dst netip.AddrPort, scope uint32, src netip.Addr, ifindex int32) *Endpoint {
	e := &Endpoint{dst: dst, scope: scope, src: src, ifindex: ifindex}
	e.dstBytes, _ = dst.AppendBinary(e.dstBuf[:0]) // cannot fail
	return e
}

// hasSrc reports whether e has a sticky source that was not cleared.
func (e *Endpoint) hasSrc() bool {
	return e.src.IsValid() && e.srcGone.Load() == 0
}

// ClearSrc drops the sticky source, so that the kernel picks the source of
// later datagrams by routing. It is safe to call concurrently with anything.
func (e *Endpoint) ClearSrc() {
	e.srcGone.CompareAndSwap(0, max(clock(), 1))
}

// SrcIP returns the sticky source address, or the zero Addr if none.
func (e *Endpoint) SrcIP() netip.Addr {
	if !e.hasSrc() {
		return netip.Addr{}
	}
	return e.src
}

// SrcIfindex returns the interface index of the sticky source, or 0 if none.
func (e *Endpoint) SrcIfindex() int32 {
	if !e.hasSrc() {
		return 0
	}
	return e.ifindex
}

// SrcToString returns the sticky source address without a port (as
// conn.StdNetEndpoint does), or "" if there is none.
func (e *Endpoint) SrcToString() string {
	if !e.hasSrc() {
		return ""
	}
	return e.src.String()
}

// DstIP returns the remote address. For a received link-local IPv6 address
// its zone is the numeric interface index.
func (e *Endpoint) DstIP() netip.Addr {
	return e.dst.Addr()
}

// DstAddrPort returns the remote address and port, for comparing endpoints
// without the allocations of DstToString.
func (e *Endpoint) DstAddrPort() netip.AddrPort {
	return e.dst
}

// DstToString returns the remote address as "ip:port" or "[ip]:port".
func (e *Endpoint) DstToString() string {
	return e.dst.String()
}

// DstToBytes returns the remote address in the form of
// netip.AddrPort.MarshalBinary, the same bytes as conn.StdNetEndpoint's for
// the same address. It does not allocate; the caller must not modify them.
func (e *Endpoint) DstToBytes() []byte {
	return e.dstBytes
}

// start anchors clock.
var start = time.Now()

// clock returns monotonic nanoseconds since the package started.
func clock() int64 { return int64(time.Since(start)) }

// zoneIndex turns an IPv6 zone, an interface name or a decimal index, into
// a scope id. The empty zone is 0.
func zoneIndex(zone string) (uint32, error) {
	if zone == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, err
	}
	return uint32(ifi.Index), nil
}
