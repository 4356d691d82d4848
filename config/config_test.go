package config

import (
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Public keys of test peers, and malformed variants of them.
const (
	pubA = "LWbd31SBju+z/OHHu2b6uDDirA6apwIQay6d+VSgJy4="
	pubB = "L45bo4lcZjSHDwc5GxLSlWxZk/+tPhy01cOnKqYEch8="
	// 44 characters that decode to 31 bytes ("==" padding) and to 33
	// bytes (no padding).
	key31 = "LWbd31SBju+z/OHHu2b6uDDirA6apwIQay6d+VSgJw=="
	key33 = "LWbd31SBju+z/OHHu2b6uDDirA6apwIQay6d+VSgJy4A"
	// A point of small order: X25519 with it gives all zeros whatever the
	// private key, so no handshake can complete. The second sets the top
	// bit, which X25519 ignores.
	keySmallOrder     = "4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA="
	keySmallOrderHigh = "4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuIA="
	// 44 characters outside the base64 alphabet.
	keyBadChars = "LWbd31SBju+z/OHHu2b6uDDirA6apwIQay6d+VSg!y4="
)

// doc joins lines into a document, so that lines[i] is on line i+1.
func doc(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// iface returns a valid [interface] table on lines 1 to 4, then more.
func iface(more ...string) string {
	return doc(append([]string{
		`[interface]`,
		`name = "hop0"`,
		`private_key_file = "key"`,
		`address = ["100.64.0.1/24"]`,
	}, more...)...)
}

// peer returns the lines of a [[peer]] table: header, name, public_key,
// allowed_ips, then more.
func peer(name, key, allowed string, more ...string) []string {
	return append([]string{
		`[[peer]]`,
		`name = "` + name + `"`,
		`public_key = "` + key + `"`,
		`allowed_ips = [` + allowed + `]`,
	}, more...)
}

// peers concatenates the lines of several peers.
func peers(ps ...[]string) []string { return slices.Concat(ps...) }

// withPeer is iface with one peer (lines 5 to 8) and more lines of it.
func withPeer(more ...string) string {
	return iface(peer("beta", pubA, `"100.64.0.2/32"`, more...)...)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		line int
		key  string
		msg  string // a substring of Error.Msg
	}{
		// Unknown keys.
		{"unknown top-level key", "colour = 1\n" + iface(), 1, "colour", "unknown key"},
		{"unknown interface key", iface(`listen = 1`), 5, "interface.listen",
			"unknown key; did you mean \"listen_port\"?"},
		{"key in the wrong case", iface(`MTU = 1400`), 5, "interface.MTU",
			`did you mean "mtu"?`},
		{"unknown key far from any", iface(`colour = "red"`), 5, "interface.colour",
			"the keys here are name, private_key_file"},
		{"unknown peer key", withPeer(`pubkey = "x"`), 9, "peer[1].pubkey",
			`did you mean "public_key"?`},
		{"unknown key in second peer",
			iface(peers(peer("a", pubA, ""), peer("b", pubB, "", `endpoit = "x:1"`))...),
			13, "peer[2].endpoit", `did you mean "endpoint"?`},
		{"unknown subtable", iface(`[interface.extra]`, `x = 1`), 5, "interface.extra",
			"unknown key"},

		// Missing keys and tables.
		{"no interface", doc(peer("beta", pubA, "")...), 0, "interface", "[interface]"},
		{"no interface name", doc(`[interface]`, `private_key_file = "k"`), 1,
			"interface.name", "required"},
		{"no private key file", doc(`[interface]`, `name = "hop0"`), 1,
			"interface.private_key_file", "required"},
		{"no peer name", iface(`[[peer]]`, `public_key = "`+pubA+`"`), 5, "peer[1].name",
			"required"},
		{"no peer key", iface(`[[peer]]`, `name = "beta"`), 5, "peer[1].public_key",
			"required"},
		{"misspelt required key", iface(`[[peer]]`, `name = "beta"`, `publickey = "x"`), 5,
			"peer[1].public_key", `is "publickey" on line 7 a misspelling of it?`},
		{"misspelt key file", doc(`[interface]`, `name = "hop0"`, `private_keyfile = "k"`), 1,
			"interface.private_key_file", `is "private_keyfile" on line 3 a misspelling`},

		// Table shapes and types.
		{"peer as a table", iface(`[peer]`, `name = "beta"`), 5, "peer", "[[peer]]"},
		{"interface as an array", doc(`[[interface]]`, `name = "hop0"`), 1, "interface",
			"want one table"},
		{"peer array of numbers", "peer = [1]\n" + iface(), 1, "peer[1]", "want a table"},
		{"name is a number", doc(`[interface]`, `name = 0`, `private_key_file = "k"`), 2,
			"interface.name", "want a string, got an integer"},
		{"address is a string", iface(`listen_port = "51820"`), 5, "interface.listen_port",
			"want an integer, got a string"},
		{"address element not a string",
			doc(`[interface]`, `name = "hop0"`, `private_key_file = "k"`,
				`address = [`, `  "100.64.0.1/24",`, `  7,`, `]`),
			6, "interface.address", "element 2: want a string, got an integer"},
		{"allowed_ips not an array", iface(peers(peer("beta", pubA, ""),
			[]string{`endpoint = ["a"]`})...), 9, "peer[1].endpoint", "want a string"},

		// TOML syntax.
		{"duplicate key", iface(`name = "hop1"`), 5, "", "invalid TOML"},
		{"unterminated string", doc(`[interface]`, `name = "hop0`), 2, "", "invalid TOML"},
		{"unclosed table array header", iface(`[[peer]`, `name = "b"`), 5, "", "invalid TOML"},
		{"unclosed table header", doc(`[interface`, `name = "hop0"`), 1, "", "invalid TOML"},

		// Interface name.
		{"empty name", doc(`[interface]`, `name = ""`, `private_key_file = "k"`), 2,
			"interface.name", "empty"},
		{"16-byte name", doc(`[interface]`, `name = "abcdefghijklmnop"`,
			`private_key_file = "k"`), 2, "interface.name", "at most 15"},
		{"name with slash", doc(`[interface]`, `name = "hop/0"`, `private_key_file = "k"`),
			2, "interface.name", `'/'`},
		{"name with colon", doc(`[interface]`, `name = "hop:0"`, `private_key_file = "k"`),
			2, "interface.name", `':'`},
		{"name with space", doc(`[interface]`, `name = "hop 0"`, `private_key_file = "k"`),
			2, "interface.name", "white space"},
		{"name dot-dot", doc(`[interface]`, `name = ".."`, `private_key_file = "k"`),
			2, "interface.name", "not a valid interface name"},

		// Interface values.
		{"address without length", doc(`[interface]`, `name = "hop0"`,
			`private_key_file = "k"`, `address = ["100.64.0.1"]`), 4, "interface.address",
			"not an address with a prefix length"},
		{"address octet too big", doc(`[interface]`, `name = "hop0"`,
			`private_key_file = "k"`, `address = ["100.64.0.300/24"]`), 4,
			"interface.address", "not an address with a prefix length"},
		{"address length too big", doc(`[interface]`, `name = "hop0"`,
			`private_key_file = "k"`, `address = ["100.64.0.1/33"]`), 4,
			"interface.address", "not an address with a prefix length"},
		{"address twice", doc(`[interface]`, `name = "hop0"`, `private_key_file = "k"`,
			`address = ["100.64.0.1/24", "100.64.0.1/16"]`), 4, "interface.address",
			"listed twice"},
		{"listen_port too big", iface(`listen_port = 65536`), 5, "interface.listen_port",
			"out of range"},
		{"listen_port negative", iface(`listen_port = -1`), 5, "interface.listen_port",
			"out of range"},
		{"mtu too small", iface(`mtu = 575`), 5, "interface.mtu", "want 576 to 65471"},
		{"mtu too big", iface(`mtu = 65472`), 5, "interface.mtu", "at most 65471"},
		{"mtu too small for IPv6", doc(`[interface]`, `name = "hop0"`,
			`private_key_file = "k"`, `address = ["fd00::1/64"]`, `mtu = 1279`), 5,
			"interface.mtu", "too small for an interface with an IPv6 address"},
		{"hop_interval 10ms", iface(`hop_interval = "10ms"`), 5, "interface.hop_interval",
			"10ms is out of range: want 50ms to 10m"},
		{"hop_interval 11m", iface(`hop_interval = "11m"`), 5, "interface.hop_interval",
			"11m is out of range: want 50ms to 10m"},
		{"hop_interval just under", iface(`hop_interval = "49.999ms"`), 5,
			"interface.hop_interval", "49.999ms is out of range: want 50ms to 10m"},
		{"hop_interval abc", iface(`hop_interval = "abc"`), 5, "interface.hop_interval",
			"not a duration"},
		{"hop_interval number", iface(`hop_interval = 1`), 5, "interface.hop_interval",
			`want a duration as a string with its unit, like "1s"; got an integer`},
		{"keepalive number", withPeer(`persistent_keepalive = 25`), 9,
			"peer[1].persistent_keepalive", `like "25s"; got an integer`},
		{"hop_interval float", iface(`hop_interval = 0.5`), 5, "interface.hop_interval",
			`like "0.5s"; got a float`},
		{"hop_interval bool", iface(`hop_interval = true`), 5, "interface.hop_interval",
			"want a string, got a boolean"},
		{"empty key path", doc(`[interface]`, `name = "hop0"`, `private_key_file = ""`), 3,
			"interface.private_key_file", "want a file path"},

		// Peer keys.
		{"key not base64", iface(peer("beta", keyBadChars, "")...), 7,
			"peer[1].public_key", "not standard base64"},
		{"key of 43 characters", iface(peer("beta", pubA[:43], "")...), 7,
			"peer[1].public_key", "want 44 base64 characters, got 43"},
		{"key decoding to 31 bytes", iface(peer("beta", key31, "")...), 7,
			"peer[1].public_key", "want 32 bytes, got 31"},
		{"key decoding to 33 bytes", iface(peer("beta", key33, "")...), 7,
			"peer[1].public_key", "want 32 bytes, got 33"},
		{"all-zero key", iface(peer("beta", strings.Repeat("A", 43)+"=", "")...), 7,
			"peer[1].public_key", "all-zero"},
		{"small-order key", iface(peer("beta", keySmallOrder, "")...), 7,
			"peer[1].public_key", "a point of small order (a weak key)"},
		{"small-order key, top bit set", iface(peer("beta", keySmallOrderHigh, "")...), 7,
			"peer[1].public_key", "a point of small order (a weak key)"},
		{"u = 1", iface(peer("beta", "AQ"+strings.Repeat("A", 41)+"=", "")...), 7,
			"peer[1].public_key", "a point of small order (a weak key)"},
		{"two peers with one key",
			iface(peers(peer("a", pubA, ""), peer("b", pubA, ""))...), 11,
			"peer[2].public_key", "already given at peer[1].public_key, line 7"},
		{"two peers with one name",
			iface(peers(peer("a", pubA, ""), peer("a", pubB, ""))...), 10,
			"peer[2].name", `"a" is already used at peer[1].name, line 6`},
		{"empty peer name", iface(peer("", pubA, "")...), 6, "peer[1].name", "empty"},
		{"long peer name", iface(peer(strings.Repeat("n", 65), pubA, "")...), 6,
			"peer[1].name", "at most 64"},
		{"control character in peer name", iface(peer(`a\tb`, pubA, "")...), 6,
			"peer[1].name", "control character"},

		// Allowed IPs.
		{"allowed_ips host bits", iface(peer("beta", pubA, `"10.0.0.1/24"`)...), 8,
			"peer[1].allowed_ips", `host bits set; did you mean "10.0.0.0/24"?`},
		{"allowed_ips IPv6 host bits", iface(peer("beta", pubA, `"fd00::1/64"`)...), 8,
			"peer[1].allowed_ips", `did you mean "fd00::/64"?`},
		{"allowed_ips not a prefix", iface(peer("beta", pubA, `"10.0.0.0"`)...), 8,
			"peer[1].allowed_ips", "not a prefix"},
		{"allowed_ips error on its element's line", iface(`[[peer]]`, `name = "beta"`,
			`public_key = "`+pubA+`"`, `allowed_ips = [`, `  "10.0.0.0/24",`,
			`  "10.1.0.0/33",`, `]`), 10, "peer[1].allowed_ips", `"10.1.0.0/33"`},
		{"two peers with one prefix",
			iface(peers(peer("a", pubA, `"10.0.0.0/24"`),
				peer("b", pubB, `"10.1.0.0/24", "10.0.0.0/24"`))...),
			12, "peer[2].allowed_ips", "10.0.0.0/24 is already routed at peer[1].allowed_ips[1]"},
		{"one prefix twice in a peer", iface(peer("a", pubA,
			`"10.0.0.0/24", "10.0.0.0/24"`)...), 8, "peer[1].allowed_ips", "already routed"},

		// Endpoints.
		{"endpoint without port", withPeer(`endpoint = "192.0.2.1"`), 9, "peer[1].endpoint",
			"missing port"},
		{"DNS endpoint without port", withPeer(`endpoint = "vpn.example.com"`), 9,
			"peer[1].endpoint", "missing port"},
		{"IPv6 endpoint without brackets", withPeer(`endpoint = "2001:db8::1:51820"`), 9,
			"peer[1].endpoint", "needs brackets"},
		{"bracketed endpoint without port", withPeer(`endpoint = "[2001:db8::1]"`), 9,
			"peer[1].endpoint", "missing port"},
		{"link-local endpoint without zone", withPeer(`endpoint = "[fe80::1]:51820"`), 9,
			"peer[1].endpoint", "needs a zone"},
		{"zone on a global address", withPeer(`endpoint = "[2001:db8::1%eth0]:51820"`), 9,
			"peer[1].endpoint", "only a link-local address takes a zone"},
		{"bad zone", withPeer(`endpoint = "[fe80::1%a/b]:51820"`), 9,
			"peer[1].endpoint", "zone"},
		{"IPv4 in brackets", withPeer(`endpoint = "[192.0.2.1]:51820"`), 9,
			"peer[1].endpoint", "not an IPv6 address"},
		{"port zero", withPeer(`endpoint = "192.0.2.1:0"`), 9, "peer[1].endpoint",
			"not a number from 1 to 65535"},
		{"port too big", withPeer(`endpoint = "192.0.2.1:65536"`), 9, "peer[1].endpoint",
			"not a number from 1 to 65535"},
		{"port with sign", withPeer(`endpoint = "192.0.2.1:+1"`), 9, "peer[1].endpoint",
			"not a number"},
		{"mistyped IPv4 endpoint", withPeer(`endpoint = "10.0.0.256:51820"`), 9,
			"peer[1].endpoint", "neither an IP address nor a valid DNS name"},
		{"bad DNS label", withPeer(`endpoint = "-vpn.example.com:51820"`), 9,
			"peer[1].endpoint", "neither an IP address nor a valid DNS name"},
		{"unspecified endpoint", withPeer(`endpoint = "0.0.0.0:51820"`), 9,
			"peer[1].endpoint", "cannot be a peer's address"},
		{"broadcast endpoint", withPeer(`endpoint = "255.255.255.255:51820"`), 9,
			"peer[1].endpoint", "255.255.255.255 cannot be a peer's address"},
		{"multicast endpoint", withPeer(`endpoint = "224.0.0.1:51820"`), 9,
			"peer[1].endpoint", "224.0.0.1 cannot be a peer's address"},
		{"IPv6 multicast endpoint", withPeer(`endpoint = "[ff02::1]:51820"`), 9,
			"peer[1].endpoint", "ff02::1 cannot be a peer's address"},
		{"IPv4-mapped endpoint", withPeer(`endpoint = "[::ffff:192.0.2.2]:51820"`), 9,
			"peer[1].endpoint", "not an IPv6 address"},

		// Other peer values.
		{"keepalive under a second", withPeer(`persistent_keepalive = "500ms"`), 9,
			"peer[1].persistent_keepalive",
			"500ms is out of range: want 0 (off) or 1s to 65535s"},
		{"keepalive too long", withPeer(`persistent_keepalive = "65536s"`), 9,
			"peer[1].persistent_keepalive",
			"65536s is out of range: want 0 (off) or 1s to 65535s"},
		{"keepalive fraction", withPeer(`persistent_keepalive = "1500ms"`), 9,
			"peer[1].persistent_keepalive", "1500ms is not a whole number of seconds"},
		{"keepalive fraction as written", withPeer(`persistent_keepalive = "1m0.5s"`), 9,
			"peer[1].persistent_keepalive", "1m0.5s is not a whole number of seconds"},
		{"unknown mode", withPeer(`mode = "fast"`), 9, "peer[1].mode",
			`want "hop" or "wireguard"`},

		// Inline tables keep their lines.
		{"error in second inline peer", doc(`peer = [`,
			`  { name = "a", public_key = "`+pubA+`" },`,
			`  { name = "b", public_key = "`+pubB+`", mode = "x" },`, `]`) + iface(), 3,
			"peer[2].mode", "not a mode"},

		// Encodings: a UTF-8 byte order mark keeps the lines where they are;
		// anything but UTF-8 is refused at the first bad byte.
		{"error after a UTF-8 BOM", "\xef\xbb\xbf" + iface(`listen_port = 70000`), 5,
			"interface.listen_port", "out of range"},
		{"UTF-16 with its BOM", "\xff\xfe[\x00i\x00", 1, "", "not UTF-8"},
		{"a Latin-1 byte", iface("# caf\xe9"), 5, "", "not UTF-8"},

		// The error nearest the top of the file wins.
		{"first error wins", iface(peers(peer("a", pubA, "", `mode = "x"`),
			peer("b", pubB, "", `colour = 1`))...), 9, "peer[1].mode", "not a mode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.doc), "/etc/hoprd/test.toml")
			if err == nil {
				t.Fatalf("Parse accepted:\n%s\ngot %+v", tc.doc, cfg)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is a %T, want *Error", err, err)
			}
			if e.File != "/etc/hoprd/test.toml" || e.Line != tc.line || e.Key != tc.key {
				t.Errorf("error at %s:%d key %q, want line %d key %q (%v)",
					e.File, e.Line, e.Key, tc.line, tc.key, err)
			}
			if !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("message %q does not contain %q", e.Msg, tc.msg)
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		check func(t *testing.T, c *Config)
	}{
		{"defaults", withPeer(), func(t *testing.T, c *Config) {
			in := c.Interface
			if in.MTU != DefaultMTU || in.HopInterval != DefaultHopInterval ||
				in.ListenPort != 0 {
				t.Errorf("interface %+v, want default MTU, hop interval and port", in)
			}
			if len(c.Peers) != 1 || c.Peers[0].Mode != ModeHop ||
				c.Peers[0].PersistentKeepalive != 0 || c.Peers[0].Endpoint != "" {
				t.Errorf("peers %+v, want one hop-mode peer with defaults", c.Peers)
			}
			if got := c.Peers[0].PublicKey.String(); got != pubA {
				t.Errorf("public key %s, want %s", got, pubA)
			}
		}},
		{"relative key paths", withPeer(`preshared_key_file = "psk/beta"`),
			func(t *testing.T, c *Config) {
				if c.Interface.PrivateKeyFile != "/etc/hoprd/key" {
					t.Errorf("private key file %q, want /etc/hoprd/key",
						c.Interface.PrivateKeyFile)
				}
				if c.Peers[0].PresharedKeyFile != "/etc/hoprd/psk/beta" {
					t.Errorf("preshared key file %q", c.Peers[0].PresharedKeyFile)
				}
			}},
		{"absolute key path", doc(`[interface]`, `name = "hop0"`,
			`private_key_file = "/var/lib/k"`), func(t *testing.T, c *Config) {
			if c.Interface.PrivateKeyFile != "/var/lib/k" || len(c.Peers) != 0 {
				t.Errorf("got %+v", c)
			}
		}},
		{"addresses keep host bits", doc(`[interface]`, `name = "hop0"`,
			`private_key_file = "k"`, `address = ["100.64.0.1/24", "fd00::1/64"]`),
			func(t *testing.T, c *Config) {
				want := []netip.Prefix{
					netip.MustParsePrefix("100.64.0.1/24"),
					netip.MustParsePrefix("fd00::1/64"),
				}
				if !slices.Equal(c.Interface.Addresses, want) {
					t.Errorf("addresses %v, want %v", c.Interface.Addresses, want)
				}
			}},
		{"15-byte name", doc(`[interface]`, `name = "abcdefghijklmno"`,
			`private_key_file = "k"`), func(t *testing.T, c *Config) {
			if c.Interface.Name != "abcdefghijklmno" {
				t.Errorf("name %q", c.Interface.Name)
			}
		}},
		{"hop_interval 50ms", iface(`hop_interval = "50ms"`), func(t *testing.T, c *Config) {
			if c.Interface.HopInterval != MinHopInterval {
				t.Errorf("hop interval %v", c.Interface.HopInterval)
			}
		}},
		{"hop_interval 10m", iface(`hop_interval = "10m"`), func(t *testing.T, c *Config) {
			if c.Interface.HopInterval != MaxHopInterval {
				t.Errorf("hop interval %v", c.Interface.HopInterval)
			}
		}},
		{"mtu limits", iface(`mtu = 576`, `listen_port = 65535`),
			func(t *testing.T, c *Config) {
				if c.Interface.MTU != 576 || c.Interface.ListenPort != 65535 {
					t.Errorf("interface %+v", c.Interface)
				}
			}},
		{"DNS endpoint", withPeer(`endpoint = "vpn.example.com:51820"`),
			func(t *testing.T, c *Config) {
				if c.Peers[0].Endpoint != "vpn.example.com:51820" {
					t.Errorf("endpoint %q", c.Peers[0].Endpoint)
				}
			}},
		{"link-local endpoint with zone", withPeer(`endpoint = "[fe80::1%eth0]:51820"`),
			func(t *testing.T, c *Config) {
				if c.Peers[0].Endpoint != "[fe80::1%eth0]:51820" {
					t.Errorf("endpoint %q", c.Peers[0].Endpoint)
				}
			}},
		{"IPv6 and IPv4 endpoints", iface(peers(
			peer("a", pubA, "", `endpoint = "[2001:db8::1]:1"`),
			peer("b", pubB, "", `endpoint = "192.0.2.1:65535"`))...),
			func(t *testing.T, c *Config) {
				if len(c.Peers) != 2 || c.Peers[1].Endpoint != "192.0.2.1:65535" {
					t.Errorf("peers %+v", c.Peers)
				}
			}},
		{"peer values", withPeer(`persistent_keepalive = "25s"`, `mode = "wireguard"`),
			func(t *testing.T, c *Config) {
				p := c.Peers[0]
				if p.PersistentKeepalive != 25*time.Second || p.Mode != ModeWireGuard {
					t.Errorf("peer %+v", p)
				}
			}},
		{"overlapping prefixes of two peers", iface(peers(
			peer("a", pubA, `"10.0.0.0/16"`), peer("b", pubB, `"10.0.1.0/24"`))...),
			func(t *testing.T, c *Config) {
				if len(c.Peers[1].AllowedIPs) != 1 {
					t.Errorf("peers %+v", c.Peers)
				}
			}},
		{"inline tables and dotted keys", doc(
			`interface = { name = "hop0", private_key_file = "k" }`,
			`peer = [ { name = "a", public_key = "`+pubA+`" } ]`),
			func(t *testing.T, c *Config) {
				if c.Interface.Name != "hop0" || len(c.Peers) != 1 {
					t.Errorf("got %+v", c)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.doc), filepath.FromSlash("/etc/hoprd/test.toml"))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if c.Path != "/etc/hoprd/test.toml" {
				t.Errorf("Path %q", c.Path)
			}
			tc.check(t, c)
		})
	}
}

// TestDurationMessages checks whole messages about durations: the value as
// the file has it, the limits as a user would write them ("10m", not
// "10m0s").
func TestDurationMessages(t *testing.T) {
	tests := []struct {
		doc string
		msg string
	}{
		{iface(`hop_interval = "10ms"`), "10ms is out of range: want 50ms to 10m"},
		{iface(`hop_interval = "0.5h"`), "0.5h is out of range: want 50ms to 10m"},
		{withPeer(`persistent_keepalive = "20h"`),
			"20h is out of range: want 0 (off) or 1s to 65535s"},
		{withPeer(`persistent_keepalive = "2.5s"`), "2.5s is not a whole number of seconds"},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.doc), "/etc/hoprd/test.toml")
		var e *Error
		if !errors.As(err, &e) || e.Msg != tc.msg {
			t.Errorf("error %v, want message %q", err, tc.msg)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{50 * time.Millisecond, "50ms"},
		{time.Second, "1s"},
		{10 * time.Minute, "10m"},
		{2 * time.Hour, "2h"},
		{90 * time.Second, "90s"},
		{65535 * time.Second, "65535s"},
		{1500 * time.Microsecond, "1500us"},
		{7, "7ns"},
		{-time.Minute, "-1m"},
	}
	for _, tc := range tests {
		got := formatDuration(tc.d)
		if got != tc.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
		if back, err := time.ParseDuration(got); err != nil || back != tc.d {
			t.Errorf("%q parses back as %v, %v; want %v", got, back, err, tc.d)
		}
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"everything", Error{File: "a.toml", Line: 3, Key: "peer[2].mtu", Msg: "bad"},
			"a.toml:3: peer[2].mtu: bad"},
		{"no line", Error{File: "a.toml", Key: "interface", Msg: "missing"},
			"a.toml: interface: missing"},
		{"no key", Error{File: "a.toml", Line: 7, Msg: "invalid TOML"},
			"a.toml:7: invalid TOML"},
		{"message only", Error{Msg: "bad"}, "bad"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "none.toml")
		_, err := Load(path)
		var e *Error
		if !errors.As(err, &e) || e.File != path || !strings.Contains(e.Msg, "cannot read") {
			t.Fatalf("Load = %v, want *Error naming %s", err, path)
		}
	})
	t.Run("too large", func(t *testing.T) {
		big := iface("# " + strings.Repeat("x", MaxFileSize))
		_, err := Parse([]byte(big), "big.toml")
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.Msg, "larger than") {
			t.Fatalf("Parse = %v, want a size error", err)
		}
	})
}
