package tun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
)

// Every test here runs in a namespace of its own:
//
//	+-------------------- test netns ---------------------+
//	| lo                                                   |
//	| hop0 (tun)  100.64.0.1/24  fd7a:686f:7072::1/64      |
//	|   routes: 100.64.1.0/24, fd7a:686f:7072:1::/64       |
//	|   (100.64.0.0/24 and fd7a:686f:7072::/64 connected)  |
//	+------------------------------------------------------+
//
// Nothing is sent; the namespace has no way out.

func TestCreateConfiguresLink(t *testing.T) {
	tests := []struct {
		name    string
		mtu     int
		wantMTU int
	}{
		{name: "default mtu", mtu: 0, wantMTU: DefaultMTU},
		{name: "ipv6 minimum mtu", mtu: 1280, wantMTU: 1280},
		{name: "jumbo mtu", mtu: 9000, wantMTU: 9000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enterNetns(t)
			cfg := testConfig("hop0")
			cfg.MTU = tt.mtu
			i, rec := mustCreate(t, cfg)

			if i.Name() != "hop0" {
				t.Errorf("Name() = %q, want hop0", i.Name())
			}
			if i.MTU() != tt.wantMTU {
				t.Errorf("MTU() = %d, want %d", i.MTU(), tt.wantMTU)
			}
			l, err := netlink.LinkByName("hop0")
			if err != nil {
				t.Fatalf("link hop0: %v", err)
			}
			a := l.Attrs()
			if a.Index != i.Index() {
				t.Errorf("Index() = %d, link has %d", i.Index(), a.Index)
			}
			if !isTUN(l) {
				t.Errorf("link kind = %s, want tun", linkKind(l))
			}
			if a.MTU != tt.wantMTU {
				t.Errorf("link mtu = %d, want %d", a.MTU, tt.wantMTU)
			}
			if a.Flags&net.FlagUp == 0 || a.Flags&net.FlagRunning == 0 {
				t.Errorf("link flags = %v, want up and running", a.Flags)
			}
			if n, _ := i.Device.Name(); n != "hop0" {
				t.Errorf("Device.Name() = %q, want hop0", n)
			}

			assertAddresses(t, i.Index())
			assertRoutes(t, i.Index())

			if line := rec.find("INFO interface up", "tun=hop0"); line == "" {
				t.Errorf("no Info line for the new interface")
			}
		})
	}
}

// assertAddresses checks that the link has the test addresses, the IPv6 one usable at once.
func assertAddresses(t *testing.T, index int) {
	t.Helper()
	got := testAddrs(t, index)
	if len(got) != 2 {
		t.Errorf("addresses = %v, want %s and %s", got, addr4, addr6)
	}
	for _, want := range []netip.Prefix{addr4, addr6} {
		a, ok := got[want]
		if !ok {
			t.Errorf("address %s missing", want)
			continue
		}
		if want.Addr().Is6() {
			if a.Flags&unix.IFA_F_NODAD == 0 || a.Flags&unix.IFA_F_TENTATIVE != 0 {
				t.Errorf("address %s flags %#x: want nodad, not tentative", want, a.Flags)
			}
		}
	}
}

