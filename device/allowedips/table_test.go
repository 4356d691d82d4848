package allowedips

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"unsafe"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func TestLookupEdgeCases(t *testing.T) {
	type probe struct {
		ip   string
		want string // value expected, "" for no match
	}
	tests := []struct {
		name    string
		inserts [][2]string // prefix, value
		removes []string
		probes  []probe
		wantLen int
	}{
		{
			name:   "empty table",
			probes: []probe{{"10.0.0.1", ""}, {"::1", ""}},
		},
		{
			name:    "ipv4 default route",
			inserts: [][2]string{{"0.0.0.0/0", "a"}},
			probes:  []probe{{"0.0.0.0", "a"}, {"255.255.255.255", "a"}, {"::", ""}},
			wantLen: 1,
		},
		{
			name:    "ipv6 default route",
			inserts: [][2]string{{"::/0", "a"}},
			probes:  []probe{{"::", "a"}, {"ffff::1", "a"}, {"10.0.0.1", ""}},
			wantLen: 1,
		},
		{
			name:    "host routes",
			inserts: [][2]string{{"10.0.0.1/32", "a"}, {"fd00::1/128", "b"}},
			probes: []probe{
				{"10.0.0.1", "a"}, {"10.0.0.0", ""}, {"10.0.0.2", ""},
				{"fd00::1", "b"}, {"fd00::", ""}, {"fd00::2", ""},
			},
			wantLen: 2,
		},
		{
			name: "overlapping prefixes pick the longest",
			inserts: [][2]string{
				{"10.0.0.0/8", "a"}, {"10.1.0.0/16", "b"}, {"10.1.1.0/24", "c"},
				{"10.1.1.1/32", "d"}, {"0.0.0.0/0", "z"},
			},
			probes: []probe{
				{"10.1.1.1", "d"}, {"10.1.1.2", "c"}, {"10.1.2.1", "b"},
				{"10.2.0.1", "a"}, {"11.0.0.1", "z"},
			},
			wantLen: 5,
		},
		{
			name:    "longer inserted before shorter",
			inserts: [][2]string{{"192.168.1.0/24", "b"}, {"192.168.0.0/16", "a"}},
			probes:  []probe{{"192.168.1.9", "b"}, {"192.168.2.9", "a"}},
			wantLen: 2,
		},
		{
			name:    "unmasked prefix is masked",
			inserts: [][2]string{{"10.1.2.3/8", "a"}},
			probes:  []probe{{"10.200.0.1", "a"}},
			wantLen: 1,
		},
		{
			name:    "reinsert replaces value",
			inserts: [][2]string{{"10.0.0.0/8", "a"}, {"10.0.0.0/8", "b"}, {"10.9.9.9/8", "c"}},
			probes:  []probe{{"10.1.1.1", "c"}},
			wantLen: 1,
		},
		{
			name:    "remove the middle of a chain",
			inserts: [][2]string{{"10.0.0.0/8", "a"}, {"10.1.0.0/16", "b"}, {"10.1.1.0/24", "c"}},
			removes: []string{"10.1.0.0/16"},
			probes:  []probe{{"10.1.1.1", "c"}, {"10.1.2.1", "a"}},
			wantLen: 2,
		},
		{
			name:    "remove an absent prefix",
			inserts: [][2]string{{"10.0.0.0/8", "a"}},
			removes: []string{"10.0.0.0/9", "10.0.0.0/7", "11.0.0.0/8", "::/0"},
			probes:  []probe{{"10.1.1.1", "a"}},
			wantLen: 1,
		},
		{
			name:    "families are separate",
			inserts: [][2]string{{"0.0.0.0/0", "v4"}, {"::/0", "v6"}},
			probes:  []probe{{"1.2.3.4", "v4"}, {"::ffff:1.2.3.4", "v6"}},
			wantLen: 2,
		},
		{
			name: "ipv6 split beyond bit 64",
			inserts: [][2]string{
				{"fd00::/64", "a"}, {"fd00::8000:0:0:0/65", "b"}, {"fd00::1:0/112", "c"},
			},
			probes: []probe{
				{"fd00::8000:0:0:1", "b"}, {"fd00::1:5", "c"}, {"fd00::2:5", "a"},
				{"fd00:0:0:1::", ""},
			},
			wantLen: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tb Table[string]
			for _, in := range tc.inserts {
				tb.Insert(pfx(in[0]), in[1])
			}
			for _, r := range tc.removes {
				tb.Remove(pfx(r))
			}
			if got := tb.Len(); got != tc.wantLen {
				t.Errorf("Len() = %d, want %d", got, tc.wantLen)
			}
			for _, p := range tc.probes {
				got, ok := tb.Lookup(addr(p.ip))
				if ok != (p.want != "") || got != p.want {
					t.Errorf("Lookup(%s) = %q, %v; want %q", p.ip, got, ok, p.want)
				}
			}
		})
	}
}

