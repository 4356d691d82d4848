package device

// Replay and malformed-input tests on two live devices joined in memory:
//
//	tunA <-> A (100.64.0.1) <-tapA-> bindtest channels <-tapB-> B (100.64.0.2) <-> tunB
//	                          ^                                  ^
//	                          inject                             inject
//
// Each tap records every datagram its device sends and adds a receive
// function through which a test hands the device datagrams as if they had
// come from the network. Tests capture real messages that way and send
// them again, or send them damaged, and check the drop counters that
// status shows.

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoprd/hoprd/device/ratchet"
	"github.com/hoprd/hoprd/handshake"
	"golang.org/x/crypto/blake2s"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// Where each device of a tap pair sees the other's datagrams come from:
// bindtest stamps every datagram a bind receives with its own fixed
// endpoint.
const (
	epAAtB = bindtest.ChannelEndpoint(4) // A, as B sees it
	epBAtA = bindtest.ChannelEndpoint(3) // B, as A sees it
)

// injected is one datagram handed to a device through a tap.
type injected struct {
	msg []byte
	ep  conn.Endpoint
}

// tapBind wraps a bind: it records what the device sends and adds a
// receive function that delivers injected datagrams.
type tapBind struct {
	conn.Bind
	inject    chan injected
	closed    chan struct{}
	closeOnce sync.Once

	mu   sync.Mutex // guards sent
	sent [][]byte   // copies of every datagram sent, in order
}

func newTapBind(b conn.Bind) *tapBind {
	return &tapBind{Bind: b, inject: make(chan injected), closed: make(chan struct{})}
}

// Open opens the wrapped bind and adds the injection receive function.
func (b *tapBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, actual, err := b.Bind.Open(port)
	if err != nil {
		return nil, 0, err
	}
	return append(fns, b.receiveInjected), actual, nil
}

// receiveInjected is a conn.ReceiveFunc for the injected datagrams. Like
// a UDP socket it delivers at most maxMessageSize bytes of each.
func (b *tapBind) receiveInjected(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
	select {
	case m := <-b.inject:
		sizes[0] = copy(bufs[0], m.msg)
		eps[0] = m.ep
		return 1, nil
	case <-b.closed:
		return 0, net.ErrClosed
	}
}

// Close stops the injection receive function and closes the wrapped bind.
func (b *tapBind) Close() error {
	b.closeOnce.Do(func() { close(b.closed) })
	return b.Bind.Close()
}

// Send records bufs and sends them on the wrapped bind.
func (b *tapBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	b.mu.Lock()
	for _, m := range bufs {
		b.sent = append(b.sent, bytes.Clone(m))
	}
	b.mu.Unlock()
	return b.Bind.Send(bufs, ep)
}

// mark returns the number of datagrams sent so far, for sentSince.
func (b *tapBind) mark() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.sent)
}

// sentSince returns the datagrams of message type typ sent after mark.
func (b *tapBind) sentSince(mark int, typ uint32) [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out [][]byte
	for _, m := range b.sent[mark:] {
		if len(m) >= 4 && binary.LittleEndian.Uint32(m) == typ {
			out = append(out, m)
		}
	}
	return out
}

// send hands msg to the device as a datagram from ep.
func (b *tapBind) send(tb testing.TB, msg []byte, ep conn.Endpoint) {
	tb.Helper()
	select {
	case b.inject <- injected{msg: msg, ep: ep}:
	case <-b.closed:
		tb.Fatal("inject: the device is closed")
	case <-time.After(5 * time.Second):
		tb.Fatal("inject: the device took no datagram within 5s")
	}
}

// tapPair is a testPair whose binds are tapped.
type tapPair struct {
	*testPair
	tapA, tapB *tapBind
}

