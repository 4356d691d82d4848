package tun

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Interface is a configured TUN link owned by this process.
//
// All methods may be called from any goroutine, also concurrently with each other and with
// the engine's use of Device. The only lock is mu; nothing is called with it held that
// takes another.
type Interface struct {
	// Device is the kernel TUN device. The engine reads packets from it and writes packets
	// to it; Device.BatchSize says how many packets one call may carry. The Interface owns
	// it: Close closes it, which makes a blocked Read return an error.
	Device wgtun.Device

	name      string
	index     atomic.Int32 // set once the link is found after creation; 0 before
	mtu       atomic.Int32 // last MTU seen on the link
	log       *slog.Logger
	nl        *netlink.Handle // rtnetlink, bound to the namespace the link lives in
	connected []netip.Prefix  // masked subnets of the addresses: the kernel routes these
	events    chan struct{}   // closed when the event drain goroutine returns

	mu       sync.Mutex                // guards the fields below and serializes rtnetlink changes
	addrs    []netip.Prefix            // addresses added, in order
	routes   map[netip.Prefix]struct{} // routes added, masked
	closed   bool
	closeErr error
}

// Steps of Create, named in errors and in test hooks.
const (
	stepCreate  = "create tun"
	stepMTU     = "set mtu"
	stepAddress = "add address"
	stepUp      = "set up"
	stepRoute   = "add route"
)

// hooks reach failure paths that are hard to provoke for real. Production uses the zero
// value.
type hooks struct {
	// skipCapCheck leaves the capability check to the kernel, so that its EPERM is seen.
	skipCapCheck bool
	// fail, if set, runs after each step of Create; an error from it fails that step.
	fail func(step string) error
}

// after runs the failure hook for step.
func (h hooks) after(step string) error {
	if h.fail == nil {
		return nil
	}
	return h.fail(step)
}

// Create creates the TUN interface cfg describes and configures it, in the network namespace
// of the calling thread; the Interface keeps working in that namespace afterwards. It logs
// at Info when it replaces a stale TUN and when the interface is up; log may be nil.
//
// On failure nothing Create added is left behind (a stale TUN it deleted stays deleted),
// and the error wraps ErrInvalidConfig, ErrNoTUNDevice, ErrNoNetAdmin, ErrLinkExists or
// ErrLinkInUse where one of them applies.
func Create(cfg Config, log *slog.Logger) (*Interface, error) {
	return create(cfg, log, hooks{})
}

// create is Create with test hooks.
// in6AddrGenModeNone is IN6_ADDR_GEN_MODE_NONE of linux/if_link.h: the
// kernel generates no IPv6 link-local address for the link.
const in6AddrGenModeNone = 1

func create(cfg Config, log *slog.Logger, hk hooks) (*Interface, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", cfg.Name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("tun", cfg.Name)

	if err := checkCloneDevice(); err != nil {
		return nil, fmt.Errorf("create %s: %w", cfg.Name, err)
	}
	if !hk.skipCapCheck {
		if err := checkNetAdmin(); err != nil {
			return nil, fmt.Errorf("create %s: %w", cfg.Name, err)
		}
	}

	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("create %s: open rtnetlink: %w", cfg.Name, err)
	}
	if err := claimName(h, cfg.Name, log); err != nil {
		h.Close()
		return nil, fmt.Errorf("create %s: %w", cfg.Name, err)
	}

	i := &Interface{
		name:   cfg.Name,
		log:    log,
		nl:     h,
		events: make(chan struct{}),
		routes: make(map[netip.Prefix]struct{}, len(cfg.Routes)),
	}
	for _, a := range cfg.Addresses {
		i.connected = append(i.connected, a.Masked())
	}
	if err := i.configure(cfg, hk); err != nil {
		if uerr := i.teardown(); uerr != nil {
			err = fmt.Errorf("%w; undo: %w", err, uerr)
		}
		return nil, err
	}
	return i, nil
}