func TestInvalidInputs(t *testing.T) {
	var tb Table[int]
	tb.Insert(netip.Prefix{}, 1)
	if tb.Len() != 0 {
		t.Fatalf("Len() after inserting an invalid prefix = %d, want 0", tb.Len())
	}
	if tb.Remove(netip.Prefix{}) {
		t.Error("Remove(invalid) = true, want false")
	}
	tb.Insert(pfx("0.0.0.0/0"), 1)
	if v, ok := tb.Lookup(netip.Addr{}); ok {
		t.Errorf("Lookup(zero Addr) = %d, true; want false", v)
	}
}

func TestRemoveReportsPresence(t *testing.T) {
	var tb Table[int]
	tb.Insert(pfx("10.0.0.0/8"), 1)
	if !tb.Remove(pfx("10.0.0.0/8")) {
		t.Fatal("first Remove = false, want true")
	}
	if tb.Remove(pfx("10.0.0.0/8")) {
		t.Fatal("second Remove = true, want false")
	}
	if tb.Len() != 0 {
		t.Fatalf("Len() = %d, want 0", tb.Len())
	}
	if _, ok := tb.Lookup(addr("10.0.0.1")); ok {
		t.Fatal("Lookup found a removed prefix")
	}
}

func TestRemoveValueAndPrefixes(t *testing.T) {
	var tb Table[string]
	for _, in := range [][2]string{
		{"fd00::/8", "a"}, {"10.1.0.0/16", "a"}, {"10.0.0.0/8", "a"}, {"10.1.1.0/24", "b"},
		{"0.0.0.0/0", "c"}, {"10.0.0.0/16", "a"}, {"fd00::1/128", "b"}, {"::/0", "a"},
	} {
		tb.Insert(pfx(in[0]), in[1])
	}
	want := []netip.Prefix{
		pfx("10.0.0.0/8"), pfx("10.0.0.0/16"), pfx("10.1.0.0/16"), pfx("::/0"), pfx("fd00::/8"),
	}
	if got := tb.Prefixes("a"); !slices.Equal(got, want) {
		t.Fatalf("Prefixes(a) = %v, want %v", got, want)
	}
	if got := tb.Prefixes("nobody"); got != nil {
		t.Fatalf("Prefixes(nobody) = %v, want nil", got)
	}
	if n := tb.RemoveValue("a"); n != len(want) {
		t.Fatalf("RemoveValue(a) = %d, want %d", n, len(want))
	}
	if n := tb.RemoveValue("a"); n != 0 {
		t.Fatalf("second RemoveValue(a) = %d, want 0", n)
	}
	if tb.Len() != 3 {
		t.Fatalf("Len() = %d, want 3", tb.Len())
	}
	for ip, w := range map[string]string{
		"10.1.1.1": "b", "10.1.2.1": "c", "10.2.0.1": "c", "fd00::1": "b",
	} {
		if got, _ := tb.Lookup(addr(ip)); got != w {
			t.Errorf("Lookup(%s) = %q, want %q", ip, got, w)
		}
	}
	if _, ok := tb.Lookup(addr("fd00::2")); ok {
		t.Error("Lookup(fd00::2) matched after its prefixes were removed")
	}
}

// TestCollapse checks that removals leave no node that neither stores a
// prefix nor joins two branches.
func TestCollapse(t *testing.T) {
	var tb Table[int]
	ps := []string{"10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16", "10.1.1.0/24", "11.0.0.0/8"}
	for i, p := range ps {
		tb.Insert(pfx(p), i)
	}
	for _, p := range ps[:4] {
		tb.Remove(pfx(p))
		checkShape(t, tb.load().v4)
	}
	if got := countNodes(tb.load().v4); got != 1 {
		t.Fatalf("%d nodes left for one prefix, want 1", got)
	}
}

func checkShape[V comparable](t *testing.T, n *node[V]) {
	t.Helper()
	if n == nil {
		return
	}
	if !n.set && (n.child[0] == nil || n.child[1] == nil) {
		t.Fatalf("node /%d holds no value and has fewer than two children", n.bits)
	}
	for i, c := range n.child {
		if c == nil {
			continue
		}
		ck := key{c.hi, c.lo}
		if c.bits <= n.bits || !n.covers(ck) || ck.bitAt(n.bits) != i {
			t.Fatalf("child %d (/%d) misplaced under /%d", i, c.bits, n.bits)
		}
		checkShape(t, c)
	}
}

func countNodes[V comparable](n *node[V]) int {
	if n == nil {
		return 0
	}
	return 1 + countNodes(n.child[0]) + countNodes(n.child[1])
}