// newTapPair starts two devices that know each other, like newTestPair,
// with tapped binds. logB, if not nil, is B's logger.
func newTapPair(
	tb testing.TB,
	proto *handshake.Protocol,
	hop time.Duration,
	timers Timers,
	logB *slog.Logger,
) *tapPair {
	tb.Helper()
	if logB == nil {
		logB = testLogger(tb)
	}
	binds := bindtest.NewChannelBinds()
	tp := &tapPair{
		testPair: &testPair{tunA: tuntest.NewChannelTUN(), tunB: tuntest.NewChannelTUN()},
		tapA:     newTapBind(binds[0]),
		tapB:     newTapBind(binds[1]),
	}
	keyA, keyB := mustKey(tb), mustKey(tb)
	var err error
	tp.a, err = New(Config{PrivateKey: keyA, HopInterval: hop, TUN: tp.tunA.TUN(),
		Bind: tp.tapA, Logger: testLogger(tb), Timers: timers})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(tp.a.Close)
	tp.b, err = New(Config{PrivateKey: keyB, HopInterval: hop, TUN: tp.tunB.TUN(),
		Bind: tp.tapB, Logger: logB, Timers: timers})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(tp.b.Close)
	tp.pa, err = tp.a.AddPeer(PeerConfig{Name: "b", PublicKey: keyB.PublicKey(), Protocol: proto,
		Endpoint:   netip.MustParseAddrPort("127.0.0.1:1"),
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(addrB, 32)}})
	if err != nil {
		tb.Fatal(err)
	}
	tp.pb, err = tp.b.AddPeer(PeerConfig{Name: "a", PublicKey: keyA.PublicKey(), Protocol: proto,
		Endpoint:   netip.MustParseAddrPort("127.0.0.1:2"),
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(addrA, 32)}})
	if err != nil {
		tb.Fatal(err)
	}
	return tp
}

// sendAToB sends one packet from A to B through the tunnel and returns the
// transport messages A sent meanwhile (with the handshake, if one ran).
func (tp *tapPair) sendAToB(tb testing.TB, seq uint32) [][]byte {
	tb.Helper()
	mark := tp.tapA.mark()
	pkt := udpPacket(addrA, addrB, seq, 100)
	tp.tunA.Outbound <- pkt
	expectPacket(tb, tp.tunB.Inbound, pkt, "A to B")
	return tp.tapA.sentSince(mark, tp.pa.proto.TypeTransport)
}

// dropCount returns the drops of reason that d's status shows: those of
// the peer called peer, or the device's own when peer is "".
func dropCount(d *Device, peer string, reason DropReason) uint64 {
	st := d.Status()
	if peer == "" {
		return st.Drops[reason.String()]
	}
	for _, p := range st.Peers {
		if p.Name == peer {
			return p.Drops[reason.String()]
		}
	}
	return 0
}

// allDrops returns every drop d has counted, its own and its peers'.
func allDrops(d *Device) uint64 {
	n := d.drops.total()
	for _, p := range d.Peers() {
		n += p.drops.total()
	}
	return n
}

// waitDrops waits until dropCount reaches want and fails tb if it does not
// within 5s, or goes beyond it.
func waitDrops(tb testing.TB, d *Device, peer string, reason DropReason, want uint64) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := dropCount(d, peer, reason)
		if got > want {
			tb.Fatalf("%s drops (peer %q) = %d, want %d; status: %+v", reason, peer, got,
				want, d.Status())
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s drops (peer %q) = %d after 5s, want %d; status: %+v", reason, peer,
				got, want, d.Status())
		}
		time.Sleep(time.Millisecond)
	}
}

// waitUntil polls cond until it holds, failing tb after timeout.
func waitUntil(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// expectNoPacket fails tb if a packet arrives on in within d.
func expectNoPacket(tb testing.TB, in <-chan []byte, d time.Duration, what string) {
	tb.Helper()
	select {
	case p := <-in:
		tb.Fatalf("%s: a %d-byte packet reached the TUN", what, len(p))
	case <-time.After(d):
	}
}

// peerSessions returns p's current, previous and next sessions.
func peerSessions(p *Peer) (cur, prev, next *session) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.current, p.previous, p.next
}

