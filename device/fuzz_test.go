package device

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoprd/hoprd/handshake"
)

// transportMessage builds a transport message of proto with the given
// header fields and a body of n zero bytes.
func transportMessage(
	proto *handshake.Protocol,
	receiver, epoch uint32,
	counter uint64,
	n int,
) []byte {
	hs := wgHeaderSize
	if proto == handshake.Hop {
		hs = hopHeaderSize
	}
	b := make([]byte, hs+n)
	binary.LittleEndian.PutUint32(b[0:], proto.TypeTransport)
	binary.LittleEndian.PutUint32(b[4:], receiver)
	if proto == handshake.Hop {
		binary.LittleEndian.PutUint32(b[8:], epoch)
	}
	binary.LittleEndian.PutUint64(b[hs-8:], counter)
	return b
}

func TestParseTransportHeader(t *testing.T) {
	hop := transportMessage(handshake.Hop, 0x01020304, 7, 1<<40+5, tagSize)
	wg := transportMessage(handshake.WireGuard, 0xa0b0c0d0, 0, 9, tagSize+100)
	tests := []struct {
		name string
		msg  []byte
		ok   bool
		want transportHeader
	}{
		{name: "hop keepalive", msg: hop, ok: true, want: transportHeader{
			proto: handshake.Hop, receiver: 0x01020304, epoch: 7, counter: 1<<40 + 5,
			size: hopHeaderSize}},
		{name: "wireguard data", msg: wg, ok: true, want: transportHeader{
			proto: handshake.WireGuard, receiver: 0xa0b0c0d0, counter: 9,
			size: wgHeaderSize}},
		{name: "hop one byte short", msg: hop[:hopHeaderSize+tagSize-1]},
		{name: "wireguard one byte short", msg: wg[:wgHeaderSize+tagSize-1]},
		{name: "hop header of wireguard length",
			msg: hop[:wgHeaderSize+tagSize]},
		{name: "empty", msg: nil},
		{name: "type only", msg: hop[:4]},
		{name: "three bytes", msg: hop[:3]},
		{name: "handshake initiation type",
			msg: modified(hop, func(m []byte) []byte { m[0] = 17; return m })},
		{name: "reserved byte set",
			msg: modified(hop, func(m []byte) []byte { m[3] = 1; return m })},
		{name: "unknown type",
			msg: modified(hop, func(m []byte) []byte { m[0] = 5; return m })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseTransportHeader(tt.msg)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("parseTransportHeader = %+v, %t; want %+v, %t", got, ok, tt.want,
					tt.ok)
			}
		})
	}
}

func TestParseTransportHeaderAllocs(t *testing.T) {
	msg := transportMessage(handshake.Hop, 1, 2, 3, 1400)
	var sink uint64
	n := testing.AllocsPerRun(100, func() {
		h, _ := parseTransportHeader(msg)
		sink += h.counter
	})
	if n != 0 {
		t.Fatalf("parseTransportHeader allocates %v times per call, want 0", n)
	}
	_ = sink
}

func BenchmarkParseTransportHeader(b *testing.B) {
	msg := transportMessage(handshake.Hop, 1, 2, 3, 1400)
	var sink uint64
	for b.Loop() {
		h, _ := parseTransportHeader(msg)
		sink += h.counter
	}
	_ = sink
}

// FuzzTransportHeader checks parseTransportHeader against the layout in
// docs/protocol.md: it accepts exactly the transport messages that hold a
// header and a tag, and its fields re-encode to the bytes they came from.
func FuzzTransportHeader(f *testing.F) {
	f.Add(transportMessage(handshake.Hop, 1, 2, 3, tagSize))
	f.Add(transportMessage(handshake.WireGuard, 1, 0, 3, tagSize+1))
	f.Add(transportMessage(handshake.Hop, 1, 2, 3, tagSize-1))
	f.Add(transportMessage(handshake.WireGuard, 1, 0, 3, tagSize-1))
	f.Add([]byte{20, 0, 0})
	f.Add(make([]byte, handshake.MessageInitiationSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := parseTransportHeader(b)
		size := 0
		if len(b) >= 4 {
			switch binary.LittleEndian.Uint32(b) {
			case handshake.HopTypeTransport:
				size = hopHeaderSize
			case handshake.WireGuardTypeTransport:
				size = wgHeaderSize
			}
		}
		if size == 0 || len(b) < size+tagSize {
			if ok || h != (transportHeader{}) {
				t.Fatalf("accepted %d bytes as %+v", len(b), h)
			}
			return
		}
		if !ok || h.size != size || h.proto.TypeTransport != binary.LittleEndian.Uint32(b) {
			t.Fatalf("refused or misread a %d-byte transport message: %+v, %t", len(b), h, ok)
		}
		re := transportMessage(h.proto, h.receiver, h.epoch, h.counter, 0)
		if !bytes.Equal(re, b[:size]) {
			t.Fatalf("header %x decodes to %+v, which encodes to %x", b[:size], h, re)
		}
	})
}

