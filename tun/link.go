package tun

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Exists reports whether a link called name exists in the calling thread's network
// namespace and, if so, its kind: "tun" or "tap" for TUN/TAP devices, otherwise the kind
// rtnetlink reports ("dummy", "veth", "bridge", ...; "device" for hardware). A lookup
// that fails for any reason other than a missing link also reports false.
func Exists(name string) (kind string, ok bool) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return "", false
	}
	return linkKind(l), true
}

// linkKind names the kind of l the way ip-link(8) does for TUN and TAP devices.
func linkKind(l netlink.Link) string {
	if tt, ok := l.(*netlink.Tuntap); ok {
		switch tt.Mode {
		case netlink.TUNTAP_MODE_TUN:
			return "tun"
		case netlink.TUNTAP_MODE_TAP:
			return "tap"
		}
	}
	return l.Type()
}

// isTUN reports whether l is a TUN device (not a TAP).
func isTUN(l netlink.Link) bool {
	tt, ok := l.(*netlink.Tuntap)
	return ok && tt.Mode == netlink.TUNTAP_MODE_TUN
}

// isStaleTUN reports whether l is a TUN that no process uses: persistent, without carrier
// and with no queue attached. The kernel turns the carrier on when a process attaches and
// off when the last one detaches; it reports queue counts only for multi-queue devices. A
// TUN that is not persistent always has a process attached (the kernel deletes it with the
// last descriptor), so it is never stale.
func isStaleTUN(l netlink.Link, carrier bool) bool {
	tt, ok := l.(*netlink.Tuntap)
	return ok && tt.Mode == netlink.TUNTAP_MODE_TUN && !tt.NonPersist && !carrier &&
		tt.Queues == 0 && tt.DisabledQueues == 0
}

// hasCarrier reads the carrier state (IFLA_CARRIER) of the link with the given index in
// the calling thread's network namespace; the netlink package does not decode it.
func hasCarrier(index int) (bool, error) {
	rib, err := syscall.NetlinkRIB(unix.RTM_GETLINK, unix.AF_UNSPEC)
	if err != nil {
		return false, err
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return false, err
	}
	for k := range msgs {
		m := &msgs[k]
		if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg {
			continue
		}
		info := (*unix.IfInfomsg)(unsafe.Pointer(&m.Data[0]))
		if int(info.Index) != index {
			continue
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(m)
		if err != nil {
			return false, err
		}
		for _, a := range attrs {
			if a.Attr.Type == unix.IFLA_CARRIER && len(a.Value) == 1 {
				return a.Value[0] != 0, nil
			}
		}
		return false, fmt.Errorf("link %d: no carrier attribute", index)
	}
	return false, fmt.Errorf("link %d: not in the link dump", index)
}

// claimName makes sure no link called name exists: it deletes a stale TUN of that name and
// refuses to touch anything else.
func claimName(h *netlink.Handle, name string, log *slog.Logger) error {
	l, err := h.LinkByName(name)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up link: %w", classifyErrno(err))
	}
	index := l.Attrs().Index
	if !isTUN(l) {
		return fmt.Errorf("%w (kind %s, index %d)", ErrLinkExists, linkKind(l), index)
	}
	carrier, err := hasCarrier(index)
	if err != nil {
		return fmt.Errorf("inspect existing tun: %w", err)
	}
	if !isStaleTUN(l, carrier) {
		return fmt.Errorf("%w (index %d)", ErrLinkInUse, index)
	}
	if err := h.LinkDel(l); err != nil {
		return fmt.Errorf("delete stale tun: %w", classifyErrno(err))
	}
	log.Info("took over a stale tun left by an earlier run", "old_index", index)
	return nil
}

// ipNet converts a prefix to the form netlink takes, keeping host bits.
func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}
}

// nlAddr is the netlink form of an interface address. IPv6 addresses skip duplicate
// address detection so they are usable at once; IPv4 addresses get no broadcast address,
// which a point-to-point link has no use for.
func nlAddr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: ipNet(p)}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	} else {
		a.Broadcast = net.IPv4zero
	}
	return a
}

// nlRoute is the netlink form of a route to p through the link with the given index.
func nlRoute(index int, p netip.Prefix) *netlink.Route {
	return &netlink.Route{
		LinkIndex: index,
		Dst:       ipNet(p.Masked()),
		Scope:     netlink.SCOPE_LINK,
	}
}

// isGone reports whether err says that the object a delete request named no longer exists.
func isGone(err error) bool {
	return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENODEV) ||
		errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENOENT) ||
		errors.As(err, new(netlink.LinkNotFoundError))
}
