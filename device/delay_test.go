package device

import (
	"net/netip"
	"testing"
	"time"

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
	raw := bindtest.NewChannelBinds()
	tunA, tunB := tuntest.NewChannelTUN(), tuntest.NewChannelTUN()
	keyA, keyB := mustKey(t), mustKey(t)
	hop := 50 * time.Millisecond
	a, err := New(Config{PrivateKey: keyA, HopInterval: hop, TUN: tunA.TUN(),
		Bind: newDelayBind(raw[0], oneWay), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(Config{PrivateKey: keyB, HopInterval: hop, TUN: tunB.TUN(),
		Bind: newDelayBind(raw[1], oneWay), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := a.AddPeer(PeerConfig{Name: "b", PublicKey: keyB.PublicKey(),
		Protocol: handshake.Hop, Endpoint: netip.MustParseAddrPort("127.0.0.1:1"),
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(addrB, 32)}}); err != nil {
		t.Fatal(err)
	}
	pb, err := b.AddPeer(PeerConfig{Name: "a", PublicKey: keyA.PublicKey(),
		Protocol: handshake.Hop, Endpoint: netip.MustParseAddrPort("127.0.0.1:2"),
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(addrA, 32)}})
	if err != nil {
		t.Fatal(err)
	}
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