// TestReplayTransport replays captured transport messages: each is counted
// as a replay and none reaches the TUN a second time, whatever address it
// comes from, and the session carries on.
func TestReplayTransport(t *testing.T) {
	for _, proto := range []*handshake.Protocol{handshake.Hop, handshake.WireGuard} {
		t.Run(proto.Name, func(t *testing.T) {
			tp := newTapPair(t, proto, time.Second, Timers{}, nil)
			tp.sendAToB(t, 0) // handshake
			var captured [][]byte
			for i := range 5 {
				captured = append(captured, tp.sendAToB(t, uint32(1+i))...)
			}
			if len(captured) != 5 {
				t.Fatalf("captured %d transport messages for 5 packets, want 5", len(captured))
			}
			endpoint := tp.pb.getEndpoint().DstToString()

			for _, m := range captured {
				tp.tapB.send(t, m, epAAtB)
			}
			waitDrops(t, tp.b, "a", DropReplay, 5)
			// From another address: still a replay, and the peer does not
			// roam there.
			tp.tapB.send(t, captured[0], bindtest.ChannelEndpoint(99))
			waitDrops(t, tp.b, "a", DropReplay, 6)
			expectNoPacket(t, tp.tunB.Inbound, 50*time.Millisecond, "replayed packets")
			if got := tp.pb.getEndpoint().DstToString(); got != endpoint {
				t.Errorf("a replayed packet moved the peer's endpoint from %s to %s",
					endpoint, got)
			}
			if n := allDrops(tp.b); n != 6 {
				t.Errorf("B counted %d drops in all, want the 6 replays: %+v", n, tp.b.Status())
			}
			tp.sendAToB(t, 100)
		})
	}
}

// TestReplayAcrossHops replays a packet after the keys have hopped: while
// its epoch is inside the receive window the replay window catches it;
// once the epoch has left the window it is refused before any decryption.
func TestReplayAcrossHops(t *testing.T) {
	const hop = 400 * time.Millisecond // a window of 2 epochs: 800 ms to replay in
	behind, _ := ratchet.Window(hop)
	tp := newTapPair(t, handshake.Hop, hop, Timers{}, nil)
	tp.sendAToB(t, 0) // handshake
	msgs := tp.sendAToB(t, 1)
	if len(msgs) != 1 {
		t.Fatalf("captured %d transport messages, want 1", len(msgs))
	}
	hdr, ok := parseTransportHeader(msgs[0])
	if !ok {
		t.Fatal("captured message has no transport header")
	}
	sess, _, _ := peerSessions(tp.pb)
	if sess == nil {
		t.Fatal("B has no current session")
	}
	epochB := func() uint32 { return sess.receiver.Epoch(time.Now()) }

	waitUntil(t, 2*time.Second, "B's next epoch", func() bool { return epochB() > hdr.epoch })
	tp.tapB.send(t, msgs[0], epAAtB)
	waitDrops(t, tp.b, "a", DropReplay, 1)
	if now := epochB(); now <= hdr.epoch || now > hdr.epoch+behind {
		t.Fatalf("replayed at epoch %d, want one in (%d, %d]", now, hdr.epoch,
			hdr.epoch+behind)
	}

	waitUntil(t, 3*time.Second, "the packet's epoch leaving the window", func() bool {
		return epochB() > hdr.epoch+behind
	})
	tp.tapB.send(t, msgs[0], epAAtB)
	waitDrops(t, tp.b, "a", DropEpochOutOfWindow, 1)
	waitDrops(t, tp.b, "a", DropReplay, 1)
	expectNoPacket(t, tp.tunB.Inbound, 50*time.Millisecond, "replayed packets")
	if cur, _, _ := peerSessions(tp.pb); cur != sess {
		t.Error("B's session changed during the test")
	}
}

