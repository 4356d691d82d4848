package device

// Pins: the per-packet work of the data path allocates nothing. Most tests
// run one stage's own function on a batch of packets with
// testing.AllocsPerRun; the last two count the allocations of the whole
// path, every goroutine of both engines at work, with runtime.MemStats. The
// fakes of bench_test.go allocate nothing themselves, so any allocation is
// the engine's. Performance itself is never pinned here: timings belong to
// the benchmarks.

import (
	"encoding/binary"
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/hoprd/hoprd/handshake"
)

// raceEnabled reports whether the test binary was built with -race, under
// which sync.Pool drops a share of what it is given on purpose, so that
// anything drawing on a pool allocates now and then.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// allocRuns is how many times each pin runs its function per attempt.
const allocRuns = 200

// allocAttempts is how many times a pin measures before it fails.
const allocAttempts = 3

// pinZero fails t unless f allocates nothing, on average over allocRuns,
// in at least one of allocAttempts measurements.
//
// testing.AllocsPerRun counts the allocations of the whole process, so an
// allocation by any other goroutine that runs meanwhile (a runtime or
// testing goroutine woken on a loaded machine, as one CI run saw) is
// counted as f's. Those come and go; an allocation of f's own recurs on
// every call and so in every attempt, which is what the pin fails on.
func pinZero(t *testing.T, what string, f func()) {
	t.Helper()
	var n float64
	for range allocAttempts {
		if n = testing.AllocsPerRun(allocRuns, f); n == 0 {
			return
		}
	}
	t.Errorf("%s: %.2f allocations per batch of %d packets in each of %d attempts, want 0",
		what, n, benchBatch, allocAttempts)
}

// pathAllocs returns how many allocations measure makes, with every
// goroutine of the process counted, after warm has filled the pools.
//
// The collector is off while it counts. A collection empties sync.Pool
// (over two cycles), and the buffers the pool then makes anew are the
// pool's refill, not allocations of the path: on a loaded machine a
// collection that the warm-up's own allocations started would otherwise
// fall inside the count at random. warm runs a second time with the
// collector off, to refill what a collection during the first took.
func pathAllocs(warm, measure func()) float64 {
	warm()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	warm()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	measure()
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs - before.Mallocs)
}

// TestRouteAllocs pins stage 1's routing: a longest-prefix match per
// packet and grouping by peer, for one peer and for packets spread over
// many peers of a 1,000-peer table.
func TestRouteAllocs(t *testing.T) {
	cases := []struct {
		name   string
		peers  int
		spread bool
	}{
		{"one-peer", 1, false},
		{"spread", 1000, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := newRouteCase(t, tc.peers, tc.spread)
			work := make([]*packetBuf, benchBatch)
			batch := &outBatch{}
			rc.run(batch, work) // the batch keeps its groups, as a pool would
			want := 1
			if tc.spread {
				want = benchBatch
			}
			if len(batch.groups) != want {
				t.Fatalf("%d groups, want %d", len(batch.groups), want)
			}
			pinZero(t, "route", func() { rc.run(batch, work) })
		})
	}
}

// TestPrepareAllocs pins the rest of stage 1: binding a group to the
// peer's session, its counters and its epoch key.
func TestPrepareAllocs(t *testing.T) {
	mp := newMemPair(t, handshake.Hop, time.Second, 100)
	g := newSealGroup(t, mp.pa)
	pinZero(t, "prepare", func() {
		if !mp.pa.prepare(g, time.Now()) {
			t.Fatal("group was staged")
		}
		g.key.Release()
		g.key = nil
	})
}

// TestSealAllocs pins stage 2 of the send path, for both header formats.
func TestSealAllocs(t *testing.T) {
	for _, proto := range []*handshake.Protocol{handshake.Hop, handshake.WireGuard} {
		t.Run(proto.Name, func(t *testing.T) {
			mp := newMemPair(t, proto, time.Second, 100)
			s := currentSession(t, mp.pa)
			g := newSealGroup(t, mp.pa)
			var nonce [12]byte
			pinZero(t, "seal", func() {
				rebind(mp.pa, g, s, time.Now())
				mp.a.seal(g, &nonce)
			})
			if len(g.msgs) != benchBatch {
				t.Fatalf("%d sealed messages, want %d", len(g.msgs), benchBatch)
			}
		})
	}
}

// TestTransmitAllocs pins stage 3 of the send path: handing a sealed group
// to the bind and accounting for it.
func TestTransmitAllocs(t *testing.T) {
	mp := newMemPair(t, handshake.Hop, time.Second, 100)
	g := newSealGroup(t, mp.pa)
	rebind(mp.pa, g, currentSession(t, mp.pa), time.Now())
	var nonce [12]byte
	mp.a.seal(g, &nonce)
	// Keep B out of it: it would only drop the copies as replays.
	bind := mp.a.bind.(*memBind)
	bind.discard.Store(true)
	sent := bind.sent.Load()
	pinZero(t, "transmit", func() { mp.a.transmit(g) })
	if got, want := bind.sent.Load()-sent, uint64(allocRuns+1)*benchBatch; got != want {
		t.Errorf("%d messages sent, want %d", got, want)
	}
}

