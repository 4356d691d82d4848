package allowedips

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
)

// peer stands in for the engine's peer type.
type peer struct{ id int }

// hostRoutes returns n distinct random IPv4 /32s.
func hostRoutes(rng *rand.Rand, n int) []netip.Prefix {
	seen := make(map[uint32]bool, n)
	out := make([]netip.Prefix, 0, n)
	for len(out) < n {
		a := rng.Uint32()
		if seen[a] {
			continue
		}
		seen[a] = true
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], a)
		out = append(out, netip.PrefixFrom(netip.AddrFrom4(b), 32))
	}
	return out
}

// mixedRoutes returns n random prefixes: half IPv4, half IPv6, of mixed
// lengths (host routes, /24s and /16s, /64s and /48s).
func mixedRoutes(rng *rand.Rand, n int) []netip.Prefix {
	out := make([]netip.Prefix, 0, n)
	for i := range n {
		if i%2 == 0 {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], rng.Uint32())
			out = append(out, netip.PrefixFrom(netip.AddrFrom4(b), []int{32, 24, 16}[i%3]))
			continue
		}
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], 0xfd00_0000_0000_0000|rng.Uint64()>>8)
		binary.BigEndian.PutUint64(b[8:], rng.Uint64())
		out = append(out, netip.PrefixFrom(netip.AddrFrom16(b), []int{128, 64, 48}[i%3]))
	}
	return out
}

func buildTable(ps []netip.Prefix) (*Table[*peer], []netip.Addr) {
	tb := new(Table[*peer])
	probes := make([]netip.Addr, len(ps))
	for i, p := range ps {
		tb.Insert(p, &peer{id: i})
		probes[i] = p.Masked().Addr()
	}
	return tb, probes
}

func BenchmarkLookup(b *testing.B) {
	cases := []struct {
		name   string
		routes func(*rand.Rand, int) []netip.Prefix
	}{
		{"10k-ipv4-hosts", hostRoutes},
		{"10k-mixed", mixedRoutes},
	}
	for _, tc := range cases {
		tb, probes := buildTable(tc.routes(rand.New(rand.NewPCG(1, 2)), 10000))
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := tb.Lookup(probes[i]); !ok {
					b.Fatal("probe missed")
				}
				i++
				if i == len(probes) {
					i = 0
				}
			}
		})
	}
}

func BenchmarkLookupPacket(b *testing.B) {
	tb, probes := buildTable(hostRoutes(rand.New(rand.NewPCG(1, 2)), 10000))
	packets := make([][]byte, len(probes))
	for i, ip := range probes {
		p := make([]byte, 20)
		p[0] = 0x45
		a := ip.As4()
		copy(p[16:], a[:])
		packets[i] = p
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := tb.LookupPacket(packets[i], true); !ok {
			b.Fatal("probe missed")
		}
		i++
		if i == len(packets) {
			i = 0
		}
	}
}

// TestMemoryPerPeer measures the heap a 10,000-peer table of one /32 each
// keeps, and bounds it.
func TestMemoryPerPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap")
	}
	const n = 10000
	ps := hostRoutes(rand.New(rand.NewPCG(5, 5)), n)
	peers := make([]peer, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	tb := new(Table[*peer])
	for i, p := range ps {
		tb.Insert(p, &peers[i])
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	t.Logf("%.1f bytes per /32 at %d peers (%d nodes)", per, n, countNodes(tb.load().v4))
	if per > 120 {
		t.Fatalf("%.1f bytes per /32, want at most 120", per)
	}
	runtime.KeepAlive(tb)
	runtime.KeepAlive(ps)
}