// TestReplayAfterRekey replays a packet of a session that a new handshake
// replaced: a replay while the old session is kept as previous, an unknown
// index once a second handshake has retired it. The initiations of both
// handshakes are replayed too, and change nothing.
func TestReplayAfterRekey(t *testing.T) {
	const rekeyAfter = 300 * time.Millisecond
	timers := Timers{RekeyAfterTime: rekeyAfter, RekeyTimeout: 100 * time.Millisecond,
		KeepaliveTimeout: 5 * time.Second, RejectAfterTime: 20 * time.Second}
	tp := newTapPair(t, handshake.Hop, time.Second, timers, nil)
	initMark := tp.tapA.mark()
	tp.sendAToB(t, 0) // handshake
	s1, _, _ := peerSessions(tp.pb)
	old := tp.sendAToB(t, 1)
	if s1 == nil || len(old) != 1 {
		t.Fatalf("B's session %p, %d captured messages, want a session and 1", s1, len(old))
	}

	// rekey makes A start a new handshake by sending once the session is
	// older than RekeyAfterTime, and waits for B to switch to the result.
	rekey := func(seq uint32, from *session) *session {
		t.Helper()
		time.Sleep(rekeyAfter + 50*time.Millisecond)
		tp.sendAToB(t, seq)
		var cur *session
		waitUntil(t, 5*time.Second, "B switching sessions", func() bool {
			var prev *session
			cur, prev, _ = peerSessions(tp.pb)
			return cur != from && prev == from
		})
		return cur
	}

	s2 := rekey(2, s1)
	tp.tapB.send(t, old[0], epAAtB)
	waitDrops(t, tp.b, "a", DropReplay, 1)

	inits := tp.tapA.sentSince(initMark, handshake.Hop.TypeInitiation)
	if len(inits) < 2 {
		t.Fatalf("captured %d initiations, want 2", len(inits))
	}
	for _, m := range inits {
		tp.tapB.send(t, m, epAAtB)
	}
	waitDrops(t, tp.b, "a", DropHandshakeReplay, uint64(len(inits)))
	if cur, prev, next := peerSessions(tp.pb); cur != s2 || prev != s1 || next != nil {
		t.Fatalf("replayed initiations changed B's sessions")
	}

	rekey(3, s2)
	tp.tapB.send(t, old[0], epAAtB)
	waitDrops(t, tp.b, "", DropUnknownIndex, 1)
	waitDrops(t, tp.b, "a", DropReplay, 1)
	expectNoPacket(t, tp.tunB.Inbound, 50*time.Millisecond, "replayed packets")
	tp.sendAToB(t, 4)
}

// TestReplayedInitiation replays the initiation of a live session: it is
// refused as a replay, nothing is sent back, and the session is not
// disturbed (no new handshake, traffic flows both ways).
func TestReplayedInitiation(t *testing.T) {
	for _, proto := range []*handshake.Protocol{handshake.Hop, handshake.WireGuard} {
		t.Run(proto.Name, func(t *testing.T) {
			tp := newTapPair(t, proto, time.Second, Timers{}, nil)
			mark := tp.tapA.mark()
			tp.sendAToB(t, 0) // handshake
			inits := tp.tapA.sentSince(mark, proto.TypeInitiation)
			if len(inits) != 1 {
				t.Fatalf("captured %d initiations, want 1", len(inits))
			}
			cur, _, _ := peerSessions(tp.pb)
			lastA, lastB := tp.pa.lastHandshake.Load(), tp.pb.lastHandshake.Load()
			sentB := tp.tapB.mark()

			// Replayed as captured, after the flood interval, and with a
			// different mac2 (which nothing checks while not under load).
			time.Sleep(HandshakeInitRate)
			tp.tapB.send(t, inits[0], epAAtB)
			waitDrops(t, tp.b, "a", DropHandshakeReplay, 1)
			mac2 := bytes.Clone(inits[0])
			mac2[len(mac2)-1] ^= 0xff
			tp.tapB.send(t, mac2, bindtest.ChannelEndpoint(99))
			waitDrops(t, tp.b, "a", DropHandshakeReplay, 2)

			if c, _, next := peerSessions(tp.pb); c != cur || next != nil {
				t.Error("the replayed initiation changed B's sessions")
			}
			if n := tp.tapB.mark() - sentB; n != 0 {
				t.Errorf("B sent %d datagrams in answer to the replays, want none", n)
			}
			tp.sendAToB(t, 1)
			pkt := udpPacket(addrB, addrA, 2, 100)
			tp.tunB.Outbound <- pkt
			expectPacket(t, tp.tunA.Inbound, pkt, "B to A after the replays")
			if tp.pa.lastHandshake.Load() != lastA || tp.pb.lastHandshake.Load() != lastB {
				t.Error("a handshake ran after the replays")
			}
			if n := allDrops(tp.b); n != 2 {
				t.Errorf("B counted %d drops, want the 2 replays: %+v", n, tp.b.Status())
			}
		})
	}
}