// assertRoutes checks that the peer routes go through the link and that the routes equal
// to the connected subnets were not added a second time.
func assertRoutes(t *testing.T, index int) {
	t.Helper()
	routes := mainRoutes(t, index)
	for _, p := range []netip.Prefix{peer4, peer6} {
		rs := routes[p]
		if len(rs) != 1 {
			t.Errorf("routes to %s = %d, want 1", p, len(rs))
			continue
		}
		if rs[0].Protocol == unix.RTPROT_KERNEL {
			t.Errorf("route to %s has kernel protocol, want one added by us", p)
		}
		if p.Addr().Is4() && rs[0].Scope != netlink.SCOPE_LINK {
			t.Errorf("route to %s scope %v, want link", p, rs[0].Scope)
		}
	}
	for _, p := range []netip.Prefix{own4, own6} {
		rs := routes[p]
		if len(rs) != 1 || rs[0].Protocol != unix.RTPROT_KERNEL {
			t.Errorf("routes to connected %s = %v, want only the kernel's", p, rs)
		}
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	enterNetns(t)
	goroutines := runtime.NumGoroutine()
	cfg := testConfig("hop0")
	i, err := Create(cfg, nil)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { i.Close() })
	index := i.Index()
	if err := i.AddRoute(wide4); err != nil {
		t.Fatalf("AddRoute(%s): %v", wide4, err)
	}

	if err := i.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertNothingLeft(t, "hop0", index)
	// Close waits for the device's goroutines and the event drain to end.
	// (Fewer than before is fine: one an earlier test left may end meanwhile.)
	if n := runtime.NumGoroutine(); n > goroutines {
		t.Errorf("goroutines after Close = %d, before Create = %d", n, goroutines)
	}

	if err := i.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := i.AddRoute(peer4); !errors.Is(err, ErrClosed) {
		t.Errorf("AddRoute after Close: %v, want ErrClosed", err)
	}
	if err := i.RemoveRoute(peer4); !errors.Is(err, ErrClosed) {
		t.Errorf("RemoveRoute after Close: %v, want ErrClosed", err)
	}
	buf := [][]byte{make([]byte, 2048)}
	if _, err := i.Device.Read(buf, []int{0}, 16); err == nil {
		t.Errorf("Device.Read after Close succeeded")
	}
}

func TestCloseDeletesPersistedLink(t *testing.T) {
	enterNetns(t)
	i, err := Create(testConfig("hop0"), nil)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { i.Close() })
	index := i.Index()

	// Something made the device persistent: the link would outlive the descriptor.
	sc, err := i.Device.File().SyscallConn()
	if err != nil {
		t.Fatalf("syscall conn: %v", err)
	}
	var ioctlErr error
	if err := sc.Control(func(fd uintptr) {
		ioctlErr = unix.IoctlSetInt(int(fd), unix.TUNSETPERSIST, 1)
	}); err != nil || ioctlErr != nil {
		t.Fatalf("TUNSETPERSIST: %v %v", err, ioctlErr)
	}

	if err := i.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertNothingLeft(t, "hop0", index)
}

func TestAddRemoveRoute(t *testing.T) {
	enterNetns(t)
	i, _ := mustCreate(t, testConfig("hop0"))

	tests := []struct {
		name string
		op   func(netip.Prefix) error
		p    netip.Prefix
		want int // routes to the masked prefix through hop0 afterwards
	}{
		{name: "add new", op: i.AddRoute, p: wide4, want: 1},
		{name: "add again", op: i.AddRoute, p: wide4, want: 1},
		{name: "add with host bits", op: i.AddRoute,
			p: netip.MustParsePrefix("100.96.7.7/12"), want: 1},
		{name: "remove", op: i.RemoveRoute, p: wide4, want: 0},
		{name: "remove again", op: i.RemoveRoute, p: wide4, want: 0},
		{name: "add ipv6", op: i.AddRoute,
			p: netip.MustParsePrefix("fd7a:686f:7072:2::/64"), want: 1},
		{name: "add host route", op: i.AddRoute,
			p: netip.MustParsePrefix("100.64.9.9/32"), want: 1},
		{name: "add connected subnet is a no-op", op: i.AddRoute, p: own4, want: 1},
		{name: "remove connected subnet keeps the kernel's", op: i.RemoveRoute, p: own4,
			want: 1},
		{name: "remove one from the config", op: i.RemoveRoute, p: peer6, want: 0},
	}
	// The steps build on each other and must stay on this goroutine, whose thread is in the
	// test namespace, so they are not subtests.
	for _, tt := range tests {
		if err := tt.op(tt.p); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := len(mainRoutes(t, i.Index())[tt.p.Masked()]); got != tt.want {
			t.Errorf("%s: routes to %s = %d, want %d", tt.name, tt.p.Masked(), got, tt.want)
		}
	}

	if err := i.AddRoute(netip.Prefix{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("AddRoute(invalid) = %v, want ErrInvalidConfig", err)
	}
	if err := i.RemoveRoute(netip.Prefix{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("RemoveRoute(invalid) = %v, want ErrInvalidConfig", err)
	}

	// A route to the same prefix through another link is left alone, and the
	// caller is told.
	addLink(t, &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "other0"}})
	other := mustLink(t, "other0")
	if err := netlink.LinkSetUp(other); err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix("100.80.0.0/16")
	if err := netlink.RouteAdd(nlRoute(other.Attrs().Index, p)); err != nil {
		t.Fatal(err)
	}
	if err := i.AddRoute(p); !errors.Is(err, ErrRouteExists) {
		t.Fatalf("AddRoute(%s) over another link's route = %v, want ErrRouteExists", p, err)
	}
	if n := len(mainRoutes(t, i.Index())[p]); n != 0 {
		t.Errorf("routes to %s via hop0 = %d, want 0", p, n)
	}
	if n := len(mainRoutes(t, other.Attrs().Index)[p]); n != 1 {
		t.Errorf("routes to %s via other0 = %d, want 1 (untouched)", p, n)
	}
	// Closing must not remove a route hoprd did not add.
	if err := i.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(mainRoutes(t, other.Attrs().Index)[p]); n != 1 {
		t.Errorf("after Close, routes to %s via other0 = %d, want 1", p, n)
	}
}

