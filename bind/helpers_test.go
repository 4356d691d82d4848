package bind

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

// datagramSize is a full WireGuard data message: a 1420-byte tunnel MTU plus
// 32 bytes of header and tag.
const datagramSize = 1420 + 32

// recvTimeout bounds every wait for datagrams over loopback.
const recvTimeout = 5 * time.Second

var (
	loop4 = netip.MustParseAddr("127.0.0.1")
	loop6 = netip.MustParseAddr("::1")
)

// families are the loopback addresses the tests run over.
var families = []struct {
	name string
	addr netip.Addr
}{
	{"v4", loop4},
	{"v6", loop6},
}

// openBind opens b on port 0 and closes it when the test ends. It returns
// the receive functions by family ("v4", "v6") and the port.
func openBind(t testing.TB, b *Bind) (map[string]conn.ReceiveFunc, uint16) {
	t.Helper()
	fns, port, err := b.Open(0)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	byName := make(map[string]conn.ReceiveFunc)
	for _, fn := range fns {
		byName[fn.PrettyName()] = fn
	}
	return byName, port
}

// endpoint parses addr:port with b.
func endpoint(t testing.TB, b conn.Bind, addr netip.Addr, port uint16) conn.Endpoint {
	t.Helper()
	ep, err := b.ParseEndpoint(netip.AddrPortFrom(addr, port).String())
	if err != nil {
		t.Fatalf("parse endpoint: %v", err)
	}
	return ep
}

// payload returns datagram i of size bytes: its index, then a pattern.
func payload(i, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte(i*7 + j)
	}
	if size >= 4 {
		binary.BigEndian.PutUint32(b, uint32(i))
	}
	return b
}

// payloads returns one datagram per size.
func payloads(sizes []int) [][]byte {
	bufs := make([][]byte, len(sizes))
	for i, n := range sizes {
		bufs[i] = payload(i, n)
	}
	return bufs
}

// repeat returns n copies of size.
func repeat(n, size int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = size
	}
	return s
}

// datagram is one received datagram.
type datagram struct {
	data []byte
	ep   conn.Endpoint
}

// receiver buffers for one ReceiveFunc call, as the engine passes them.
type rxBufs struct {
	bufs  [][]byte
	sizes []int
	eps   []conn.Endpoint
}

func newRxBufs() *rxBufs {
	r := &rxBufs{
		bufs:  make([][]byte, conn.IdealBatchSize),
		sizes: make([]int, conn.IdealBatchSize),
		eps:   make([]conn.Endpoint, conn.IdealBatchSize),
	}
	for i := range r.bufs {
		r.bufs[i] = make([]byte, 1<<16)
	}
	return r
}

// receiveN calls fn until n datagrams came, and returns them. If they do
// not come in time, it closes b, which ends the wait, and fails.
func receiveN(t testing.TB, b conn.Bind, fn conn.ReceiveFunc, n int) []datagram {
	t.Helper()
	timer := time.AfterFunc(recvTimeout, func() { _ = b.Close() })
	defer timer.Stop()
	r := newRxBufs()
	var out []datagram
	for len(out) < n {
		k, err := fn(r.bufs, r.sizes, r.eps)
		if err != nil {
			t.Fatalf("receive: %v (after %d of %d datagrams)", err, len(out), n)
		}
		for i := range k {
			out = append(out, datagram{bytes.Clone(r.bufs[i][:r.sizes[i]]), r.eps[i]})
		}
	}
	return out
}

// checkDatagrams fails unless got holds want, in order.
func checkDatagrams(t *testing.T, got []datagram, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d datagrams, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].data, want[i]) {
			t.Fatalf("datagram %d: got %d bytes (index %d), want %d bytes", i,
				len(got[i].data), index(got[i].data), len(want[i]))
		}
	}
}

// index reads the index payload wrote into a datagram, or -1.
func index(b []byte) int {
	if len(b) < 4 {
		return -1
	}
	return int(binary.BigEndian.Uint32(b))
}