// countingHandler counts log records of every level.
type countingHandler struct{ n *atomic.Int64 }

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h countingHandler) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}

func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// captured are real messages of one handshake and some traffic between A
// and B, and the indices they use.
type captured struct {
	initiation []byte // A to B
	response   []byte // B to A
	transport  []byte // A to B, data
	indexB     uint32 // B's index of the session
}

// capture runs a handshake and one packet from A to B.
func (tp *tapPair) capture(tb testing.TB) captured {
	tb.Helper()
	markA, markB := tp.tapA.mark(), tp.tapB.mark()
	tp.sendAToB(tb, 0)
	data := tp.sendAToB(tb, 1)
	inits := tp.tapA.sentSince(markA, tp.pa.proto.TypeInitiation)
	resps := tp.tapB.sentSince(markB, tp.pb.proto.TypeResponse)
	if len(inits) != 1 || len(resps) != 1 || len(data) != 1 {
		tb.Fatalf("captured %d initiations, %d responses, %d transport messages; want 1 each",
			len(inits), len(resps), len(data))
	}
	return captured{
		initiation: inits[0],
		response:   resps[0],
		transport:  data[0],
		indexB:     binary.LittleEndian.Uint32(resps[0][4:8]),
	}
}

// modified returns a copy of b changed by f.
func modified(b []byte, f func(m []byte) []byte) []byte {
	return f(bytes.Clone(b))
}

