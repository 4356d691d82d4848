package bind

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
)

// Datagrams sent from one Bind to another arrive intact, in order, with the
// sender's address as their endpoint.
func TestRoundTrip(t *testing.T) {
	for _, fam := range families {
		for _, n := range []int{1, 2, conn.IdealBatchSize} {
			t.Run(fmt.Sprintf("%s/%d", fam.name, n), func(t *testing.T) {
				rx, tx := New(), New()
				fns, rxPort := openBind(t, rx)
				_, txPort := openBind(t, tx)
				want := payloads(repeat(n, datagramSize))
				if err := tx.Send(want, endpoint(t, tx, fam.addr, rxPort)); err != nil {
					t.Fatalf("send: %v", err)
				}
				got := receiveN(t, rx, fns[fam.name], n)
				checkDatagrams(t, got, want)
				from := netip.AddrPortFrom(fam.addr, txPort).String()
				for i, d := range got {
					if s := d.ep.DstToString(); s != from {
						t.Fatalf("datagram %d from %s, want %s", i, s, from)
					}
				}
			})
		}
	}
}

// offloadCases are the size patterns the offload tests send.
var offloadCases = []struct {
	name  string
	sizes []int
}{
	{"equal+tail", append(repeat(conn.IdealBatchSize, datagramSize), 700)},
	{"mixed", mixedSizes()},
}

// mixedSizes covers how sends are cut into GSO runs: runs longer than 64
// segments, runs that reach the payload limit, a shorter buffer ending a run,
// a longer one after it, datagrams of 1 byte and of the IPv4 maximum.
func mixedSizes() []int {
	var s []int
	s = append(s, 100)
	s = append(s, repeat(3, datagramSize)...)
	s = append(s, 100, 1452, 1)
	s = append(s, repeat(70, 1000)...) // more than 64 segments
	s = append(s, repeat(40, 1700)...) // more than 65507 bytes
	s = append(s, 1699, 1700, maxPayload4, 2)
	s = append(s, repeat(5, 3000)...)
	s = append(s, 2999, 2999, 60)
	return s
}

// Datagrams arrive separately and in order whether the sender uses GSO or
// not and the receiver GRO or not.
func TestOffload(t *testing.T) {
	for _, fam := range families {
		for _, gso := range []bool{true, false} {
			for _, gro := range []bool{true, false} {
				for _, tc := range offloadCases {
					name := fmt.Sprintf("%s/gso=%v/gro=%v/%s", fam.name, gso, gro, tc.name)
					t.Run(name, func(t *testing.T) {
						testOffload(t, fam.addr, gso, gro, tc.sizes)
					})
				}
			}
		}
	}
}

func testOffload(t *testing.T, addr netip.Addr, gso, gro bool, sizes []int) {
	rx, tx := &Bind{noGRO: !gro}, &Bind{noGSO: !gso}
	fns, rxPort := openBind(t, rx)
	openBind(t, tx)
	socks, txSocks := rx.socks.Load(), tx.socks.Load()
	sock, txSock, r := socks.v4, txSocks.v4, socks.rx4
	fn := fns["v4"]
	if addr.Is6() {
		sock, txSock, r = socks.v6, txSocks.v6, socks.rx6
		fn = fns["v6"]
	}
	if sock.gro != gro || txSock.gso.Load() != gso {
		t.Fatalf("kernel lacks UDP_GRO or UDP_SEGMENT: gro %v, gso %v",
			sock.gro, txSock.gso.Load())
	}
	want := payloads(sizes)
	if err := tx.Send(want, endpoint(t, tx, addr, rxPort)); err != nil {
		t.Fatalf("send: %v", err)
	}
	checkDatagrams(t, receiveN(t, rx, fn, len(want)), want)
	t.Logf("%d messages coalesced by GRO", r.coalesced)
	if !gro && r.coalesced != 0 {
		t.Fatalf("%d messages coalesced with GRO off", r.coalesced)
	}
	// Over loopback the kernel hands a GSO send to a GRO socket whole,
	// which is what makes this test cover splitting.
	if gro && gso && r.coalesced == 0 {
		t.Fatalf("no message coalesced with GSO and GRO on")
	}
}

// With fewer buffers than a coalesced message has segments, a receive drops
// the segments that do not fit instead of overwriting anything.
func TestReceiveFewBuffers(t *testing.T) {
	rx, tx := New(), New()
	fns, rxPort := openBind(t, rx)
	openBind(t, tx)
	want := payloads(repeat(10, datagramSize))
	if err := tx.Send(want, endpoint(t, tx, loop4, rxPort)); err != nil {
		t.Fatalf("send: %v", err)
	}
	r := newRxBufs()
	timer := time.AfterFunc(recvTimeout, func() { _ = rx.Close() })
	defer timer.Stop()
	n, err := fns["v4"](r.bufs[:3], r.sizes, r.eps)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if n < 1 || n > 3 {
		t.Fatalf("received %d datagrams into 3 buffers", n)
	}
	for i := range n {
		if got := r.bufs[i][:r.sizes[i]]; string(got) != string(want[i]) {
			t.Fatalf("datagram %d: index %d, %d bytes", i, index(got), len(got))
		}
	}
}