// TestSortMessageAllocs pins stage 1 of the receive path: checking a
// transport message's header, finding its session by index and adding it
// to the group of its epoch.
func TestSortMessageAllocs(t *testing.T) {
	mp := newMemPair(t, handshake.Hop, time.Second, 100)
	oc := newOpenCase(t, mp)
	oc.load(t)
	ep := mp.b.bind.(*memBind).remote
	batch := &inBatch{groups: []*inGroup{oc.in}} // as sortMessage leaves it
	bufs := oc.in.bufs
	now := time.Now()
	pinZero(t, "sort", func() {
		oc.in.bufs, oc.in.sizes, oc.in.eps = oc.in.bufs[:0], oc.in.sizes[:0], oc.in.eps[:0]
		for i, b := range bufs {
			if !mp.b.sortMessage(&batch, b, len(oc.sealed[i]), ep, now) {
				t.Fatal("message not kept")
			}
		}
	})
	if len(batch.groups) != 1 || len(oc.in.bufs) != benchBatch {
		t.Fatalf("%d groups of %d messages, want 1 of %d",
			len(batch.groups), len(oc.in.bufs), benchBatch)
	}
	oc.in.key.Release()
}

// TestOpenAllocs pins stage 2 of the receive path.
func TestOpenAllocs(t *testing.T) {
	for _, proto := range []*handshake.Protocol{handshake.Hop, handshake.WireGuard} {
		t.Run(proto.Name, func(t *testing.T) {
			mp := newMemPair(t, proto, time.Second, 100)
			oc := newOpenCase(t, mp)
			var nonce [12]byte
			pinZero(t, "open", func() {
				oc.load(t)
				open(oc.in, &nonce)
			})
			for i, n := range oc.in.sizes {
				if n != paddedLen(benchPacket, mp.b.mtu) {
					t.Fatalf("message %d opened to %d bytes", i, n)
				}
			}
		})
	}
}

// TestDeliverAllocs pins stage 3 of the receive path: the replay window,
// the check that each inner source belongs to the sender, the peer's
// endpoint, timers and counters, and the TUN write.
func TestDeliverAllocs(t *testing.T) {
	mp := newMemPair(t, handshake.Hop, time.Second, 100)
	oc := newOpenCase(t, mp)
	oc.load(t)
	var nonce [12]byte
	open(oc.in, &nonce)
	for i := range oc.in.eps {
		oc.in.eps[i] = mp.b.bind.(*memBind).remote
	}
	sizes := append([]int(nil), oc.in.sizes...)
	hs := oc.recv.headerSize()
	counter := uint64(1 << 20) // above every counter the pair used so far
	views := make([][]byte, 0, batchSize)
	written := mp.tunB.written.Load()
	pinZero(t, "deliver", func() {
		for i, b := range oc.in.bufs {
			binary.LittleEndian.PutUint64(b[hs-8:hs], counter)
			counter++
			oc.in.sizes[i] = sizes[i]
		}
		views = mp.b.deliver(oc.in, views[:0])
	})
	if got, want := mp.tunB.written.Load()-written, uint64(allocRuns+1)*benchBatch; got != want {
		t.Errorf("%d packets written to the TUN, want %d; drops %d", got, want, mp.drops())
	}
}

// TestPipelineAllocs pins the whole path, A's TUN to B's TUN, with every
// goroutine of both engines at work and every pool in use, once through
// the crypto workers and once on the reading goroutines. Pools may refill
// after a garbage collection, so it allows a little slack.
func TestPipelineAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	const (
		batches = 500
		maxPer  = 0.01 // allocations per packet
	)
	for _, m := range []struct {
		name   string
		inline int
	}{{"workers", 1}, {"inline", math.MaxInt}} {
		t.Run(m.name, func(t *testing.T) {
			mp := newMemPairInline(t, handshake.Hop, time.Second, benchPacket, m.inline)
			run := func(n int) {
				if !mp.push(n*benchBatch, 30*time.Second) {
					t.Fatalf("packets lost; drops %d", mp.drops())
				}
			}
			per := pathAllocs(func() { run(batches / 2) }, func() { run(batches) }) /
				(batches * benchBatch)
			t.Logf("%.4f allocations per packet over %d packets", per, batches*benchBatch)
			if per > maxPer {
				t.Errorf("%.4f allocations per packet, want at most %.2f", per, maxPer)
			}
		})
	}
}

// TestSmallPacketAllocs pins the path of a lone packet, A's TUN to B's TUN
// with nothing else in flight, which skips the queues (sendInline,
// deliverInline), as pings and ACKs do.
func TestSmallPacketAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	const (
		packets = 2000
		maxPer  = 0.01 // allocations per packet
	)
	mp := newMemPair(t, handshake.Hop, time.Second, 100)
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	run := func(n int) {
		base := mp.tunB.written.Load()
		for i := range n {
			mp.tunA.reads <- 1
			if !mp.tunB.waitWrittenUntil(base+uint64(i)+1, deadline.C) {
				t.Fatalf("packet %d lost; drops %d", i, mp.drops())
			}
		}
	}
	per := pathAllocs(func() { run(packets / 10) }, func() { run(packets) }) / packets
	t.Logf("%.4f allocations per packet over %d packets", per, packets)
	if per > maxPer {
		t.Errorf("%.4f allocations per packet, want at most %.2f", per, maxPer)
	}
}