// TestMalformedDropped sends malformed, truncated, oversized and
// unauthenticated datagrams to a device with a live session. Each is
// counted once, under its reason, where status shows it; none reaches the
// TUN; none is logged, even when sent many times.
func TestMalformedDropped(t *testing.T) {
	var logs atomic.Int64
	// Long epochs keep the captured message's epoch inside the window
	// throughout, so that the reasons below do not depend on timing.
	tp := newTapPair(t, handshake.Hop, 5*time.Second, Timers{},
		slog.New(countingHandler{n: &logs}))
	c := tp.capture(t)

	stranger := handshake.NewHandshake(handshake.NewIdentity(mustKey(t)), tp.b.PublicKey(),
		handshake.PresharedKey{}, handshake.Hop, nil)
	otherProto := handshake.NewHandshake(tp.a.identity, tp.b.PublicKey(),
		handshake.PresharedKey{}, handshake.WireGuard, nil)
	initiationBy := func(h *handshake.Handshake) []byte {
		m := make([]byte, handshake.MessageInitiationSize)
		if _, err := h.CreateInitiation(m, 0x1234); err != nil {
			t.Fatal(err)
		}
		return m
	}
	cookieReply := func(receiver uint32, size int) []byte {
		m := make([]byte, size)
		binary.LittleEndian.PutUint32(m, handshake.HopTypeCookieReply)
		if size >= 8 {
			binary.LittleEndian.PutUint32(m[4:], receiver)
		}
		return m
	}
	setU32 := func(off int, v uint32) func([]byte) []byte {
		return func(m []byte) []byte { binary.LittleEndian.PutUint32(m[off:], v); return m }
	}
	flip := func(off int) func([]byte) []byte {
		return func(m []byte) []byte {
			if off < 0 {
				off += len(m)
			}
			m[off] ^= 0x01
			return m
		}
	}
	hdr, _ := parseTransportHeader(c.transport)
	unseenCounter := func(m []byte) []byte {
		binary.LittleEndian.PutUint64(m[12:], hdr.counter+1000)
		return m
	}
	oversized := append(bytes.Clone(c.transport[:hopHeaderSize]),
		make([]byte, maxMessageSize-hopHeaderSize)...)

	tests := []struct {
		name   string
		to     *Device // nil: B
		msg    []byte
		peer   string // "" for the device's own counters
		reason DropReason
	}{
		{name: "empty datagram", msg: []byte{}, reason: DropShort},
		{name: "three bytes", msg: []byte{20, 0, 0}, reason: DropShort},
		{name: "unknown type", msg: modified(c.transport, setU32(0, 99)), reason: DropBadType},
		{name: "reserved byte set", msg: modified(c.transport, flip(1)), reason: DropBadType},
		{name: "transport header only", msg: c.transport[:hopHeaderSize], reason: DropShort},
		{name: "transport without a whole tag",
			msg: c.transport[:hopHeaderSize+tagSize-1], reason: DropShort},
		{name: "wireguard transport one byte short",
			msg:    modified(c.transport[:wgHeaderSize+tagSize-1], setU32(0, 4)),
			reason: DropShort},
		{name: "transport to an unknown index",
			msg:    modified(c.transport, setU32(4, ^c.indexB)),
			reason: DropUnknownIndex},
		{name: "transport relabelled as wireguard",
			msg: modified(c.transport, setU32(0, 4)), peer: "a", reason: DropProtocolMismatch},
		{name: "epoch far ahead", msg: modified(c.transport, setU32(8, 1<<31)), peer: "a",
			reason: DropEpochOutOfWindow},
		{name: "tampered ciphertext", msg: modified(c.transport, flip(-1)), peer: "a",
			reason: DropDecrypt},
		{name: "tampered counter", msg: modified(c.transport, unseenCounter), peer: "a",
			reason: DropDecrypt},
		{name: "oversized transport", msg: oversized, peer: "a", reason: DropDecrypt},
		{name: "replayed transport", msg: c.transport, peer: "a", reason: DropReplay},
		{name: "truncated initiation", msg: c.initiation[:len(c.initiation)-1],
			reason: DropBadLength},
		{name: "oversized initiation", msg: append(bytes.Clone(c.initiation), 0),
			reason: DropBadLength},
		{name: "initiation with a bad mac1", msg: modified(c.initiation, flip(120)),
			reason: DropBadMAC1},
		{name: "initiation from an unknown key", msg: initiationBy(stranger),
			reason: DropHandshakeUnknownPeer},
		{name: "initiation in the other protocol", msg: initiationBy(otherProto), peer: "a",
			reason: DropProtocolMismatch},
		{name: "replayed initiation", msg: c.initiation, peer: "a",
			reason: DropHandshakeReplay},
		{name: "response sent to its sender", msg: c.response, reason: DropBadMAC1},
		{name: "replayed response", to: tp.a, msg: c.response,
			reason: DropHandshakeRejected},
		{name: "cookie reply without a receiver", msg: cookieReply(c.indexB, 7),
			reason: DropBadLength},
		{name: "cookie reply to an unknown index", msg: cookieReply(^c.indexB, 64),
			reason: DropUnknownIndex},
		{name: "truncated cookie reply", msg: cookieReply(c.indexB, 63),
			reason: DropBadLength},
		{name: "forged cookie reply", msg: cookieReply(c.indexB, 64), peer: "a",
			reason: DropHandshakeRejected},
	}
	send := func(t *testing.T, to *Device, msg []byte) {
		t.Helper()
		if to == tp.a {
			tp.tapA.send(t, msg, epBAtA)
		} else {
			tp.tapB.send(t, msg, epAAtB)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to := tt.to
			if to == nil {
				to = tp.b
			}
			before, total := dropCount(to, tt.peer, tt.reason), allDrops(to)
			send(t, to, tt.msg)
			waitDrops(t, to, tt.peer, tt.reason, before+1)
			if n := allDrops(to); n != total+1 {
				t.Errorf("drops grew by %d, want 1: %+v", n-total, to.Status())
			}
		})
	}
	expectNoPacket(t, tp.tunB.Inbound, 50*time.Millisecond, "malformed datagrams")

	// The protocol mismatch is a problem of the peer's, noted for status
	// and logged once; the rest is counted only.
	if st := tp.b.Status(); st.Peers[0].Problem == "" {
		t.Error("status shows no problem for a peer that speaks the other protocol")
	}
	logged := logs.Load()
	if logged > 1 {
		t.Errorf("%d log lines for %d bad datagrams, want at most 1", logged, len(tests))
	}
	const repeats = 20
	for _, tt := range tests {
		to := tt.to
		if to == nil {
			to = tp.b
		}
		for range repeats {
			total := allDrops(to)
			send(t, to, tt.msg)
			waitUntil(t, 5*time.Second, tt.name+" counted", func() bool {
				return allDrops(to) > total
			})
		}
	}
	if n := logs.Load() - logged; n != 0 {
		t.Errorf("%d log lines for %d more bad datagrams, want none", n, repeats*len(tests))
	}
}

