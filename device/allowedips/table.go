// Package allowedips implements cryptokey routing: a table that maps IPv4
// and IPv6 prefixes to values (in hoprd, peers) and finds, for an address,
// the value of the longest prefix that contains it.
//
// The engine asks it two questions per packet: on the way out, which peer
// owns the packet's destination; on the way in, whether the peer that
// sent it owns its source. Both are answered by [Table.LookupPacket]
// straight from the IP header.
//
// # Structure
//
// Each address family has a binary trie with path compression: a node
// exists only where a prefix is stored or where two prefixes part ways,
// so n prefixes take fewer than 2n nodes (48 bytes each when V is a
// pointer) and a lookup visits at most one node per branching point on
// the address's path, never more than 33 (IPv4) or 129 (IPv6).
//
// # Concurrency
//
// The table is copy-on-write. Published tries are never modified: a
// writer copies the nodes on the path it changes, shares every other
// node with the old trie, and publishes the new roots with one atomic
// store. Lookups therefore take no lock, never wait and never allocate;
// a lookup that overlaps a write sees the table wholly before or wholly
// after it. Writers are serialized by a mutex and cost a few small
// allocations each, which suits a table written on configuration
// changes and read for every packet.
package allowedips

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// Table maps IP prefixes to values of type V and answers longest-prefix
// queries. The zero value is an empty table ready for use. All methods
// are safe for concurrent use; see the package documentation for the
// cost of each. A Table must not be copied after first use.
type Table[V comparable] struct {
	// mu serializes writers; readers never take it.
	mu   sync.Mutex
	root atomic.Pointer[roots[V]]
}

// roots is one published version of a table.
type roots[V comparable] struct {
	v4, v6 *node[V]
	n      int
}

// Lengths and offsets of the parts of an IP header LookupPacket reads.
const (
	ipv4HeaderLen = 20
	ipv4SrcOffset = 12
	ipv4DstOffset = 16
	ipv6HeaderLen = 40
	ipv6SrcOffset = 8
	ipv6DstOffset = 24
)

// load returns the current version, never nil.
func (t *Table[V]) load() *roots[V] {
	if r := t.root.Load(); r != nil {
		return r
	}
	return &roots[V]{}
}

// prefixKey splits a valid prefix into its masked key, its length in the
// trie and whether it is IPv4.
func prefixKey(p netip.Prefix) (key, uint8, bool) {
	p = p.Masked()
	k, is4 := addrKey(p.Addr())
	return k, uint8(p.Bits()), is4
}

// addrKey lays out a valid address as the trie stores it. An IPv4-mapped
// IPv6 address stays IPv6, as netip treats it.
func addrKey(a netip.Addr) (key, bool) {
	if a.Is4() {
		b := a.As4()
		return key{hi: uint64(binary.BigEndian.Uint32(b[:])) << 32}, true
	}
	b := a.As16()
	return key{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}, false
}

// Insert maps p, masked to its length, to v, replacing the value of an
// equal prefix already present. An invalid prefix is ignored.
func (t *Table[V]) Insert(p netip.Prefix, v V) {
	if !p.IsValid() {
		return
	}
	k, b, is4 := prefixKey(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	r := *t.load()
	var added bool
	if is4 {
		r.v4, added = insert(r.v4, k, b, v)
	} else {
		r.v6, added = insert(r.v6, k, b, v)
	}
	if added {
		r.n++
	}
	t.root.Store(&r)
}

// Remove deletes the prefix equal to p, masked to its length, and reports
// whether it was present. Prefixes that contain p or that p contains are
// not affected.
func (t *Table[V]) Remove(p netip.Prefix) bool {
	if !p.IsValid() {
		return false
	}
	k, b, is4 := prefixKey(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	r := *t.load()
	var ok bool
	if is4 {
		r.v4, ok = remove(r.v4, k, b)
	} else {
		r.v6, ok = remove(r.v6, k, b)
	}
	if ok {
		r.n--
		t.root.Store(&r)
	}
	return ok
}

// RemoveValue deletes every prefix mapped to v, as when a peer leaves,
// and returns how many it deleted. It walks the whole table.
func (t *Table[V]) RemoveValue(v V) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := *t.load()
	var d4, d6 int
	r.v4, d4 = removeValue(r.v4, v)
	r.v6, d6 = removeValue(r.v6, v)
	if d4+d6 > 0 {
		r.n -= d4 + d6
		t.root.Store(&r)
	}
	return d4 + d6
}

// Lookup returns the value of the longest prefix that contains ip, and
// false if none does or ip is the zero Addr. It does not allocate.
func (t *Table[V]) Lookup(ip netip.Addr) (V, bool) {
	r := t.root.Load()
	if r == nil || !ip.IsValid() {
		var zero V
		return zero, false
	}
	k, is4 := addrKey(ip)
	if is4 {
		return lookup(r.v4, k)
	}
	return lookup(r.v6, k)
}

// LookupPacket looks up the destination (dst true) or the source address
// of the IPv4 or IPv6 packet that starts at b[0]. It reads the address in
// place and returns false if b is shorter than the fixed header of its
// version or the version is neither 4 nor 6. Nothing else in the header
// is checked. It does not allocate.
func (t *Table[V]) LookupPacket(b []byte, dst bool) (V, bool) {
	var zero V
	r := t.root.Load()
	if r == nil || len(b) == 0 {
		return zero, false
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) < ipv4HeaderLen {
			return zero, false
		}
		off := ipv4SrcOffset
		if dst {
			off = ipv4DstOffset
		}
		a := binary.BigEndian.Uint32(b[off : off+4])
		return lookup(r.v4, key{hi: uint64(a) << 32})
	case 6:
		if len(b) < ipv6HeaderLen {
			return zero, false
		}
		off := ipv6SrcOffset
		if dst {
			off = ipv6DstOffset
		}
		k := key{
			hi: binary.BigEndian.Uint64(b[off : off+8]),
			lo: binary.BigEndian.Uint64(b[off+8 : off+16]),
		}
		return lookup(r.v6, k)
	}
	return zero, false
}

// Prefixes returns the prefixes mapped to v, IPv4 before IPv6, each family
// in address order and shorter before longer at equal addresses. It walks
// the whole table and returns nil if v has none.
func (t *Table[V]) Prefixes(v V) []netip.Prefix {
	r := t.load()
	var out []netip.Prefix
	collect := func(is4 bool) func(n *node[V]) {
		return func(n *node[V]) {
			if n.value == v {
				out = append(out, nodePrefix(n, is4))
			}
		}
	}
	walk(r.v4, collect(true))
	walk(r.v6, collect(false))
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Bits(), b.Bits())
	})
	return out
}

// nodePrefix rebuilds the prefix a node stores.
func nodePrefix[V comparable](n *node[V], is4 bool) netip.Prefix {
	if is4 {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], uint32(n.hi>>32))
		return netip.PrefixFrom(netip.AddrFrom4(a), int(n.bits))
	}
	var a [16]byte
	binary.BigEndian.PutUint64(a[:8], n.hi)
	binary.BigEndian.PutUint64(a[8:], n.lo)
	return netip.PrefixFrom(netip.AddrFrom16(a), int(n.bits))
}

// Len returns the number of prefixes in the table.
func (t *Table[V]) Len() int {
	return t.load().n
}
