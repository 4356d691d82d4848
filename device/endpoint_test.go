package device

// Tests of how a peer's endpoint is learned and followed, on two devices
// joined by bindtest channels, where B often has no endpoint configured for
// A, as a hub that waits to be called has none:
//
//	tunA <-> A --(dropBind / roamBind)--> B <-> tunB

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hoprd/hoprd/handshake"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// dropBind loses the next drop messages of type typ it is given to send.
type dropBind struct {
	conn.Bind
	typ     uint32
	drop    atomic.Int32 // messages still to lose
	dropped atomic.Int32 // messages lost so far
}

func (b *dropBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	var keep [][]byte
	for _, m := range bufs {
		if len(m) >= 4 && binary.LittleEndian.Uint32(m) == b.typ && b.drop.Add(-1) >= 0 {
			b.dropped.Add(1)
			continue
		}
		keep = append(keep, m)
	}
	if len(keep) == 0 {
		return nil
	}
	return b.Bind.Send(keep, ep)
}

// roamBind is B's bind once A has moved: once from is set, every datagram
// B receives seems to come from it, a send to it reaches A, and a send to
// A's old address goes nowhere.
type roamBind struct {
	conn.Bind
	from atomic.Pointer[memEndpoint]
	toA  conn.Endpoint // where the channel to A is
}

func (b *roamBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, actual, err := b.Bind.Open(port)
	for i, fn := range fns {
		fns[i] = func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
			n, err := fn(bufs, sizes, eps)
			if f := b.from.Load(); f != nil {
				for j := range n {
					eps[j] = f
				}
			}
			return n, err
		}
	}
	return fns, actual, err
}

func (b *roamBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	if _, ok := ep.(*memEndpoint); ok {
		ep = b.toA
	} else if b.from.Load() != nil {
		return nil // A's old address: nobody there any more
	}
	return b.Bind.Send(bufs, ep)
}

// newHubPair starts A, which knows B's endpoint, and B, which knows none
// for A, on the given binds.
func newHubPair(tb testing.TB, bindA, bindB conn.Bind) *testPair {
	tb.Helper()
	tp := &testPair{tunA: tuntest.NewChannelTUN(), tunB: tuntest.NewChannelTUN()}
	keyA, keyB := mustKey(tb), mustKey(tb)
	var err error
	tp.a, err = New(Config{PrivateKey: keyA, TUN: tp.tunA.TUN(), Bind: bindA,
		Logger: testLogger(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(tp.a.Close)
	tp.b, err = New(Config{PrivateKey: keyB, TUN: tp.tunB.TUN(), Bind: bindB,
		Logger: testLogger(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(tp.b.Close)
	tp.pa, err = tp.a.AddPeer(PeerConfig{Name: "b", PublicKey: keyB.PublicKey(),
		Endpoint:   netip.MustParseAddrPort("127.0.0.1:1"),
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(addrB, 32)}})
	if err != nil {
		tb.Fatal(err)
	}
	tp.pb, err = tp.b.AddPeer(PeerConfig{Name: "a", PublicKey: keyA.PublicKey(),
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(addrA, 32)}})
	if err != nil {
		tb.Fatal(err)
	}
	return tp
}

// send sends one packet from one side's TUN and expects it at the other's.
func send(tb testing.TB, from, to *tuntest.ChannelTUN, src, dst netip.Addr, seq uint32) {
	tb.Helper()
	pkt := udpPacket(src, dst, seq, 100)
	from.Outbound <- pkt
	expectPacket(tb, to.Inbound, pkt, src.String()+" to "+dst.String())
}

// TestResponderWithoutEndpointInitiates: B has no endpoint for A; A
// initiates, and its first message on the session, which would confirm it
// and give B the endpoint, is lost. B must still reach A when it has data:
// the initiation gave it an endpoint to initiate to, as there was none.
func TestResponderWithoutEndpointInitiates(t *testing.T) {
	binds := bindtest.NewChannelBinds()
	da := &dropBind{Bind: binds[0], typ: handshake.Hop.TypeTransport}
	da.drop.Store(1)
	tp := newHubPair(t, da, binds[1])
	tp.a.initiateHandshake(tp.pa, true)
	waitUntil(t, 5*time.Second, "A's session and its lost keepalive", func() bool {
		cur, _, _ := peerSessions(tp.pa)
		return cur != nil && da.dropped.Load() == 1
	})
	send(t, tp.tunB, tp.tunA, addrB, addrA, 1)
}

// TestStagedPacketsReachLearnedEndpoint: a packet B holds for A, which has
// no endpoint, leaves when A's first message confirms the session, and
// goes to where that message came from. Confirming flushes the packet, so
// the endpoint must be in place before: many rounds, as it was a race.
func TestStagedPacketsReachLearnedEndpoint(t *testing.T) {
	const rounds = 50
	for i := range rounds {
		binds := bindtest.NewChannelBinds()
		tp := newHubPair(t, binds[0], binds[1])
		tp.tunB.Outbound <- udpPacket(addrB, addrA, uint32(i), 100)
		waitUntil(t, 5*time.Second, "the packet staged at B", func() bool {
			tp.pb.mu.RLock()
			defer tp.pb.mu.RUnlock()
			return len(tp.pb.staged) == 1
		})
		send(t, tp.tunA, tp.tunB, addrA, addrB, 1)
		select {
		case <-tp.tunA.Inbound:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the staged packet was lost; B's drops %v",
				i, tp.pb.drops.snapshot())
		}
		tp.a.Close()
		tp.b.Close()
	}
}

// TestRoamFollowed: after A moves to another address, B follows it, on
// data and on a new handshake from there, whether or not B was given an
// endpoint for A.
func TestRoamFollowed(t *testing.T) {
	for _, configured := range []bool{true, false} {
		binds := bindtest.NewChannelBinds()
		rb := &roamBind{Bind: binds[1], toA: bindtest.ChannelEndpoint(4)}
		tp := newHubPair(t, binds[0], rb)
		if configured {
			if err := tp.pb.SetEndpoint(netip.MustParseAddrPort("127.0.0.1:4")); err != nil {
				t.Fatal(err)
			}
		}
		send(t, tp.tunA, tp.tunB, addrA, addrB, 1)
		send(t, tp.tunB, tp.tunA, addrB, addrA, 2)
		rb.from.Store(newMemEndpoint("198.51.100.7:40000"))
		send(t, tp.tunA, tp.tunB, addrA, addrB, 3)
		send(t, tp.tunB, tp.tunA, addrB, addrA, 4)

		time.Sleep(HandshakeInitRate)
		last := tp.pb.lastHandshake.Load()
		tp.a.initiateHandshake(tp.pa, true)
		waitUntil(t, 5*time.Second, "the handshake from the new address", func() bool {
			return tp.pb.lastHandshake.Load() != last
		})
		send(t, tp.tunB, tp.tunA, addrB, addrA, 5)
		send(t, tp.tunA, tp.tunB, addrA, addrB, 6)
	}
}
