package tun

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Test address plan: the overlay lives in 100.64.0.0/10 and fd7a:686f:7072::/48.
var (
	testRanges = []netip.Prefix{
		netip.MustParsePrefix("100.64.0.0/10"),
		netip.MustParsePrefix("fd00::/8"),
	}
	addr4 = netip.MustParsePrefix("100.64.0.1/24")
	addr6 = netip.MustParsePrefix("fd7a:686f:7072::1/64")
	peer4 = netip.MustParsePrefix("100.64.1.0/24")
	peer6 = netip.MustParsePrefix("fd7a:686f:7072:1::/64")
	wide4 = netip.MustParsePrefix("100.96.0.0/12")
	// own4 and own6 equal the addresses' subnets: the kernel's connected routes cover them.
	own4 = netip.MustParsePrefix("100.64.0.0/24")
	own6 = netip.MustParsePrefix("fd7a:686f:7072::/64")
)

// testConfig is a dual-stack interface with two peer routes and two routes that duplicate
// the connected subnets.
func testConfig(name string) Config {
	return Config{
		Name:      name,
		Addresses: []netip.Prefix{addr4, addr6},
		Routes:    []netip.Prefix{peer4, peer6, own4, own6},
	}
}

// mustCreate creates cfg with a recording logger and closes it when the test ends.
func mustCreate(t *testing.T, cfg Config) (*Interface, *logRecorder) {
	t.Helper()
	rec := newLogRecorder()
	i, err := Create(cfg, slog.New(rec))
	if err != nil {
		t.Fatalf("Create(%s): %v", cfg.Name, err)
	}
	t.Cleanup(func() {
		if err := i.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return i, rec
}

// inTestRanges reports whether p lies within the test address plan.
func inTestRanges(p netip.Prefix) bool {
	for _, r := range testRanges {
		if r.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// toPrefix converts a netlink IPNet, which may be nil for a default route.
func toPrefix(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	a, _ := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}

// testAddrs lists the addresses in the test plan on the link with the given index.
func testAddrs(t *testing.T, index int) map[netip.Prefix]netlink.Addr {
	t.Helper()
	link := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: index}}
	list, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatalf("list addresses: %v", err)
	}
	out := map[netip.Prefix]netlink.Addr{}
	for _, a := range list {
		if p := toPrefix(a.IPNet); inTestRanges(p) {
			out[p] = a
		}
	}
	return out
}

// allRoutes lists the routes of every table.
func allRoutes(t *testing.T) []netlink.Route {
	t.Helper()
	filter := &netlink.Route{Table: unix.RT_TABLE_UNSPEC}
	list, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatalf("list routes: %v", err)
	}
	return list
}

// mainRoutes lists the main table's routes through the link with the given index, by
// destination.
func mainRoutes(t *testing.T, index int) map[netip.Prefix][]netlink.Route {
	t.Helper()
	out := map[netip.Prefix][]netlink.Route{}
	for _, r := range allRoutes(t) {
		if r.LinkIndex == index && r.Table == unix.RT_TABLE_MAIN {
			p := toPrefix(r.Dst)
			out[p] = append(out[p], r)
		}
	}
	return out
}

// assertNothingLeft fails the test if a link called name or with the given index exists,
// or if any link carries an address, or any table a route, from the test plan.
func assertNothingLeft(t *testing.T, name string, index int) {
	t.Helper()
	if kind, ok := Exists(name); ok {
		t.Errorf("link %s still exists (kind %s)", name, kind)
	}
	if index != 0 {
		if l, err := netlink.LinkByIndex(index); err == nil {
			t.Errorf("link index %d still exists as %s", index, l.Attrs().Name)
		}
	}
	if got := testAddrs(t, 0); len(got) != 0 {
		t.Errorf("addresses left: %v", slices.Collect(mapKeys(got)))
	}
	for _, r := range allRoutes(t) {
		if (index != 0 && r.LinkIndex == index) || inTestRanges(toPrefix(r.Dst)) {
			t.Errorf("route left: %s", r)
		}
	}
}

// mapKeys yields the keys of m.
func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// logRecorder is a slog handler that keeps each record as one line of level, message and
// attributes, for tests to assert on. Handlers derived with WithAttrs share its lines. It
// is safe for concurrent use.
type logRecorder struct {
	lines *logLines
	attrs []slog.Attr
}

// logLines is the store logRecorders share.
type logLines struct {
	mu   sync.Mutex
	list []string
}

// newLogRecorder returns an empty recorder.
func newLogRecorder() *logRecorder { return &logRecorder{lines: &logLines{}} }

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Level.String() + " " + rec.Message)
	for _, a := range r.attrs {
		b.WriteString(" " + a.String())
	}
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	r.lines.mu.Lock()
	r.lines.list = append(r.lines.list, b.String())
	r.lines.mu.Unlock()
	return nil
}

func (r *logRecorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logRecorder{lines: r.lines, attrs: append(slices.Clip(r.attrs), attrs...)}
}

func (r *logRecorder) WithGroup(string) slog.Handler { return r }

// find returns the first line containing every part, or "".
func (r *logRecorder) find(parts ...string) string {
	r.lines.mu.Lock()
	defer r.lines.mu.Unlock()
	for _, l := range r.lines.list {
		if containsAll(l, parts) {
			return l
		}
	}
	return ""
}

// containsAll reports whether s contains every part.
func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