func TestCreateTakesOverStaleTUN(t *testing.T) {
	enterNetns(t)
	// What a crashed run leaves when its device was persistent: a TUN, no process on it.
	stale := &netlink.Tuntap{
		LinkAttrs: netlink.LinkAttrs{Name: "hop0"},
		Mode:      netlink.TUNTAP_MODE_TUN,
		Flags:     netlink.TUNTAP_NO_PI,
	}
	addLink(t, stale)
	old, err := netlink.LinkByName("hop0")
	if err != nil {
		t.Fatal(err)
	}
	if carrier, err := hasCarrier(old.Attrs().Index); err != nil || !isStaleTUN(old, carrier) {
		t.Fatalf("setup: %+v (carrier %v, %v) is not a stale tun", old, carrier, err)
	}
	if err := netlink.AddrAdd(old, nlAddr(netip.MustParsePrefix("100.64.200.1/24"))); err != nil {
		t.Fatal(err)
	}

	i, rec := mustCreate(t, testConfig("hop0"))

	if i.Index() == old.Attrs().Index {
		t.Errorf("index %d reused: the stale link was not replaced", i.Index())
	}
	if _, err := netlink.LinkByIndex(old.Attrs().Index); err == nil {
		t.Errorf("stale link index %d still exists", old.Attrs().Index)
	}
	count := 0
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Attrs().Name == "hop0" {
			count++
		}
	}
	if count != 1 {
		t.Errorf("links named hop0 = %d, want 1", count)
	}
	cur, err := netlink.LinkByName("hop0")
	if err != nil {
		t.Fatal(err)
	}
	carrier, err := hasCarrier(cur.Attrs().Index)
	if tt, ok := cur.(*netlink.Tuntap); !ok || !tt.NonPersist || !carrier || err != nil {
		t.Errorf("hop0 = %+v (carrier %v, %v), want a tun that is not persistent, with our "+
			"descriptor attached", cur, carrier, err)
	}
	if got := testAddrs(t, i.Index()); len(got) != 2 {
		t.Errorf("addresses = %v, want only the configured two", got)
	}
	if line := rec.find("INFO", "took over", "tun=hop0"); line == "" {
		t.Errorf("no Info line about the take-over")
	}
}