// TestBadInnerPacket seals a packet whose IPv4 length runs past the end of
// what was sent: it opens, but is dropped as a bad inner packet.
func TestBadInnerPacket(t *testing.T) {
	tp := newTapPair(t, handshake.Hop, time.Second, Timers{}, nil)
	tp.sendAToB(t, 0)
	bad := udpPacket(addrA, addrB, 1, 64)
	binary.BigEndian.PutUint16(bad[2:], 1000)
	tp.tunA.Outbound <- bad
	waitDrops(t, tp.b, "a", DropBadInnerPacket, 1)
	expectNoPacket(t, tp.tunB.Inbound, 50*time.Millisecond, "a bad inner packet")
	tp.sendAToB(t, 2)
}

// TestReplayedInitiationAfterRestart replays a captured initiation, from
// another address, to a responder that no longer knows the initiator's
// last timestamp, as after a restart (here: the peer removed and added
// again). The responder answers, as it cannot tell, but the replay must not
// move the peer's endpoint: traffic goes on to the real peer.
func TestReplayedInitiationAfterRestart(t *testing.T) {
	for _, proto := range []*handshake.Protocol{handshake.Hop, handshake.WireGuard} {
		t.Run(proto.Name, func(t *testing.T) {
			tp := newTapPair(t, proto, time.Second, Timers{}, nil)
			c := tp.capture(t)
			pubA := tp.pb.public
			if err := tp.b.RemovePeer(pubA); err != nil {
				t.Fatal(err)
			}
			var err error
			tp.pb, err = tp.b.AddPeer(PeerConfig{Name: "a", PublicKey: pubA, Protocol: proto,
				Endpoint:   netip.MustParseAddrPort("127.0.0.1:2"),
				AllowedIPs: []netip.Prefix{netip.PrefixFrom(addrA, 32)}})
			if err != nil {
				t.Fatal(err)
			}
			before := tp.pb.getEndpoint()

			mark := tp.tapB.mark()
			tp.tapB.send(t, c.initiation, bindtest.ChannelEndpoint(99))
			for deadline := time.Now().Add(5 * time.Second); ; {
				if len(tp.tapB.sentSince(mark, proto.TypeResponse)) > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("B did not answer the replayed initiation")
				}
				time.Sleep(time.Millisecond)
			}
			if ep := tp.pb.getEndpoint(); !sameEndpoint(ep, before) {
				t.Fatalf("the replay moved A's endpoint at B from %s to %s",
					before.DstToString(), ep.DstToString())
			}
			pkt := udpPacket(addrB, addrA, 7, 100)
			tp.tunB.Outbound <- pkt
			expectPacket(t, tp.tunA.Inbound, pkt, "B to A after the replay")
			tp.sendAToB(t, 8)
		})
	}
}

// elsewhere is an address neither device of a tapPair has for the other,
// from which a test sends what an attacker who has seen the traffic could.
var elsewhere = newMemEndpoint("198.51.100.9:51820")

// TestForgedEpochsRaiseNoProblem: transport messages naming a live index
// and an epoch far outside the window are dropped wherever they come from,
// but only those from the peer's address make status suspect a hop
// interval mismatch. Anyone who has seen the index can send the others.
func TestForgedEpochsRaiseNoProblem(t *testing.T) {
	tp := newTapPair(t, handshake.Hop, 50*time.Millisecond, Timers{}, nil)
	c := tp.capture(t)
	forged := bytes.Clone(c.transport)
	binary.LittleEndian.PutUint32(forged[8:], 1<<31)
	for range 3 {
		tp.tapB.send(t, forged, elsewhere)
	}
	waitDrops(t, tp.b, "a", DropEpochOutOfWindow, 3)
	time.Sleep(4 * 50 * time.Millisecond) // hop ticks, which check the drops
	if got := peerProblem(tp.b, "a"); got != "" {
		t.Fatalf("forged messages from elsewhere set the problem %q", got)
	}
	tp.tapB.send(t, forged, epAAtB)
	waitUntil(t, 5*time.Second, "the problem", func() bool {
		return strings.Contains(peerProblem(tp.b, "a"), "outside the receive window")
	})
}