// configure runs the steps of Create that change the system. Each records what it did in
// i, so that teardown can undo exactly that.
func (i *Interface) configure(cfg Config, hk hooks) error {
	if err := i.createDevice(cfg.MTU); err != nil {
		return err
	}
	if err := hk.after(stepCreate); err != nil {
		return fmt.Errorf("%s %s: %w", stepCreate, i.name, err)
	}

	link, err := i.nl.LinkByIndex(i.Index())
	if err == nil && link.Attrs().MTU != cfg.MTU {
		err = i.nl.LinkSetMTU(link, cfg.MTU)
	}
	if err == nil {
		err = hk.after(stepMTU)
	}
	if err != nil {
		return fmt.Errorf("%s of %s to %d: %w", stepMTU, i.name, cfg.MTU, classifyErrno(err))
	}
	i.mtu.Store(int32(cfg.MTU))

	for _, a := range cfg.Addresses {
		err := i.nl.AddrAdd(link, nlAddr(a))
		if err == nil {
			i.addrs = append(i.addrs, a)
			err = hk.after(stepAddress)
		}
		if err != nil {
			return fmt.Errorf("%s %s to %s: %w", stepAddress, a, i.name, classifyErrno(err))
		}
	}

	// No IPv6 link-local address: the overlay has no use for one, and
	// without it the kernel sends no solicitations into the tunnel, which
	// no peer could route. Not fatal: a host without IPv6 refuses this.
	if err := i.nl.LinkSetIP6AddrGenMode(link, in6AddrGenModeNone); err != nil {
		i.log.Debug("keep IPv6 link-local address", "err", err)
	}

	err = i.nl.LinkSetUp(link)
	if err == nil {
		err = hk.after(stepUp)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", stepUp, i.name, classifyErrno(err))
	}

	for _, r := range cfg.Routes {
		err := i.addRoute(r)
		if err == nil {
			err = hk.after(stepRoute)
		}
		if err != nil {
			return fmt.Errorf("%s %s via %s: %w", stepRoute, r, i.name, classifyErrno(err))
		}
	}

	off, err := probeOffloads(i.name)
	if err != nil {
		i.log.Debug("cannot read offloads", "err", err)
	}
	i.log.Info("interface up", "index", i.Index(), "mtu", cfg.MTU,
		"addresses", cfg.Addresses, "routes", len(i.routes),
		"batch_size", i.Device.BatchSize(), "offloads", off)
	return nil
}

// createDevice opens the TUN, starts draining its events and finds its link.
func (i *Interface) createDevice(mtu int) error {
	dev, err := wgtun.CreateTUN(i.name, mtu)
	if err != nil {
		// wgtun does not close the device on every failure path, so a link may exist
		// now. The name was free before, so a TUN with it can only be that one.
		if l, lerr := i.nl.LinkByName(i.name); lerr == nil && isTUN(l) {
			if derr := i.nl.LinkDel(l); derr != nil {
				err = fmt.Errorf("%w; delete half-created link: %w", err, derr)
			}
		}
		return fmt.Errorf("%s %s: %w", stepCreate, i.name, classifyErrno(err))
	}
	i.Device = dev
	go i.drainEvents()

	l, err := i.nl.LinkByName(i.name)
	if err != nil {
		return fmt.Errorf("%s %s: find link: %w", stepCreate, i.name, err)
	}
	if !isTUN(l) {
		return fmt.Errorf("%s %s: link is a %s, not a tun", stepCreate, i.name, linkKind(l))
	}
	i.index.Store(int32(l.Attrs().Index))
	return nil
}

// drainEvents consumes the device's events until Close closes the channel. The device
// reports every link change as a possible MTU change; only real changes are logged.
func (i *Interface) drainEvents() {
	defer close(i.events)
	up := false
	for ev := range i.Device.Events() {
		if ev&wgtun.EventUp != 0 && !up {
			up = true
			i.log.Debug("link running")
		}
		if ev&wgtun.EventDown != 0 && up {
			up = false
			i.log.Debug("link not running")
		}
		if ev&wgtun.EventMTUUpdate != 0 {
			i.refreshMTU()
		}
	}
}

// refreshMTU reads the link's MTU and records it if it changed.
func (i *Interface) refreshMTU() {
	index := int(i.index.Load())
	if index == 0 {
		return
	}
	l, err := i.nl.LinkByIndex(index)
	if err != nil {
		return
	}
	mtu := int32(l.Attrs().MTU)
	if old := i.mtu.Swap(mtu); old != mtu && old != 0 {
		i.log.Debug("mtu changed", "from", old, "to", mtu)
	}
}

// Name returns the interface name.
func (i *Interface) Name() string { return i.name }

// Index returns the kernel's index of the link.
func (i *Interface) Index() int { return int(i.index.Load()) }

// MTU returns the link's MTU, kept current from the device's events.
func (i *Interface) MTU() int { return int(i.mtu.Load()) }