// Open on an open Bind fails; Close twice is fine; a closed Bind reopens.
func TestOpenClose(t *testing.T) {
	b := New()
	_, port := openBind(t, b)
	if _, _, err := b.Open(0); !errors.Is(err, conn.ErrBindAlreadyOpen) {
		t.Fatalf("second open: %v, want ErrBindAlreadyOpen", err)
	}
	for i := range 2 {
		if err := b.Close(); err != nil {
			t.Fatalf("close %d: %v", i+1, err)
		}
	}
	fns, port2, err := b.Open(port)
	if err != nil {
		t.Fatalf("reopen on port %d: %v", port, err)
	}
	if port2 != port || len(fns) != 2 {
		t.Fatalf("reopen: port %d, %d functions; want port %d, 2", port2, len(fns), port)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	ep := endpoint(t, b, loop4, port)
	if err := b.Send([][]byte{{1}}, ep); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("send on closed bind: %v, want net.ErrClosed", err)
	}
}

// Open of a port in use fails, naming the operation.
func TestOpenPortInUse(t *testing.T) {
	a := New()
	_, port := openBind(t, a)
	_, _, err := New().Open(port)
	if !errors.Is(err, unix.EADDRINUSE) {
		t.Fatalf("open of used port %d: %v, want EADDRINUSE", port, err)
	}
	want := fmt.Sprintf("bind: open udp4 port %d: ", port)
	if got := err.Error(); len(got) < len(want) || got[:len(want)] != want {
		t.Fatalf("error %q does not start with %q", got, want)
	}
}

// With port 0 both sockets share the port Open returns.
func TestOpenPortZero(t *testing.T) {
	for range 5 {
		b := New()
		_, port := openBind(t, b)
		s := b.socks.Load()
		if s.v4.port != port || s.v6.port != port || port == 0 {
			t.Fatalf("open: port %d, v4 %d, v6 %d", port, s.v4.port, s.v6.port)
		}
	}
}

// Without IPv6 a Bind runs on IPv4 alone, and sends to IPv6 fail.
func TestIPv4Only(t *testing.T) {
	rx, tx := &Bind{noIPv6: true}, &Bind{noIPv6: true}
	fns, rxPort := openBind(t, rx)
	openBind(t, tx)
	if len(fns) != 1 || fns["v4"] == nil {
		t.Fatalf("open without IPv6: functions %v, want v4 alone", fns)
	}
	err := tx.Send([][]byte{{1}}, endpoint(t, tx, loop6, rxPort))
	if !errors.Is(err, unix.EAFNOSUPPORT) {
		t.Fatalf("send to IPv6: %v, want EAFNOSUPPORT", err)
	}
	want := payloads(repeat(3, 100))
	if err := tx.Send(want, endpoint(t, tx, loop4, rxPort)); err != nil {
		t.Fatalf("send: %v", err)
	}
	checkDatagrams(t, receiveN(t, rx, fns["v4"], 3), want)
}

