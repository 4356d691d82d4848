package device

import (
	"encoding/binary"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/hoprd/hoprd/device/ratchet"
	"github.com/hoprd/hoprd/handshake"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// delayBind delays every datagram it sends by a fixed time, in order, as a
// long path would.
type delayBind struct {
	conn.Bind
	delay time.Duration
	queue chan delayed
}

type delayed struct {
	due  time.Time
	bufs [][]byte
	ep   conn.Endpoint
}

func newDelayBind(b conn.Bind, delay time.Duration) *delayBind {
	d := &delayBind{Bind: b, delay: delay, queue: make(chan delayed, 4096)}
	go func() {
		for m := range d.queue {
			time.Sleep(time.Until(m.due))
			d.Bind.Send(m.bufs, m.ep)
		}
	}()
	return d
}

// longPath is a pair of devices at a 50 ms or so hop interval whose every
// datagram takes oneWay to arrive: A initiates to B over a long path.
type longPath struct {
	tunA, tunB *tuntest.ChannelTUN
	pb         *Peer // A, as B knows it
}

// newLongPath starts the pair; wrapB, if not nil, wraps B's bind.
func newLongPath(
	t *testing.T,
	oneWay, hop time.Duration,
	wrapB func(conn.Bind) conn.Bind,
) *longPath {
	t.Helper()
	raw := bindtest.NewChannelBinds()
	lp := &longPath{tunA: tuntest.NewChannelTUN(), tunB: tuntest.NewChannelTUN()}
	keyA, keyB := mustKey(t), mustKey(t)
	var bindB conn.Bind = newDelayBind(raw[1], oneWay)
	if wrapB != nil {
		bindB = wrapB(bindB)
	}
	a, err := New(Config{PrivateKey: keyA, HopInterval: hop, TUN: lp.tunA.TUN(),
		Bind: newDelayBind(raw[0], oneWay), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	b, err := New(Config{PrivateKey: keyB, HopInterval: hop, TUN: lp.tunB.TUN(),
		Bind: bindB, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if _, err := a.AddPeer(PeerConfig{Name: "b", PublicKey: keyB.PublicKey(),
		Protocol: handshake.Hop, Endpoint: netip.MustParseAddrPort("127.0.0.1:1"),
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(addrB, 32)}}); err != nil {
		t.Fatal(err)
	}
	lp.pb, err = b.AddPeer(PeerConfig{Name: "a", PublicKey: keyA.PublicKey(),
		Protocol: handshake.Hop, Endpoint: netip.MustParseAddrPort("127.0.0.1:2"),
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(addrA, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	return lp
}

func (d *delayBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	cp := make([][]byte, len(bufs))
	for i, b := range bufs {
		cp[i] = append([]byte(nil), b...)
	}
	d.queue <- delayed{due: time.Now().Add(d.delay), bufs: cp, ep: ep}
	return nil
}

// TestLongPathShortInterval runs a 50 ms hop interval over a path with a
// 700 ms round trip, longer than the half second the receive window spans:
// the responder must line its epochs up with the initiator's, or every
// message from the initiator arrives a round trip out of step.
func TestLongPathShortInterval(t *testing.T) {
	const oneWay = 350 * time.Millisecond
	lp := newLongPath(t, oneWay, 50*time.Millisecond, nil)
	tunA, tunB, pb := lp.tunA, lp.tunB, lp.pb
	// A initiates; then packets flow from A (the initiator) to B.
	for i := range 20 {
		p := udpPacket(addrA, addrB, uint32(i), 100)
		tunA.Outbound <- p
		expectPacket(t, tunB.Inbound, p, "initiator to responder over a long path")
	}
	for i := range 10 {
		p := udpPacket(addrB, addrA, uint32(i), 100)
		tunB.Outbound <- p
		expectPacket(t, tunA.Inbound, p, "responder to initiator over a long path")
	}
	if n := pb.drops[DropEpochOutOfWindow].Load(); n != 0 {
		t.Errorf("responder dropped %d packets as out of window", n)
	}
}

// TestForgedEpochBeforeAnchor forges transport messages to the responder
// of a new session in the round trip before the initiator's first message
// arrives, with the session's index (which the handshake response shows
// anyone on the path) and epochs from 0 to the largest. None opens, so
// none may move the responder's receiving clock: the largest epoch must
// cost no derivation (it once cost 2^32 chain steps, an hour of CPU), and
// a small one must not push the window past the initiator's epochs (it
// once lost every message of the session). The initiator's messages then
// all arrive.
func TestForgedEpochBeforeAnchor(t *testing.T) {
	const oneWay = 300 * time.Millisecond
	hop := 50 * time.Millisecond
	var tapB *tapBind
	lp := newLongPath(t, oneWay, hop, func(b conn.Bind) conn.Bind {
		tapB = newTapBind(b)
		return tapB
	})
	tunA, tunB, pb := lp.tunA, lp.tunB, lp.pb

	first := udpPacket(addrA, addrB, 0, 100)
	tunA.Outbound <- first // A initiates
	var index uint32
	waitUntil(t, 5*time.Second, "B's handshake response", func() bool {
		r := tapB.sentSince(0, handshake.HopTypeResponse)
		if len(r) == 0 {
			return false
		}
		index = binary.LittleEndian.Uint32(r[0][4:8]) // B's sender index
		return true
	})
	// The response is on its way to A; A's first message is a round trip
	// (600 ms, 12 epochs) away. Forge the session's first messages now.
	forged := []uint32{math.MaxUint32, 1 << 20, 60, 50, 13, 1, 0}
	for _, epoch := range forged {
		msg := make([]byte, hopHeaderSize+tagSize)
		binary.LittleEndian.PutUint32(msg[0:4], handshake.HopTypeTransport)
		binary.LittleEndian.PutUint32(msg[4:8], index)
		binary.LittleEndian.PutUint32(msg[8:12], epoch)
		tapB.send(t, msg, epAAtB) // fails if a receive goroutine is stuck
	}
	expectPacket(t, tunB.Inbound, first, "the initiator's first packet, after forgeries")
	for i := range 20 {
		p := udpPacket(addrA, addrB, uint32(1+i), 100)
		tunA.Outbound <- p
		expectPacket(t, tunB.Inbound, p, "initiator to responder after forgeries")
	}
	_, ahead := ratchet.Window(hop)
	beyond := uint64(0) // forged epochs past the front of B's window
	for _, e := range forged {
		if e > ahead+1 {
			beyond++
		}
	}
	if n := pb.drops[DropEpochOutOfWindow].Load(); n > beyond {
		t.Errorf("responder dropped %d messages as out of window, want at most the %d "+
			"forged beyond its window", n, beyond)
	}
	if n := pb.drops[DropDecrypt].Load(); n == 0 {
		t.Error("no forged message was counted as failing to open")
	}
}