// receiveHarness is a live device whose receive path takes fuzz input:
// B of a tap pair, after real handshakes and traffic with A, which is then
// closed so that nothing but the fuzz input reaches B. Every datagram
// must then end in exactly one of B's drop counters.
type receiveHarness struct {
	tp        *tapPair
	seeds     [][]byte     // the real messages A and B exchanged, and a cookie reply
	counted   uint64       // B's drops so far
	delivered atomic.Int64 // packets B wrote to its TUN once fuzzing began
}

func newReceiveHarness(tb testing.TB) *receiveHarness {
	tb.Helper()
	tp := newTapPair(tb, handshake.Hop, time.Second, Timers{}, slog.New(slog.DiscardHandler))
	h := &receiveHarness{tp: tp}
	tp.sendAToB(tb, 0) // the first handshake
	tp.sendAToB(tb, 1)
	pkt := udpPacket(addrB, addrA, 2, 300)
	tp.tunB.Outbound <- pkt
	expectPacket(tb, tp.tunA.Inbound, pkt, "B to A")

	// A cookie reply from A, bound to B's response. The second handshake
	// makes it stale: B's next response carries another mac1.
	resp := tp.tapB.sentSince(0, handshake.HopTypeResponse)
	if len(resp) != 1 {
		tb.Fatalf("captured %d responses, want 1", len(resp))
	}
	cookie := make([]byte, handshake.MessageCookieReplySize)
	if _, err := tp.a.cookies.CreateReply(cookie, resp[0], epBAtA.DstToBytes()); err != nil {
		tb.Fatal(err)
	}
	first, _, _ := peerSessions(tp.pb)
	time.Sleep(HandshakeInitRate)
	tp.a.initiateHandshake(tp.pa, true)
	waitUntil(tb, 5*time.Second, "the second handshake", func() bool {
		cur, _, _ := peerSessions(tp.pb)
		return cur != first
	})
	tp.sendAToB(tb, 3)

	tp.a.Close()
	h.seeds = append(tp.tapA.sentSince(0, handshake.HopTypeInitiation),
		tp.tapB.sentSince(0, handshake.HopTypeResponse)...)
	h.seeds = append(h.seeds, tp.tapA.sentSince(0, handshake.HopTypeTransport)...)
	h.seeds = append(h.seeds, tp.tapB.sentSince(0, handshake.HopTypeTransport)...)
	h.seeds = append(h.seeds, cookie)
	h.counted = allDrops(tp.b)
	go func() {
		for range tp.tunB.Inbound {
			h.delivered.Add(1)
		}
	}()
	return h
}

// check hands msg to B and waits until B has counted it as a drop.
func (h *receiveHarness) check(t *testing.T, msg []byte) {
	msg = msg[:min(len(msg), maxMessageSize)] // what a UDP socket can deliver
	want := h.counted + 1
	h.tp.tapB.send(t, msg, epAAtB)
	deadline := time.Now().Add(2 * time.Second)
	for spin := 0; ; spin++ {
		got := allDrops(h.tp.b)
		if got >= want {
			h.counted = got
			if got > want {
				t.Fatalf("a %d-byte datagram was counted %d times: %+v", len(msg),
					got-want+1, h.tp.b.Status())
			}
			break
		}
		if time.Now().After(deadline) {
			h.counted = got
			t.Fatalf("a %d-byte datagram (%x...) was counted in no drop counter: %+v",
				len(msg), msg[:min(len(msg), 24)], h.tp.b.Status())
		}
		if spin < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(20 * time.Microsecond)
		}
	}
	if n := h.delivered.Load(); n != 0 {
		t.Fatalf("%d packets reached the TUN from fuzz input", n)
	}
}

// mutations returns truncations and bit flips of a real message, the
// shapes of damage a receiver must expect.
func mutations(m []byte) [][]byte {
	out := [][]byte{
		m, m[:len(m)-1], m[:len(m)/2], m[:min(len(m), 8)], m[:min(len(m), 4)],
		append(bytes.Clone(m), 0),
	}
	for _, off := range []int{0, 1, 3, 4, 8, 12, 19, 20, 40, len(m) - 1} {
		if off < len(m) {
			out = append(out, modified(m, func(b []byte) []byte { b[off] ^= 0x80; return b }))
		}
	}
	return out
}

// FuzzReceive feeds arbitrary datagrams into a live device's receive path.
// It must not panic, and each datagram must land in exactly one drop
// counter and never on the TUN. The seeds are real messages of both
// directions (initiations, responses, transport data, keepalives, a
// cookie reply), all stale by the time they arrive, and damaged copies.
func FuzzReceive(f *testing.F) {
	h := newReceiveHarness(f)
	for _, s := range h.seeds {
		for _, m := range mutations(s) {
			f.Add(m)
		}
	}
	f.Add([]byte{})
	f.Fuzz(h.check)
}
