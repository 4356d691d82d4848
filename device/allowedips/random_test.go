package allowedips

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// naive is the reference the trie is checked against: a list scanned in
// full for every query.
type naive struct {
	entries map[netip.Prefix]int
}

func (n *naive) insert(p netip.Prefix, v int) { n.entries[p.Masked()] = v }

func (n *naive) remove(p netip.Prefix) bool {
	p = p.Masked()
	_, ok := n.entries[p]
	delete(n.entries, p)
	return ok
}

func (n *naive) removeValue(v int) int {
	d := 0
	for p, w := range n.entries {
		if w == v {
			delete(n.entries, p)
			d++
		}
	}
	return d
}

func (n *naive) lookup(ip netip.Addr) (int, bool) {
	best, v := -1, 0
	for p, w := range n.entries {
		if p.Bits() > best && p.Contains(ip) {
			best, v = p.Bits(), w
		}
	}
	return v, best >= 0
}

func (n *naive) prefixes(v int) []netip.Prefix {
	var out []netip.Prefix
	for p, w := range n.entries {
		if w == v {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}

// randomAddr draws addresses from a narrow space (a few fixed leading
// bytes) so that random prefixes nest and overlap often.
func randomAddr(rng *rand.Rand, is4 bool) netip.Addr {
	if is4 {
		var a [4]byte
		a[0] = 10 + byte(rng.IntN(2))
		a[1] = byte(rng.IntN(4))
		a[2], a[3] = byte(rng.IntN(256)), byte(rng.IntN(256))
		return netip.AddrFrom4(a)
	}
	var a [16]byte
	a[0], a[1] = 0xfd, byte(rng.IntN(2))
	for i := 2; i < 16; i++ {
		a[i] = byte(rng.IntN(4))
		if rng.IntN(3) == 0 {
			a[i] = byte(rng.IntN(256))
		}
	}
	return netip.AddrFrom16(a)
}

func randomPrefix(rng *rand.Rand, is4 bool) netip.Prefix {
	ip := randomAddr(rng, is4)
	n := rng.IntN(ip.BitLen() + 1)
	if rng.IntN(4) == 0 {
		n = ip.BitLen() // host routes are the common case
	}
	return netip.PrefixFrom(ip, n)
}

// TestRandomAgainstNaive drives the trie and the reference with the same
// random operations and compares every answer.
func TestRandomAgainstNaive(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		rng := rand.New(rand.NewPCG(seed, seed*7919))
		var tb Table[int]
		ref := &naive{entries: map[netip.Prefix]int{}}
		var inserted []netip.Prefix
		const values = 40
		for step := range 4000 {
			is4 := rng.IntN(2) == 0
			switch op := rng.IntN(100); {
			case op < 55:
				p, v := randomPrefix(rng, is4), rng.IntN(values)
				tb.Insert(p, v)
				ref.insert(p, v)
				inserted = append(inserted, p)
			case op < 75 && len(inserted) > 0:
				p := inserted[rng.IntN(len(inserted))]
				if rng.IntN(4) == 0 {
					p = randomPrefix(rng, is4)
				}
				if got, want := tb.Remove(p), ref.remove(p); got != want {
					t.Fatalf("seed %d step %d: Remove(%v) = %v, want %v", seed, step, p, got, want)
				}
			case op < 78:
				v := rng.IntN(values)
				if got, want := tb.RemoveValue(v), ref.removeValue(v); got != want {
					t.Fatalf("seed %d step %d: RemoveValue(%d) = %d, want %d",
						seed, step, v, got, want)
				}
			default:
				for range 20 {
					ip := randomAddr(rng, rng.IntN(2) == 0)
					gv, gok := tb.Lookup(ip)
					wv, wok := ref.lookup(ip)
					if gok != wok || gv != wv {
						t.Fatalf("seed %d step %d: Lookup(%v) = %d, %v; want %d, %v",
							seed, step, ip, gv, gok, wv, wok)
					}
				}
			}
			if tb.Len() != len(ref.entries) {
				t.Fatalf("seed %d step %d: Len() = %d, want %d",
					seed, step, tb.Len(), len(ref.entries))
			}
			if step%500 == 0 {
				checkShape(t, tb.load().v4)
				checkShape(t, tb.load().v6)
				for v := range values {
					if got, want := tb.Prefixes(v), ref.prefixes(v); !slices.Equal(got, want) {
						t.Fatalf("seed %d step %d: Prefixes(%d) = %v, want %v",
							seed, step, v, got, want)
					}
				}
			}
		}
	}
}

// TestSnapshotsAreImmutable checks the copy-on-write promise: a version
// taken before a write answers as before, whatever the write did.
func TestSnapshotsAreImmutable(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	var tb Table[int]
	for i := range 500 {
		tb.Insert(randomPrefix(rng, i%2 == 0), i)
	}
	old := tb.load()
	probes := make([]netip.Addr, 2000)
	want := make([]int, len(probes))
	for i := range probes {
		probes[i] = randomAddr(rng, i%2 == 0)
		k, is4 := addrKey(probes[i])
		want[i], _ = lookup(pick(old, is4), k)
	}
	for i := range 500 {
		tb.Insert(randomPrefix(rng, i%2 == 0), 1000+i)
		tb.Remove(randomPrefix(rng, i%2 == 0))
		tb.RemoveValue(i)
	}
	for i, ip := range probes {
		k, is4 := addrKey(ip)
		if got, _ := lookup(pick(old, is4), k); got != want[i] {
			t.Fatalf("old version changed: Lookup(%v) = %d, was %d", ip, got, want[i])
		}
	}
}

func pick[V comparable](r *roots[V], is4 bool) *node[V] {
	if is4 {
		return r.v4
	}
	return r.v6
}

// FuzzLookupPacket checks that LookupPacket never panics and agrees with
// Lookup on the address a reference parser finds in the header.
func FuzzLookupPacket(f *testing.F) {
	var tb Table[int]
	tb.Insert(pfx("10.0.0.0/8"), 1)
	tb.Insert(pfx("10.1.0.0/16"), 2)
	tb.Insert(pfx("0.0.0.0/0"), 3)
	tb.Insert(pfx("fd00::/8"), 4)
	tb.Insert(pfx("fd00::1/128"), 5)
	f.Add([]byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 1, 2, 3, 10, 9, 9, 9}, true)
	f.Add(make([]byte, 40), false)
	f.Add([]byte{0x60}, true)
	f.Fuzz(func(t *testing.T, b []byte, dst bool) {
		got, gok := tb.LookupPacket(b, dst)
		var ip netip.Addr
		switch {
		case len(b) >= 20 && b[0]>>4 == 4:
			ip = netip.AddrFrom4([4]byte(b[12:16]))
			if dst {
				ip = netip.AddrFrom4([4]byte(b[16:20]))
			}
		case len(b) >= 40 && b[0]>>4 == 6:
			ip = netip.AddrFrom16([16]byte(b[8:24]))
			if dst {
				ip = netip.AddrFrom16([16]byte(b[24:40]))
			}
		}
		want, wok := tb.Lookup(ip)
		if got != want || gok != wok {
			t.Fatalf("LookupPacket = %d, %v; Lookup(%v) = %d, %v", got, gok, ip, want, wok)
		}
	})
}
