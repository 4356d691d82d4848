package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// maxInterfaceNameLen is the longest Linux interface name: IFNAMSIZ (16)
// less the terminating NUL.
const maxInterfaceNameLen = 15

// CheckInterfaceName checks a name the way the Linux kernel does when it
// registers a device (dev_valid_name), and also refuses control
// characters, which the kernel allows but which garble logs and tools.
func CheckInterfaceName(s string) error {
	switch {
	case s == "":
		return errors.New("empty: an interface needs a name, like \"hop0\"")
	case len(s) > maxInterfaceNameLen:
		return fmt.Errorf("%q is %d bytes long: Linux allows at most %d",
			s, len(s), maxInterfaceNameLen)
	case s == "." || s == "..":
		return fmt.Errorf("%q is not a valid interface name", s)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '/' || c == ':' || c == '%':
			return fmt.Errorf("%q contains %q, which Linux does not allow in an interface name",
				s, c)
		case c == ' ' || c >= '\t' && c <= '\r' || c == 0xa0:
			// 0xa0 is a space to the kernel's isspace.
			return fmt.Errorf("%q contains white space, which Linux does not allow "+
				"in an interface name", s)
		case c < 0x20 || c == 0x7f:
			return fmt.Errorf("%q contains a control character", s)
		}
	}
	return nil
}

// checkPeerName checks a peer's name: 1 to MaxPeerNameLen bytes, with no
// control characters, since it shows up in logs and status output.
func checkPeerName(s string) error {
	switch {
	case s == "":
		return errors.New("empty: a peer needs a name")
	case len(s) > MaxPeerNameLen:
		return fmt.Errorf("is %d bytes long: at most %d are allowed", len(s), MaxPeerNameLen)
	case strings.ContainsFunc(s, unicode.IsControl):
		return fmt.Errorf("%q contains a control character", s)
	}
	return nil
}

// checkEndpoint checks a peer endpoint: "host:port" with an IPv4 address
// or a DNS name, or "[addr]:port" with an IPv6 address; a link-local IPv6
// address carries its zone, "[fe80::1%eth0]:51820".
func checkEndpoint(s string) error {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return errors.New("missing ']' after the IPv6 address")
		}
		host, rest := s[1:end], s[end+1:]
		if rest == "" {
			return fmt.Errorf("missing port: write [%s]:51820", host)
		}
		if rest[0] != ':' {
			return errors.New("want ]:port after the IPv6 address")
		}
		if err := checkIPv6Host(host); err != nil {
			return err
		}
		return checkPort(rest[1:])
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return errors.New("missing port: write host:port, like \"vpn.example.com:51820\"")
	}
	host, port := s[:i], s[i+1:]
	if strings.IndexByte(host, ':') >= 0 {
		return errors.New("an IPv6 endpoint needs brackets around the address, " +
			"like \"[2001:db8::1]:51820\"")
	}
	if host == "" {
		return errors.New("missing host before the port")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if err := checkEndpointIP(a); err != nil {
			return err
		}
	} else if err := checkHostname(host); err != nil {
		return err
	}
	return checkPort(port)
}

// CheckEndpointAddr checks a peer endpoint given as an address and a port,
// as the config file's endpoint key checks one written as text: it refuses
// port 0 and an address no peer can have (unspecified, multicast, the IPv4
// broadcast address, or an IPv4-mapped IPv6 address, which is written as
// the IPv4 address). It leaves zones alone. The wg(8) configuration socket
// checks its endpoints with it too.
func CheckEndpointAddr(ap netip.AddrPort) error {
	if err := checkEndpointIP(ap.Addr()); err != nil {
		return err
	}
	if ap.Port() == 0 {
		return errors.New(`port "0" is not a number from 1 to 65535`)
	}
	return nil
}

// ipv4Broadcast is the limited broadcast address, 255.255.255.255.
var ipv4Broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// checkEndpointIP refuses an address no peer can have.
func checkEndpointIP(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return errors.New("missing address")
	case a.Is4In6():
		return fmt.Errorf("%v is an IPv4-mapped IPv6 address: write the IPv4 address, "+
			"like \"%v:51820\"", a.WithZone(""), a.Unmap().WithZone(""))
	case a.IsUnspecified() || a.IsMulticast() || a == ipv4Broadcast:
		return fmt.Errorf("%v cannot be a peer's address", a)
	}
	return nil
}

// checkIPv6Host checks the address between the brackets of an endpoint.
func checkIPv6Host(host string) error {
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is6() || a.Is4In6() {
		return fmt.Errorf("[%s] is not an IPv6 address", host)
	}
	if err := checkEndpointIP(a); err != nil {
		return err
	}
	linkLocal := a.IsLinkLocalUnicast()
	switch zone := a.Zone(); {
	case zone == "" && linkLocal:
		return fmt.Errorf("link-local address %v needs a zone naming the interface, "+
			"like [%v%%eth0]", a, a)
	case zone != "" && !linkLocal:
		return fmt.Errorf("only a link-local address takes a zone, not %v", a.WithZone(""))
	case zone != "":
		if err := CheckInterfaceName(zone); err != nil {
			return fmt.Errorf("zone: %w", err)
		}
	}
	return nil
}

// checkPort checks a port number of an endpoint: 1 to 65535, in decimal.
func checkPort(s string) error {
	if s == "" {
		return errors.New("missing port after ':'")
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' || n > 65535 {
			return fmt.Errorf("port %q is not a number from 1 to 65535", s)
		}
		n = n*10 + int(s[i]-'0')
	}
	if n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return nil
}

// checkHostname checks a DNS name (RFC 1123): dot-separated labels of
// letters, digits and hyphens, 1 to 63 bytes each, 253 in all, with an
// optional final dot. A name whose last label is all digits is refused: it
// is a mistyped IPv4 address, such as "10.0.0.256", more often than a name.
func checkHostname(s string) error {
	bad := fmt.Errorf("%q is neither an IP address nor a valid DNS name", s)
	name := strings.TrimSuffix(s, ".")
	if name == "" || len(name) > 253 {
		return bad
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return bad
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
				c == '-') {
				return bad
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" {
		return bad
	}
	return nil
}

// durationUnits are the units of formatDuration above nanoseconds, longest
// first.
var durationUnits = []struct {
	d    time.Duration
	name string
}{
	{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"},
	{time.Millisecond, "ms"}, {time.Microsecond, "us"},
}

// formatDuration writes d the way a config file would: a whole number of
// the longest unit that measures d exactly ("10m", "50ms", "65535s"),
// rather than as time.Duration.String does ("10m0s", "18h12m15s").
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	for _, u := range durationUnits {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}
