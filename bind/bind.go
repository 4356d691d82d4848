// Package bind is the engine's UDP transport: a conn.Bind (from
// golang.zx2c4.com/wireguard/conn) that allocates nothing per datagram once it
// runs, and that offloads batching to the kernel with UDP GRO and GSO where
// the kernel supports them. It drops in where conn.NewStdNetBind() was used.
//
// A Bind owns one IPv4 and one IPv6 socket (IPV6_V6ONLY) on the same port.
// Blocking goes through the Go netpoller: every system call is made with
// MSG_DONTWAIT inside syscall.RawConn.Read or Write, which park the goroutine
// on EAGAIN. No goroutine is started.
//
// Receive path, one ReceiveFunc per socket (receive.go):
//
//  1. receive lays msghdrs over the tail of the caller's buffers (all of them
//     without GRO, one per 64 buffers with GRO) and calls recvmmsg.
//  2. For each message it reads the source sockaddr and the control messages:
//     IP_PKTINFO or IPV6_PKTINFO (the local address and interface the
//     datagram arrived on) and UDP_GRO (the segment size of a coalesced one).
//  3. It interns (remote address, local address, interface) to an *Endpoint
//     in a bounded per-socket cache, so one flow keeps one pointer.
//  4. It splits coalesced messages forward into bufs[0], bufs[1], ... so
//     that every returned buffer holds exactly one datagram.
//
// Send path, any number of goroutines at once (send.go):
//
//  1. Send takes per-call scratch (msghdrs, iovecs, control buffers) from a
//     sync.Pool and resolves the endpoint to a sockaddr and sticky source.
//  2. With GSO it turns each run of equal-size buffers into one msghdr whose
//     iovec points at the caller's buffers, plus a UDP_SEGMENT control
//     message; without GSO every buffer is a msghdr. An IP_PKTINFO or
//     IPV6_PKTINFO control message carries the sticky source, if any.
//  3. It calls sendmmsg, looping over partial results.
//  4. On failure it falls back and resends what is left: EIO from a GSO
//     message turns GSO off for the socket, EINVAL or EMSGSIZE from one
//     sends the rest of that call unsegmented, and EINVAL, ENETUNREACH or
//     ENODEV with a sticky source clears the source.
package bind

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
)

// portTries is how many times Open with port 0 draws a new port when the one
// the IPv4 socket got is taken for IPv6.
const portTries = 10

// defaultCacheLimit bounds each receive socket's endpoint cache.
const defaultCacheLimit = 1024

// Bind is a conn.Bind over two UDP sockets. Its methods are safe to call
// concurrently; Send in particular is meant to be called from many
// goroutines at once.
type Bind struct {
	// mu serializes Open, Close and SetMark and guards mark. Send and the
	// ReceiveFuncs do not take it: Send reads socks atomically.
	mu    sync.Mutex
	socks atomic.Pointer[sockets] // nil while closed
	mark  uint32                  // SO_MARK for the sockets; 0 leaves it unset

	// Knobs for tests, read by Open.
	noGSO      bool // never send with UDP_SEGMENT
	noGRO      bool // do not enable UDP_GRO
	noIPv6     bool // behave as if the kernel had no IPv6
	cacheLimit int  // endpoint cache size per socket; 0 means the default
}

// sockets is what an open Bind holds. It is replaced, never modified.
type sockets struct {
	v4, v6   *socket   // either may be nil when the kernel lacks that family
	rx4, rx6 *receiver // their receivers, for tests
}

var _ conn.Bind = (*Bind)(nil)

// New returns a closed Bind; Open starts it.
func New() *Bind {
	return &Bind{}
}

// BatchSize is conn.IdealBatchSize: the most buffers a ReceiveFunc fills,
// and the most datagrams Send hands the kernel in one sendmmsg.
func (b *Bind) BatchSize() int {
	return conn.IdealBatchSize
}