// AddRoute routes p (masked) through the interface. Adding a route that exists, or one the
// kernel's connected route for an address already covers, does nothing. A route to the
// same prefix through another link is replaced.
func (i *Interface) AddRoute(p netip.Prefix) error {
	if err := validRoute(p); err != nil {
		return fmt.Errorf("%s %s via %s: %w", stepRoute, p, i.name, err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return fmt.Errorf("%s %s via %s: %w", stepRoute, p, i.name, ErrClosed)
	}
	if err := i.addRoute(p.Masked()); err != nil {
		return fmt.Errorf("%s %s via %s: %w", stepRoute, p, i.name, classifyErrno(err))
	}
	return nil
}

// RemoveRoute removes the route to p (masked) that AddRoute or Create added. Removing a
// route that is not there does nothing.
func (i *Interface) RemoveRoute(p netip.Prefix) error {
	if err := validRoute(p); err != nil {
		return fmt.Errorf("remove route %s via %s: %w", p, i.name, err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return fmt.Errorf("remove route %s via %s: %w", p, i.name, ErrClosed)
	}
	if err := i.delRoute(p.Masked()); err != nil {
		return fmt.Errorf("remove route %s via %s: %w", p, i.name, classifyErrno(err))
	}
	return nil
}

// addRoute installs the route to the masked prefix p and records it. A route to p that
// something else installed (the host's default route, say) is never replaced: taking
// it over could cut the host, and hoprd's own packets, off the underlay. The caller
// holds mu, or is Create.
func (i *Interface) addRoute(p netip.Prefix) error {
	if _, ok := i.routes[p]; ok {
		return nil
	}
	for _, c := range i.connected {
		if c == p {
			return nil
		}
	}
	if err := i.nl.RouteAdd(nlRoute(i.Index(), p)); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("%w: %s", ErrRouteExists, p)
		}
		return err
	}
	i.routes[p] = struct{}{}
	return nil
}

// delRoute removes a recorded route to the masked prefix p. The caller holds mu, or is
// Create.
func (i *Interface) delRoute(p netip.Prefix) error {
	if _, ok := i.routes[p]; !ok {
		return nil
	}
	if err := i.nl.RouteDel(nlRoute(i.Index(), p)); err != nil && !isGone(err) {
		return err
	}
	delete(i.routes, p)
	return nil
}

// Close removes the routes and addresses the Interface added and closes the device, which
// deletes the link. It returns the first call's result on every later call.
func (i *Interface) Close() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return i.closeErr
	}
	i.closed = true
	if err := i.teardown(); err != nil {
		i.closeErr = fmt.Errorf("close %s: %w", i.name, err)
	}
	return i.closeErr
}

// teardown undoes whatever configure and createDevice did, in reverse order, and carries on
// past failures. The caller holds mu, or is Create.
func (i *Interface) teardown() error {
	var errs []error
	for p := range i.routes {
		if err := i.delRoute(p); err != nil {
			errs = append(errs, fmt.Errorf("remove route %s: %w", p, err))
		}
	}
	for k := len(i.addrs) - 1; k >= 0; k-- {
		a := i.addrs[k]
		link := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: i.Index()}}
		if err := i.nl.AddrDel(link, nlAddr(a)); err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("remove address %s: %w", a, err))
		}
	}
	i.addrs = nil

	if i.Device != nil {
		// The device's netlink listener may end on its own between the two
		// steps of the device's Close (the shutdown flag, then a write to
		// wake the listener) when our own teardown's netlink events wake it
		// first, and the write then finds the wake-up pipe closed. That
		// listener is gone, as it should be: not a failure.
		if err := i.Device.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, fmt.Errorf("close tun: %w", err))
		}
		<-i.events
		if err := i.deleteLeftover(); err != nil {
			errs = append(errs, err)
		}
	}
	i.nl.Close()
	return errors.Join(errs...)
}

// deleteLeftover deletes the link if it outlived the device's last descriptor, which
// happens when something made it persistent. It is ours, so removing it is safe.
func (i *Interface) deleteLeftover() error {
	index := i.Index()
	if index == 0 {
		return nil
	}
	l, err := i.nl.LinkByIndex(index)
	if err != nil || l.Attrs().Name != i.name || !isTUN(l) {
		return nil
	}
	if err := i.nl.LinkDel(l); err != nil && !isGone(err) {
		return fmt.Errorf("delete link left after closing the tun: %w", err)
	}
	i.log.Info("deleted link that outlived its tun descriptor")
	return nil
}