// TestForgedResponseRaisesNoProblem: a response naming our initiation that
// fails to authenticate is dropped wherever it comes from, but only one
// from the address the initiation went to makes status suspect the
// preshared key. The forger here knows what anyone on the path does: the
// initiation's index, and our public key for mac1.
func TestForgedResponseRaisesNoProblem(t *testing.T) {
	tp := newTapPair(t, handshake.Hop, time.Second, Timers{}, nil)
	c := tp.capture(t)
	if err := tp.b.RemovePeer(tp.pb.public); err != nil { // B answers no more
		t.Fatal(err)
	}
	time.Sleep(HandshakeInitRate)
	tp.a.initiateHandshake(tp.pa, true)
	var index uint32
	waitUntil(t, 5*time.Second, "an initiation in flight", func() bool {
		tp.pa.hsMu.Lock()
		defer tp.pa.hsMu.Unlock()
		index = tp.pa.hsIndex
		return index != 0
	})
	forged := bytes.Clone(c.response)
	binary.LittleEndian.PutUint32(forged[8:], index)
	pubA := tp.a.public
	key := blake2s.Sum256(append([]byte(handshake.HopLabelMAC1), pubA[:]...))
	const offMAC1 = handshake.MessageResponseSize - 32
	mac, err := blake2s.New128(key[:])
	if err != nil {
		t.Fatal(err)
	}
	mac.Write(forged[:offMAC1])
	copy(forged[offMAC1:], mac.Sum(nil))

	before := tp.pa.drops[DropHandshakeRejected].Load()
	tp.tapA.send(t, forged, elsewhere)
	waitUntil(t, 5*time.Second, "the forged response counted", func() bool {
		return tp.pa.drops[DropHandshakeRejected].Load() > before
	})
	if got := peerProblem(tp.a, "b"); got != "" {
		t.Fatalf("a forged response from elsewhere set the problem %q", got)
	}
	tp.tapA.send(t, forged, epBAtA)
	waitUntil(t, 5*time.Second, "the problem", func() bool {
		return strings.Contains(peerProblem(tp.a, "b"), "preshared key")
	})
}

// TestHandshakeQueueHoldsCopies checks that a queued handshake message is a
// copy of the datagram, so the receive buffer goes back at once and a flood
// of junk initiations holds no packet buffers, and that a message of the
// wrong length for its type is counted and never queued.
func TestHandshakeQueueHoldsCopies(t *testing.T) {
	d := &Device{handshakeQueue: make(chan *hsMessage, 1)}
	buf := new(packetBuf)
	binary.LittleEndian.PutUint32(buf[:4], handshake.Hop.TypeInitiation)
	buf[100] = 0xaa
	ep := newMemEndpoint("192.0.2.9:51820")
	if d.sortMessage(nil, buf, handshake.MessageInitiationSize, ep, time.Now()) {
		t.Fatal("sortMessage kept the buffer of a handshake message")
	}
	buf[100] = 0xbb // the buffer is reused for the next datagram
	m := <-d.handshakeQueue
	if m.n != handshake.MessageInitiationSize || m.buf[100] != 0xaa || m.ep != ep {
		t.Errorf("queued message n=%d byte 100=%#x ep=%v, want the datagram as it came",
			m.n, m.buf[100], m.ep)
	}

	for _, n := range []int{handshake.MessageInitiationSize - 1,
		handshake.MessageInitiationSize + 1, 4096} {
		d.sortMessage(nil, buf, n, ep, time.Now())
	}
	if got := d.drops[DropBadLength].Load(); got != 3 {
		t.Errorf("bad_length %d, want 3", got)
	}
	if len(d.handshakeQueue) != 0 {
		t.Error("a message of the wrong length was queued")
	}

	// A full queue drops and counts; it never blocks the receiver.
	d.sortMessage(nil, buf, handshake.MessageInitiationSize, ep, time.Now())
	d.sortMessage(nil, buf, handshake.MessageInitiationSize, ep, time.Now())
	if got := d.drops[DropHandshakeQueueFull].Load(); got != 1 {
		t.Errorf("handshake_queue_full %d, want 1", got)
	}
}