// Open binds an IPv4 and an IPv6 socket to port, or, with port 0, to one
// free port that both families share, and returns one ReceiveFunc for each
// socket. Without kernel support for one family it opens only the other.
// It returns conn.ErrBindAlreadyOpen if the Bind is open.
//
// A ReceiveFunc puts exactly one datagram in each buffer it fills. It wants
// BatchSize buffers of 65535 bytes: a message longer than its buffer is
// dropped, and with GRO it reads one message per 64 buffers so that it can
// split any coalesced message; with fewer than 64 buffers, segments that do
// not fit are dropped. Concurrent calls of one ReceiveFunc take turns.
func (b *Bind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.socks.Load() != nil {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	var (
		s   *sockets
		err error
	)
	for try := 0; try < portTries; try++ {
		s, err = b.openPair(port)
		if err == nil || port != 0 || !errors.Is(err, unix.EADDRINUSE) {
			break
		}
	}
	if err != nil {
		return nil, 0, err
	}
	limit := b.cacheLimit
	if limit <= 0 {
		limit = defaultCacheLimit
	}
	var fns []conn.ReceiveFunc
	if s.v4 != nil {
		port = s.v4.port
		s.rx4 = newReceiver(s.v4, limit)
		fns = append(fns, s.rx4.receiveIPv4)
	}
	if s.v6 != nil {
		port = s.v6.port
		s.rx6 = newReceiver(s.v6, limit)
		fns = append(fns, s.rx6.receiveIPv6)
	}
	b.socks.Store(s)
	return fns, port, nil
}

// openPair opens the IPv4 socket, then the IPv6 one on the port the first
// got. It closes what it opened if it fails.
func (b *Bind) openPair(port uint16) (*sockets, error) {
	v4, err := b.listen("udp4", port)
	if err != nil && !errors.Is(err, unix.EAFNOSUPPORT) {
		return nil, err
	}
	if v4 != nil {
		port = v4.port
	}
	v6, err6 := b.listen("udp6", port)
	if err6 != nil && !errors.Is(err6, unix.EAFNOSUPPORT) {
		if v4 != nil {
			_ = v4.close()
		}
		return nil, err6
	}
	if v4 == nil && v6 == nil {
		return nil, fmt.Errorf("bind: open port %d: neither IPv4 nor IPv6: %w", port,
			unix.EAFNOSUPPORT)
	}
	return &sockets{v4: v4, v6: v6}, nil
}

// Close closes both sockets. ReceiveFuncs blocked in or called after Close
// return an error wrapping net.ErrClosed. Closing a closed Bind does nothing.
func (b *Bind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.socks.Swap(nil)
	if s == nil {
		return nil
	}
	var errs []error
	for _, sock := range []*socket{s.v4, s.v6} {
		if sock == nil {
			continue
		}
		if err := sock.close(); err != nil {
			errs = append(errs, fmt.Errorf("bind: close %s: %w", sock.network, err))
		}
	}
	return errors.Join(errs...)
}

// SetMark sets SO_MARK on the open sockets and on sockets opened later.
func (b *Bind) SetMark(mark uint32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mark = mark
	s := b.socks.Load()
	if s == nil {
		return nil
	}
	for _, sock := range []*socket{s.v4, s.v6} {
		if sock == nil {
			continue
		}
		var serr error
		err := sock.rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
		})
		if err == nil {
			err = serr
		}
		if err != nil {
			return fmt.Errorf("bind: set mark %d on %s: %w", mark, sock.network, err)
		}
	}
	return nil
}

// ParseEndpoint parses "ip:port" or "[ipv6%zone]:port" into an *Endpoint
// with no sticky source. A zone is an interface name or index; a name must
// name an existing interface.
func (b *Bind) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, fmt.Errorf("bind: parse endpoint: %w", err)
	}
	scope, err := zoneIndex(ap.Addr().Zone())
	if err != nil {
		return nil, fmt.Errorf("bind: parse endpoint %q: zone: %w", s, err)
	}
	return newEndpoint(ap, scope, netip.Addr{}, 0), nil
}