func TestCreateRefusesOtherLinks(t *testing.T) {
	tests := []struct {
		name     string
		link     func() netlink.Link
		wantErr  error
		wantKind string
	}{
		{
			name:     "bridge",
			link:     func() netlink.Link { return &netlink.Bridge{} },
			wantErr:  ErrLinkExists,
			wantKind: "kind bridge",
		},
		{
			name: "veth",
			link: func() netlink.Link {
				return &netlink.Veth{PeerName: "hop0peer"}
			},
			wantErr:  ErrLinkExists,
			wantKind: "kind veth",
		},
		{
			name: "persistent tap",
			link: func() netlink.Link {
				return &netlink.Tuntap{Mode: netlink.TUNTAP_MODE_TAP}
			},
			wantErr:  ErrLinkExists,
			wantKind: "kind tap",
		},
		{
			name: "tun held open by a process",
			link: func() netlink.Link {
				return &netlink.Tuntap{
					Mode:       netlink.TUNTAP_MODE_TUN,
					Flags:      netlink.TUNTAP_NO_PI,
					Queues:     1,
					NonPersist: true,
				}
			},
			wantErr: ErrLinkInUse,
		},
		{
			name: "persistent tun held open by a process",
			link: func() netlink.Link {
				return &netlink.Tuntap{
					Mode:   netlink.TUNTAP_MODE_TUN,
					Flags:  netlink.TUNTAP_NO_PI,
					Queues: 1,
				}
			},
			wantErr: ErrLinkInUse,
		},
		{
			name: "multi-queue tun with a queue attached",
			link: func() netlink.Link {
				return &netlink.Tuntap{
					Mode:   netlink.TUNTAP_MODE_TUN,
					Flags:  netlink.TUNTAP_MULTI_QUEUE_DEFAULTS,
					Queues: 2,
				}
			},
			wantErr: ErrLinkInUse,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enterNetns(t)
			l := tt.link()
			l.Attrs().Name = "hop0"
			addLink(t, l)
			if tun, ok := l.(*netlink.Tuntap); ok {
				t.Cleanup(func() {
					for _, f := range tun.Fds {
						f.Close()
					}
				})
			}
			if err := netlink.LinkSetMTU(mustLink(t, "hop0"), 1337); err != nil {
				t.Fatal(err)
			}
			before := mustLink(t, "hop0")
			mark := netip.MustParsePrefix("100.64.77.1/24")
			if err := netlink.AddrAdd(before, nlAddr(mark)); err != nil {
				t.Fatal(err)
			}

			i, err := Create(testConfig("hop0"), nil)
			if err == nil {
				i.Close()
				t.Fatalf("Create succeeded over a %s", tt.name)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Create: %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), "create hop0:") ||
				!strings.Contains(err.Error(), tt.wantKind) {
				t.Errorf("error %q does not name the interface and %q", err, tt.wantKind)
			}

			after, err := netlink.LinkByName("hop0")
			if err != nil {
				t.Fatalf("link hop0 gone: %v", err)
			}
			if after.Attrs().Index != before.Attrs().Index ||
				after.Attrs().MTU != 1337 || after.Attrs().Flags != before.Attrs().Flags {
				t.Errorf("link changed: before %+v, after %+v", before.Attrs(), after.Attrs())
			}
			got := testAddrs(t, after.Attrs().Index)
			if _, ok := got[mark]; !ok || len(got) != 1 {
				t.Errorf("addresses = %v, want only %s", got, mark)
			}
		})
	}
}

func TestCreateUndoesOnFailure(t *testing.T) {
	injected := errors.New("injected failure")
	tests := []struct {
		step string
		nth  int // fail on this occurrence of the step (1 = first)
	}{
		{step: stepCreate, nth: 1},
		{step: stepMTU, nth: 1},
		{step: stepAddress, nth: 1},
		{step: stepAddress, nth: 2},
		{step: stepUp, nth: 1},
		{step: stepRoute, nth: 1},
		{step: stepRoute, nth: 2},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s #%d", tt.step, tt.nth), func(t *testing.T) {
			enterNetns(t)
			var index, seen int
			hk := hooks{fail: func(step string) error {
				if l, err := netlink.LinkByName("hop0"); err == nil {
					index = l.Attrs().Index
				}
				if step == tt.step {
					if seen++; seen == tt.nth {
						return injected
					}
				}
				return nil
			}}
			i, err := create(testConfig("hop0"), nil, hk)
			if err == nil {
				i.Close()
				t.Fatalf("create succeeded despite the failure in %s", tt.step)
			}
			if !errors.Is(err, injected) {
				t.Errorf("error %v does not wrap the injected one", err)
			}
			if !strings.HasPrefix(err.Error(), tt.step) || !strings.Contains(err.Error(), "hop0") {
				t.Errorf("error %q does not name the step %q and hop0", err, tt.step)
			}
			if index == 0 {
				t.Fatal("the link never existed: the hook ran too early")
			}
			assertNothingLeft(t, "hop0", index)
		})
	}

	// The kernel refuses the IPv6 address after the IPv4 one went in.
	t.Run("kernel refuses an address", func(t *testing.T) {
		enterNetns(t)
		const knob = "/proc/sys/net/ipv6/conf/default/disable_ipv6"
		if err := os.WriteFile(knob, []byte("1"), 0); err != nil {
			t.Skipf("cannot disable IPv6 in the namespace: %v", err)
		}
		var index int
		hk := hooks{fail: func(step string) error {
			if step == stepAddress {
				index = mustLink(t, "hop0").Attrs().Index
			}
			return nil
		}}
		i, err := create(testConfig("hop0"), nil, hk)
		if err == nil {
			i.Close()
			t.Fatal("create succeeded with IPv6 disabled")
		}
		if !strings.Contains(err.Error(), "add address "+addr6.String()+" to hop0") {
			t.Errorf("error %q does not name the refused address", err)
		}
		if index == 0 {
			t.Fatal("the IPv4 address was never added")
		}
		assertNothingLeft(t, "hop0", index)
	})
}

