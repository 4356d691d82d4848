package bind

import (
	"net/netip"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

// BenchmarkBind sends a batch of 128 datagrams of 1452 bytes from one Bind
// to another over 127.0.0.1 and receives them all, per op, for this package
// and for wireguard-go's StdNetBind.
func BenchmarkBind(b *testing.B) {
	binds := []struct {
		name string
		new  func() conn.Bind
	}{
		{"hoprd", func() conn.Bind { return New() }},
		{"hoprd-nooffload", func() conn.Bind { return &Bind{noGSO: true, noGRO: true} }},
		{"StdNetBind", conn.NewStdNetBind},
	}
	for _, bb := range binds {
		b.Run(bb.name, func(b *testing.B) {
			benchmarkBind(b, bb.new(), bb.new())
		})
	}
}

func benchmarkBind(b *testing.B, rx, tx conn.Bind) {
	fns, port, err := rx.Open(0)
	if err != nil {
		b.Fatalf("open: %v", err)
	}
	defer rx.Close()
	if _, _, err := tx.Open(0); err != nil {
		b.Fatalf("open: %v", err)
	}
	defer tx.Close()
	ep, err := tx.ParseEndpoint(netip.AddrPortFrom(loop4, port).String())
	if err != nil {
		b.Fatalf("parse: %v", err)
	}
	fn := fns[0] // IPv4
	// Like the engine's, the buffers have room to spare: StdNetBind's GSO
	// appends the datagrams of a run to the first buffer, within its cap.
	bufs := payloads(repeat(conn.IdealBatchSize, datagramSize))
	for i, p := range bufs {
		bufs[i] = append(make([]byte, 0, 1<<16), p...)
	}
	r := newRxBufs()
	// A lost datagram would block the receive for good: close instead.
	watchdog := time.AfterFunc(time.Hour, func() { _ = rx.Close() })
	defer watchdog.Stop()
	b.SetBytes(int64(len(bufs) * datagramSize))
	b.ReportAllocs()
	for b.Loop() {
		watchdog.Reset(recvTimeout)
		if err := tx.Send(bufs, ep); err != nil {
			b.Fatalf("send: %v", err)
		}
		for got := 0; got < len(bufs); {
			n, err := fn(r.bufs, r.sizes, r.eps)
			if err != nil {
				b.Fatalf("receive: %v (lost datagrams?)", err)
			}
			for i := range n {
				if r.sizes[i] != datagramSize {
					b.Fatalf("datagram of %d bytes", r.sizes[i])
				}
			}
			got += n
		}
	}
}