func TestLookupPacket(t *testing.T) {
	var tb Table[string]
	tb.Insert(pfx("10.0.0.0/8"), "src4")
	tb.Insert(pfx("192.168.0.0/16"), "dst4")
	tb.Insert(pfx("fd00:1::/32"), "src6")
	tb.Insert(pfx("fd00:2::/32"), "dst6")

	v4 := make([]byte, 20)
	v4[0] = 0x45
	copy(v4[12:16], []byte{10, 1, 2, 3})
	copy(v4[16:20], []byte{192, 168, 7, 7})
	v6 := make([]byte, 40)
	v6[0] = 0x60
	src6, dst6 := addr("fd00:1::5").As16(), addr("fd00:2::9").As16()
	copy(v6[8:24], src6[:])
	copy(v6[24:40], dst6[:])
	v5 := slices.Clone(v6)
	v5[0] = 0x50

	tests := []struct {
		name   string
		packet []byte
		dst    bool
		want   string
	}{
		{"ipv4 destination", v4, true, "dst4"},
		{"ipv4 source", v4, false, "src4"},
		{"ipv6 destination", v6, true, "dst6"},
		{"ipv6 source", v6, false, "src6"},
		{"ipv4 with payload", append(slices.Clone(v4), 1, 2, 3), true, "dst4"},
		{"short ipv4", v4[:19], true, ""},
		{"short ipv6", v6[:39], true, ""},
		{"ipv6 header cut to ipv4 size", v6[:20], false, ""},
		{"unknown version", v5, true, ""},
		{"empty", nil, true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tb.LookupPacket(tc.packet, tc.dst)
			if ok != (tc.want != "") || got != tc.want {
				t.Fatalf("LookupPacket = %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
}

func TestZeroValueLookups(t *testing.T) {
	var tb Table[*int]
	if _, ok := tb.Lookup(addr("1.1.1.1")); ok {
		t.Error("Lookup on a zero Table matched")
	}
	if _, ok := tb.LookupPacket(make([]byte, 40), true); ok {
		t.Error("LookupPacket on a zero Table matched")
	}
	if tb.Len() != 0 || tb.Prefixes(nil) != nil {
		t.Error("zero Table is not empty")
	}
}

func TestLookupAllocs(t *testing.T) {
	var tb Table[*int]
	peers := make([]int, 64)
	for i := range peers {
		tb.Insert(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16), &peers[i])
		tb.Insert(netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, byte(i)}), 16), &peers[i])
	}
	ip4, ip6 := addr("10.7.1.1"), addr("fd07::1")
	pkt4 := make([]byte, 20)
	pkt4[0] = 0x45
	copy(pkt4[16:], []byte{10, 9, 1, 1})
	pkt6 := make([]byte, 40)
	pkt6[0] = 0x60
	pkt6[24], pkt6[25] = 0xfd, 3
	tests := []struct {
		name string
		fn   func() bool
	}{
		{"Lookup ipv4", func() bool { _, ok := tb.Lookup(ip4); return ok }},
		{"Lookup ipv6", func() bool { _, ok := tb.Lookup(ip6); return ok }},
		{"LookupPacket ipv4", func() bool { _, ok := tb.LookupPacket(pkt4, true); return ok }},
		{"LookupPacket ipv6", func() bool { _, ok := tb.LookupPacket(pkt6, true); return ok }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.fn() {
				t.Fatal("lookup found nothing")
			}
			if a := testing.AllocsPerRun(1000, func() { tc.fn() }); a != 0 {
				t.Fatalf("%v allocations per lookup, want 0", a)
			}
		})
	}
}

// TestNodeSize pins the figure the package documentation gives.
func TestNodeSize(t *testing.T) {
	if s := unsafe.Sizeof(node[*int]{}); s != 48 {
		t.Fatalf("node[*int] is %d bytes, documented as 48", s)
	}
}

// TestConcurrentReadWrite runs lookups while writers change the table;
// run it with -race. Prefix 10.0.0.0/8 stays throughout, so every lookup
// under it must match either it or one of the prefixes being churned.
func TestConcurrentReadWrite(t *testing.T) {
	var tb Table[int]
	tb.Insert(pfx("10.0.0.0/8"), -1)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ip := netip.AddrFrom4([4]byte{10, byte(i), byte(r), 1})
				v, ok := tb.Lookup(ip)
				if !ok || (v != -1 && v != int(byte(i))) {
					t.Errorf("Lookup(%v) = %d, %v", ip, v, ok)
					return
				}
			}
		})
	}
	for round := range 200 {
		for i := range 256 {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i)}), 16)
			if round%2 == 0 {
				tb.Insert(p, i)
			} else {
				tb.Remove(p)
			}
		}
	}
	close(stop)
	wg.Wait()
	if tb.Len() != 1 {
		t.Fatalf("Len() = %d, want 1", tb.Len())
	}
}