// mustLink returns the link called name.
func mustLink(t *testing.T, name string) netlink.Link {
	t.Helper()
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return l
}

func TestMTUChangeIsTracked(t *testing.T) {
	enterNetns(t)
	i, rec := mustCreate(t, testConfig("hop0"))
	if err := netlink.LinkSetMTU(mustLink(t, "hop0"), 1380); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for i.MTU() != 1380 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if i.MTU() != 1380 {
		t.Fatalf("MTU() = %d after the link changed to 1380", i.MTU())
	}
	if rec.find("DEBUG mtu changed", "from=1420", "to=1380") == "" {
		t.Errorf("no Debug line for the MTU change")
	}
}

func TestOffloadsAndBatchSize(t *testing.T) {
	enterNetns(t)
	i, rec := mustCreate(t, testConfig("hop0"))
	off, err := probeOffloads("hop0")
	if err != nil {
		t.Fatalf("probe offloads: %v", err)
	}
	bs := i.Device.BatchSize()
	t.Logf("kernel %s: batch size %d, offloads %s", kernelRelease(t), bs, off)

	// The kernel here is new enough for virtio-net headers; without them the batch is 1.
	if bs != conn.IdealBatchSize {
		t.Errorf("BatchSize() = %d, want %d with offloads", bs, conn.IdealBatchSize)
	}
	if !off.checksum || !off.tso4 || !off.tso6 {
		t.Errorf("offloads = %s, want csum, tso4 and tso6", off)
	}
	if kernelAtLeast(t, 6, 2) && !off.uso {
		t.Errorf("offloads = %s, want uso on Linux 6.2 and later", off)
	}
	if rec.find("INFO interface up",
		fmt.Sprintf("batch_size=%d", bs), "offloads="+off.String()) == "" {
		t.Errorf("Info line lacks batch size and offloads")
	}
}

// kernelRelease returns uname -r.
func kernelRelease(t *testing.T) string {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	return unix.ByteSliceToString(u.Release[:])
}

// kernelAtLeast reports whether the running kernel is major.minor or newer.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	var ma, mi int
	if _, err := fmt.Sscanf(kernelRelease(t), "%d.%d", &ma, &mi); err != nil {
		t.Fatalf("parse kernel release: %v", err)
	}
	return ma > major || (ma == major && mi >= minor)
}

func TestExists(t *testing.T) {
	enterNetns(t)
	addLink(t, &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "bridge7"}})
	addLink(t, &netlink.Tuntap{
		LinkAttrs: netlink.LinkAttrs{Name: "tap7"},
		Mode:      netlink.TUNTAP_MODE_TAP,
	})
	tests := []struct {
		name     string
		wantKind string
		wantOK   bool
	}{
		{name: "bridge7", wantKind: "bridge", wantOK: true},
		{name: "tap7", wantKind: "tap", wantOK: true},
		{name: "lo", wantKind: "device", wantOK: true},
		{name: "absent0", wantKind: "", wantOK: false},
	}
	// Not subtests: Exists looks in the namespace of this goroutine's thread.
	for _, tt := range tests {
		kind, ok := Exists(tt.name)
		if kind != tt.wantKind || ok != tt.wantOK {
			t.Errorf("Exists(%q) = %q, %v; want %q, %v", tt.name, kind, ok, tt.wantKind, tt.wantOK)
		}
	}
}
