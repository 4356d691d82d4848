package allowedips

import "math/bits"

// node is one vertex of a path-compressed binary trie. A node exists only
// where a prefix is stored or where two stored prefixes part ways, so a
// trie holding n prefixes has fewer than 2n nodes whatever their lengths.
//
// Nodes are immutable once reachable from a published root: writers copy
// every node on the path they change and share the rest, which is what
// lets readers walk the trie without a lock.
type node[V comparable] struct {
	// hi and lo hold the prefix's address bits, big-endian, masked to
	// bits. An IPv4 address occupies the top 32 bits of hi.
	hi, lo uint64
	// child[0] and child[1] continue with bit number bits clear or set.
	child [2]*node[V]
	value V
	bits  uint8
	// set reports whether value belongs to a stored prefix; a node
	// without it only joins two branches.
	set bool
}

// key is an address or a prefix laid out as node stores it.
type key struct {
	hi, lo uint64
}

// bitAt returns bit i (0 is the most significant) of k; i must be below 128.
func (k key) bitAt(i uint8) int {
	if i < 64 {
		return int(k.hi>>(63-i)) & 1
	}
	return int(k.lo>>(127-i)) & 1
}

// masked returns k with every bit from n on cleared.
func (k key) masked(n uint8) key {
	switch {
	case n == 0:
		return key{}
	case n < 64:
		return key{hi: k.hi &^ (^uint64(0) >> n)}
	case n == 64:
		return key{hi: k.hi}
	case n < 128:
		return key{hi: k.hi, lo: k.lo &^ (^uint64(0) >> (n - 64))}
	}
	return k
}

// common returns how many leading bits a and b share, at most limit.
func common(a, b key, limit uint8) uint8 {
	n := 128
	if x := a.hi ^ b.hi; x != 0 {
		n = bits.LeadingZeros64(x)
	} else if x := a.lo ^ b.lo; x != 0 {
		n = 64 + bits.LeadingZeros64(x)
	}
	return uint8(min(n, int(limit)))
}

// covers reports whether the first n.bits bits of k equal n's prefix.
// Go defines shifts by the operand's width or more as zero, which makes
// the /0 and /64 cases fall out without branches of their own.
func (n *node[V]) covers(k key) bool {
	b := uint(n.bits)
	if b <= 64 {
		return (k.hi^n.hi)>>(64-b) == 0
	}
	return k.hi == n.hi && (k.lo^n.lo)>>(128-b) == 0
}

// lookup returns the value of the longest stored prefix covering k.
func lookup[V comparable](n *node[V], k key) (v V, ok bool) {
	for n != nil && n.covers(k) {
		if n.set {
			v, ok = n.value, true
		}
		if n.bits == 128 {
			break
		}
		n = n.child[k.bitAt(n.bits)]
	}
	return v, ok
}

// insert returns a trie equal to the one at n with k/b mapped to v, and
// whether k/b is new. k must be masked to b bits. Only nodes on the path
// to k/b are copied; n itself is left untouched.
func insert[V comparable](n *node[V], k key, b uint8, v V) (*node[V], bool) {
	if n == nil {
		return &node[V]{hi: k.hi, lo: k.lo, bits: b, value: v, set: true}, true
	}
	c := common(key{n.hi, n.lo}, k, min(n.bits, b))
	switch {
	case c == n.bits && c == b:
		cp := *n
		cp.value, cp.set = v, true
		return &cp, !n.set
	case c == n.bits:
		cp := *n
		i := k.bitAt(n.bits)
		var added bool
		cp.child[i], added = insert(n.child[i], k, b, v)
		return &cp, added
	case c == b:
		// The new prefix contains n: it becomes n's parent.
		p := &node[V]{hi: k.hi, lo: k.lo, bits: b, value: v, set: true}
		p.child[key{n.hi, n.lo}.bitAt(b)] = n
		return p, true
	}
	// n and the new prefix part ways at bit c: join them under a node
	// that holds no value.
	m := key{n.hi, n.lo}.masked(c)
	fork := &node[V]{hi: m.hi, lo: m.lo, bits: c}
	leaf := &node[V]{hi: k.hi, lo: k.lo, bits: b, value: v, set: true}
	fork.child[k.bitAt(c)] = leaf
	fork.child[1-k.bitAt(c)] = n
	return fork, true
}

// remove returns a trie equal to the one at n without k/b, and whether
// k/b was there. k must be masked to b bits.
func remove[V comparable](n *node[V], k key, b uint8) (*node[V], bool) {
	if n == nil || n.bits > b || !n.covers(k) {
		return n, false
	}
	if n.bits == b {
		if !n.set {
			return n, false
		}
		cp := *n
		var zero V
		cp.value, cp.set = zero, false
		return cp.collapse(), true
	}
	i := k.bitAt(n.bits)
	c, ok := remove(n.child[i], k, b)
	if !ok {
		return n, false
	}
	cp := *n
	cp.child[i] = c
	return cp.collapse(), true
}

// collapse returns what should stand in place of n, a fresh copy not yet
// published: n itself, or its only child, or nothing, so that a node
// without a value always has two children.
func (n *node[V]) collapse() *node[V] {
	if n.set {
		return n
	}
	switch {
	case n.child[0] == nil:
		return n.child[1]
	case n.child[1] == nil:
		return n.child[0]
	}
	return n
}

// removeValue returns a trie equal to the one at n without any prefix
// mapped to v, and how many prefixes it dropped. Subtrees with nothing to
// drop are shared, not copied.
func removeValue[V comparable](n *node[V], v V) (*node[V], int) {
	if n == nil {
		return nil, 0
	}
	c0, d0 := removeValue(n.child[0], v)
	c1, d1 := removeValue(n.child[1], v)
	drop := n.set && n.value == v
	if d0+d1 == 0 && !drop {
		return n, 0
	}
	cp := *n
	cp.child = [2]*node[V]{c0, c1}
	d := d0 + d1
	if drop {
		var zero V
		cp.value, cp.set = zero, false
		d++
	}
	return cp.collapse(), d
}

// walk calls fn, in pre-order with child 0 first, for every stored prefix.
func walk[V comparable](n *node[V], fn func(n *node[V])) {
	if n == nil {
		return
	}
	if n.set {
		fn(n)
	}
	walk(n.child[0], fn)
	walk(n.child[1], fn)
}