// Close wakes blocked ReceiveFuncs with net.ErrClosed, and later calls fail
// the same way.
func TestCloseUnblocks(t *testing.T) {
	b := New()
	fns, _ := openBind(t, b)
	errs := make(chan error, len(fns))
	for _, fn := range fns {
		go func() {
			r := newRxBufs()
			_, err := fn(r.bufs, r.sizes, r.eps)
			errs <- err
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	for range fns {
		select {
		case err := <-errs:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("blocked receive returned %v, want net.ErrClosed", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("receive still blocked 2s after Close")
		}
	}
	r := newRxBufs()
	for name, fn := range fns {
		if _, err := fn(r.bufs, r.sizes, r.eps); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("%s receive after close: %v, want net.ErrClosed", name, err)
		}
	}
}

// SetMark applies to open sockets and to sockets opened later.
func TestSetMark(t *testing.T) {
	b := New()
	if err := b.SetMark(0x1234); err != nil {
		t.Fatalf("set mark on closed bind: %v", err)
	}
	openBind(t, b)
	checkMark(t, b, 0x1234)
	if err := b.SetMark(0x42); err != nil {
		t.Fatalf("set mark: %v", err)
	}
	checkMark(t, b, 0x42)
}

// checkMark fails unless both sockets of b carry mark.
func checkMark(t *testing.T, b *Bind, mark int) {
	t.Helper()
	s := b.socks.Load()
	for _, sock := range []*socket{s.v4, s.v6} {
		var got int
		var gerr error
		err := sock.rc.Control(func(fd uintptr) {
			got, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK)
		})
		if err != nil || gerr != nil {
			t.Fatalf("%s: get SO_MARK: %v %v", sock.network, err, gerr)
		}
		if got != mark {
			t.Fatalf("%s: SO_MARK %#x, want %#x", sock.network, got, mark)
		}
	}
}

// The sockets have large buffers, packet info, and report their offloads.
func TestSocketOptions(t *testing.T) {
	b := New()
	openBind(t, b)
	s := b.socks.Load()
	for _, sock := range []*socket{s.v4, s.v6} {
		var rcv, pktinfo int
		var errs [2]error
		err := sock.rc.Control(func(fd uintptr) {
			rcv, errs[0] = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
			level, opt := unix.IPPROTO_IP, unix.IP_PKTINFO
			if sock.family == unix.AF_INET6 {
				level, opt = unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO
			}
			pktinfo, errs[1] = unix.GetsockoptInt(int(fd), level, opt)
		})
		if err := errors.Join(err, errs[0], errs[1]); err != nil {
			t.Fatalf("%s: getsockopt: %v", sock.network, err)
		}
		// The kernel reports twice what was set, for its bookkeeping.
		if rcv < socketBuffer {
			t.Errorf("%s: SO_RCVBUF %d, want at least %d", sock.network, rcv, socketBuffer)
		}
		if pktinfo != 1 {
			t.Errorf("%s: packet info off", sock.network)
		}
		t.Logf("%s: SO_RCVBUF %d, UDP_GRO %v, UDP_SEGMENT %v", sock.network, rcv,
			sock.gro, sock.gso.Load())
	}
}

// ReceiveFuncs name their family for conn.ReceiveFunc.PrettyName.
func TestPrettyName(t *testing.T) {
	b := New()
	fns, _, err := b.Open(0)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer b.Close()
	if len(fns) != 2 || fns[0].PrettyName() != "v4" || fns[1].PrettyName() != "v6" {
		t.Fatalf("names %q %q, want v4 v6", fns[0].PrettyName(), fns[1].PrettyName())
	}
}

// Send accepts a *conn.StdNetEndpoint, and the two binds interoperate.
func TestStdNetInterop(t *testing.T) {
	ours, std := New(), conn.NewStdNetBind()
	ourFns, ourPort := openBind(t, ours)
	stdFns, stdPort, err := std.Open(0)
	if err != nil {
		t.Fatalf("open std: %v", err)
	}
	t.Cleanup(func() { _ = std.Close() })

	want := payloads(repeat(5, datagramSize))
	if err := ours.Send(want, endpoint(t, std, loop4, ourPort)); err != nil {
		t.Fatalf("send to a StdNetEndpoint: %v", err)
	}
	checkDatagrams(t, receiveN(t, ours, ourFns["v4"], 5), want)

	if err := std.Send(want, endpoint(t, std, loop4, ourPort)); err != nil {
		t.Fatalf("std send: %v", err)
	}
	got := receiveN(t, ours, ourFns["v4"], 5)
	checkDatagrams(t, got, want)
	if err := ours.Send(want, got[0].ep); err != nil {
		t.Fatalf("reply: %v", err)
	}
	checkDatagrams(t, receiveN(t, std, stdFns[0], 5), want)
	if s := got[0].ep.DstToString(); s != netip.AddrPortFrom(loop4, stdPort).String() {
		t.Fatalf("from %s, want port %d", s, stdPort)
	}
}

// otherEndpoint is a conn.Endpoint of some other Bind.
type otherEndpoint struct{ conn.StdNetEndpoint }

// Send refuses endpoints of other types.
func TestSendWrongEndpoint(t *testing.T) {
	b := New()
	openBind(t, b)
	err := b.Send([][]byte{{1}}, &otherEndpoint{})
	if !errors.Is(err, conn.ErrWrongEndpointType) {
		t.Fatalf("send: %v, want ErrWrongEndpointType", err)
	}
}

// Several goroutines may call Send, and the same ReceiveFunc, at once.
func TestConcurrent(t *testing.T) {
	rx, tx := New(), New()
	fns, rxPort := openBind(t, rx)
	openBind(t, tx)
	var n atomic.Int64
	done := make(chan struct{}, 2)
	for range 2 {
		go func() {
			defer func() { done <- struct{}{} }()
			r := newRxBufs()
			for {
				k, err := fns["v4"](r.bufs, r.sizes, r.eps)
				if err != nil {
					return
				}
				n.Add(int64(k))
			}
		}()
	}
	const senders, each = 4, 50
	ep := endpoint(t, tx, loop4, rxPort)
	errs := make(chan error, senders)
	for i := range senders {
		go func() {
			var err error
			bufs := payloads(repeat(i+1, 200))
			for range each {
				if e := tx.Send(bufs, ep); e != nil {
					err = e
				}
			}
			errs <- err
		}()
	}
	for range senders {
		if err := <-errs; err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	total := int64(each * (1 + 2 + 3 + 4))
	deadline := time.Now().Add(recvTimeout)
	for n.Load() < total && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	_ = rx.Close()
	<-done
	<-done
	if got := n.Load(); got != total {
		t.Fatalf("received %d datagrams, want %d", got, total)
	}
}
