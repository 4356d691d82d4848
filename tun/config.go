package tun

import (
	"fmt"
	"net/netip"
	"strings"
)

// Interface limits and defaults.
const (
	// DefaultMTU is the MTU used when Config.MTU is 0: 1500 bytes minus the overhead of an
	// IPv6 header, a UDP header and hoprd's transport header and tag.
	DefaultMTU = 1420

	// minMTU and maxMTU are the bounds the kernel's TUN driver accepts.
	minMTU = 68
	maxMTU = 65535

	// minMTUIPv6 is the smallest MTU on which the kernel keeps IPv6 enabled; below it the
	// link loses its IPv6 addresses.
	minMTUIPv6 = 1280

	// maxNameLen is the longest interface name Linux accepts (IFNAMSIZ minus the NUL).
	maxNameLen = 15
)

// Config says what the interface should look like.
type Config struct {
	// Name is the interface name: 1 to 15 bytes, without '/', ':', '%' or white space.
	Name string

	// MTU is the link MTU; 0 means DefaultMTU. With any IPv6 address or route it must be
	// at least 1280.
	MTU int

	// Addresses are the interface's own addresses, each with the length of its subnet, for
	// example 100.64.0.1/24 and fd7a:686f:7072::1/64. The kernel adds the connected route
	// for each subnet.
	Addresses []netip.Prefix

	// Routes are the peers' allowed IPs. Each gets a route through the interface, except
	// one equal to the subnet of an address, which the kernel's connected route covers.
	Routes []netip.Prefix
}

// validate checks cfg and returns it with MTU defaulted and routes masked. Errors wrap
// ErrInvalidConfig.
func (cfg Config) validate() (Config, error) {
	if err := validName(cfg.Name); err != nil {
		return cfg, err
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < minMTU || cfg.MTU > maxMTU {
		return cfg, fmt.Errorf("%w: mtu %d outside %d..%d",
			ErrInvalidConfig, cfg.MTU, minMTU, maxMTU)
	}

	ipv6 := false
	seen := make(map[netip.Addr]bool, len(cfg.Addresses))
	for _, a := range cfg.Addresses {
		if err := validAddress(a); err != nil {
			return cfg, err
		}
		if seen[a.Addr()] {
			return cfg, fmt.Errorf("%w: address %s given twice", ErrInvalidConfig, a.Addr())
		}
		seen[a.Addr()] = true
		ipv6 = ipv6 || a.Addr().Is6()
	}

	routes := make([]netip.Prefix, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		if err := validRoute(r); err != nil {
			return cfg, err
		}
		routes = append(routes, r.Masked())
		ipv6 = ipv6 || r.Addr().Is6()
	}
	cfg.Routes = routes

	if ipv6 && cfg.MTU < minMTUIPv6 {
		return cfg, fmt.Errorf("%w: mtu %d below %d, the IPv6 minimum",
			ErrInvalidConfig, cfg.MTU, minMTUIPv6)
	}
	return cfg, nil
}

// validName applies the kernel's rules for interface names, and refuses '%', which would
// make the kernel pick a name from a template.
func validName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty interface name", ErrInvalidConfig)
	case len(name) > maxNameLen:
		return fmt.Errorf("%w: interface name %q longer than %d bytes",
			ErrInvalidConfig, name, maxNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("%w: interface name %q", ErrInvalidConfig, name)
	case strings.ContainsAny(name, "/:%\x00") ||
		strings.IndexFunc(name, isSpace) >= 0:
		return fmt.Errorf("%w: interface name %q has a '/', ':', '%%' or space",
			ErrInvalidConfig, name)
	}
	return nil
}

// isSpace matches what the kernel's isspace() does for interface names.
func isSpace(r rune) bool {
	return r == ' ' || (r >= '\t' && r <= '\r')
}

// validAddress checks one interface address.
func validAddress(a netip.Prefix) error {
	switch ip := a.Addr(); {
	case !a.IsValid():
		return fmt.Errorf("%w: address %s", ErrInvalidConfig, a)
	case ip.Is4In6():
		return fmt.Errorf("%w: address %s is IPv4-mapped; give it as IPv4",
			ErrInvalidConfig, a)
	case ip.IsUnspecified() || ip.IsMulticast():
		return fmt.Errorf("%w: address %s cannot be assigned to an interface",
			ErrInvalidConfig, a)
	}
	return nil
}

// validRoute checks one route prefix. Host bits may be set; the route uses the masked
// prefix.
func validRoute(r netip.Prefix) error {
	switch {
	case !r.IsValid():
		return fmt.Errorf("%w: route %s", ErrInvalidConfig, r)
	case r.Addr().Is4In6():
		return fmt.Errorf("%w: route %s is IPv4-mapped; give it as IPv4", ErrInvalidConfig, r)
	}
	return nil
}
