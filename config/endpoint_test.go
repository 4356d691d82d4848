package config

import (
	"net/netip"
	"strings"
	"testing"
)

// TestCheckEndpointAddr: the check the wg(8) socket shares with the config
// file refuses what no peer can have, and says why.
func TestCheckEndpointAddr(t *testing.T) {
	tests := []struct {
		ap   string
		want string // a substring of the error; "" for none
	}{
		{"192.0.2.1:51820", ""},
		{"[2001:db8::1]:51820", ""},
		{"[fe80::1%eth0]:51820", ""},
		{"192.0.2.1:0", `port "0" is not a number from 1 to 65535`},
		{"0.0.0.0:51820", "0.0.0.0 cannot be a peer's address"},
		{"[::]:51820", ":: cannot be a peer's address"},
		{"224.0.0.1:51820", "224.0.0.1 cannot be a peer's address"},
		{"239.255.255.250:1900", "cannot be a peer's address"},
		{"[ff02::1]:51820", "ff02::1 cannot be a peer's address"},
		{"255.255.255.255:51820", "255.255.255.255 cannot be a peer's address"},
		{"[::ffff:192.0.2.2]:51820", `write the IPv4 address, like "192.0.2.2:51820"`},
		{"[::ffff:0.0.0.0]:51820", "IPv4-mapped"},
	}
	for _, tt := range tests {
		t.Run(tt.ap, func(t *testing.T) {
			err := CheckEndpointAddr(netip.MustParseAddrPort(tt.ap))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && err == nil:
				t.Fatal("accepted")
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
		})
	}
	if CheckEndpointAddr(netip.AddrPort{}) == nil {
		t.Error("accepted the zero AddrPort")
	}
}

// TestEndpointChecksAgree: an endpoint written as text in the config file
// and the same endpoint given as an address are refused alike.
func TestEndpointChecksAgree(t *testing.T) {
	for _, s := range []string{
		"192.0.2.1:51820", "192.0.2.1:0", "0.0.0.0:1", "224.0.0.1:51820",
		"239.1.2.3:5", "255.255.255.255:51820", "255.255.255.254:51820",
		"[2001:db8::1]:51820", "[::]:51820", "[ff02::1]:51820", "[ff0e::1]:1",
		"[::ffff:192.0.2.2]:51820", "[::ffff:224.0.0.1]:51820", "[64:ff9b::c000:201]:1",
	} {
		text, addr := checkEndpoint(s), CheckEndpointAddr(netip.MustParseAddrPort(s))
		if (text == nil) != (addr == nil) {
			t.Errorf("%s: the config file says %v, CheckEndpointAddr says %v", s, text, addr)
		}
	}
}
