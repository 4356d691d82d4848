package tun

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	pfx := netip.MustParsePrefix
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // "" for valid
	}{
		{name: "dual stack", cfg: testConfig("hop0")},
		{name: "no addresses or routes", cfg: Config{Name: "hop0"}},
		{name: "ipv4 only with small mtu",
			cfg: Config{Name: "hop0", MTU: 576, Addresses: []netip.Prefix{addr4}}},
		{name: "fifteen byte name", cfg: Config{Name: "hop456789012345"}},
		{name: "empty name", cfg: Config{}, wantErr: "empty interface name"},
		{name: "long name", cfg: Config{Name: "hop4567890123456"}, wantErr: "longer than 15"},
		{name: "dot", cfg: Config{Name: "."}, wantErr: `name "."`},
		{name: "slash", cfg: Config{Name: "hop/0"}, wantErr: "'/'"},
		{name: "colon", cfg: Config{Name: "hop:0"}, wantErr: "'/'"},
		{name: "template", cfg: Config{Name: "hop%d"}, wantErr: "'%'"},
		{name: "space", cfg: Config{Name: "hop 0"}, wantErr: "space"},
		{name: "tab", cfg: Config{Name: "hop\t0"}, wantErr: "space"},
		{name: "mtu too small", cfg: Config{Name: "hop0", MTU: 67}, wantErr: "mtu 67 outside"},
		{name: "mtu too large", cfg: Config{Name: "hop0", MTU: 65536},
			wantErr: "mtu 65536 outside"},
		{name: "ipv6 address under 1280",
			cfg:     Config{Name: "hop0", MTU: 1279, Addresses: []netip.Prefix{addr6}},
			wantErr: "below 1280"},
		{name: "ipv6 route under 1280",
			cfg:     Config{Name: "hop0", MTU: 1200, Routes: []netip.Prefix{peer6}},
			wantErr: "below 1280"},
		{name: "invalid address",
			cfg:     Config{Name: "hop0", Addresses: []netip.Prefix{{}}},
			wantErr: "address invalid Prefix"},
		{name: "mapped address",
			cfg:     Config{Name: "hop0", Addresses: []netip.Prefix{pfx("::ffff:100.64.0.1/120")}},
			wantErr: "IPv4-mapped"},
		{name: "unspecified address",
			cfg:     Config{Name: "hop0", Addresses: []netip.Prefix{pfx("0.0.0.0/8")}},
			wantErr: "cannot be assigned"},
		{name: "multicast address",
			cfg:     Config{Name: "hop0", Addresses: []netip.Prefix{pfx("ff02::1/64")}},
			wantErr: "cannot be assigned"},
		{name: "duplicate address",
			cfg: Config{Name: "hop0",
				Addresses: []netip.Prefix{addr4, pfx("100.64.0.1/16")}},
			wantErr: "given twice"},
		{name: "invalid route",
			cfg:     Config{Name: "hop0", Routes: []netip.Prefix{{}}},
			wantErr: "route invalid Prefix"},
		{name: "mapped route",
			cfg:     Config{Name: "hop0", Routes: []netip.Prefix{pfx("::ffff:100.64.0.0/106")}},
			wantErr: "IPv4-mapped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cfg.validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("validate = %v, want ErrInvalidConfig mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigValidateNormalizes(t *testing.T) {
	cfg := Config{
		Name:      "hop0",
		Addresses: []netip.Prefix{addr4},
		Routes:    []netip.Prefix{netip.MustParsePrefix("100.64.1.9/24")},
	}
	got, err := cfg.validate()
	if err != nil {
		t.Fatal(err)
	}
	if got.MTU != DefaultMTU {
		t.Errorf("MTU = %d, want %d", got.MTU, DefaultMTU)
	}
	if want := []netip.Prefix{peer4}; !slices.Equal(got.Routes, want) {
		t.Errorf("Routes = %v, want %v", got.Routes, want)
	}
	if got.Addresses[0] != addr4 {
		t.Errorf("address changed to %s: host bits must stay", got.Addresses[0])
	}
}

func TestCreateRejectsInvalidConfigFirst(t *testing.T) {
	// Validation needs no privilege and runs before anything touches the system.
	_, err := Create(Config{Name: "hop0", MTU: 10}, nil)
	if !errors.Is(err, ErrInvalidConfig) || !strings.HasPrefix(err.Error(), "create hop0: ") {
		t.Fatalf("Create = %v, want ErrInvalidConfig prefixed with the operation", err)
	}
}
