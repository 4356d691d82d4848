package uapi

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/hoprd/hoprd/handshake"
)

// Keys of the tests, in the protocol's hex.
var (
	hexA = strings.Repeat("a1", 32)
	hexB = strings.Repeat("b2", 32)
	hexC = strings.Repeat("c3", 32)
	hex0 = strings.Repeat("00", 32)
	// hexSmallOrder is a point of small order, with which no handshake
	// can complete.
	hexSmallOrder = "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"
)

func keyOf(b byte) [32]byte {
	var k [32]byte
	for i := range k {
		k[i] = b
	}
	return k
}

func ptr[T any](v T) *T { return &v }

func TestParse(t *testing.T) {
	privA := handshake.PrivateKey(keyOf(0xa1))
	pskC := handshake.PresharedKey(keyOf(0xc3))
	tests := []struct {
		name string
		in   string
		want *Request
	}{
		{name: "get", in: "get=1\n\n", want: &Request{Op: OpGet}},
		{name: "empty set", in: "set=1\n\n", want: &Request{Op: OpSet, Set: &Set{}}},
		{
			name: "interface keys",
			in: "set=1\nprivate_key=" + hexA + "\nlisten_port=51820\nfwmark=4294967295\n" +
				"replace_peers=true\n\n",
			want: &Request{Op: OpSet, Set: &Set{
				PrivateKey: &privA, ListenPort: ptr[uint16](51820),
				Fwmark: ptr[uint32](4294967295), ReplacePeers: true,
			}},
		},
		{
			name: "removing the key",
			in:   "set=1\nprivate_key=" + hex0 + "\nlisten_port=0\n\n",
			want: &Request{Op: OpSet, Set: &Set{
				PrivateKey: &handshake.PrivateKey{}, ListenPort: ptr[uint16](0),
			}},
		},
		{
			name: "what wg setconf sends",
			in: "set=1\nprivate_key=" + hexA + "\nreplace_peers=true\npublic_key=" + hexB +
				"\npreshared_key=" + hexC + "\nendpoint=[fd00::1]:51820\n" +
				"persistent_keepalive_interval=25\nreplace_allowed_ips=true\n" +
				"allowed_ip=100.64.0.2/32\nallowed_ip=fd7a:686f:7072::2/128\n" +
				"public_key=" + hexC + "\nremove=true\n\n",
			want: &Request{Op: OpSet, Set: &Set{
				PrivateKey:   &privA,
				ReplacePeers: true,
				Peers: []PeerSet{
					{
						PublicKey:           handshake.PublicKey(keyOf(0xb2)),
						PresharedKey:        &pskC,
						Endpoint:            netip.MustParseAddrPort("[fd00::1]:51820"),
						PersistentKeepalive: ptr[uint16](25),
						ReplaceAllowedIPs:   true,
						AllowedIPs: []AllowedIP{
							{Prefix: netip.MustParsePrefix("100.64.0.2/32")},
							{Prefix: netip.MustParsePrefix("fd7a:686f:7072::2/128")},
						},
					},
					{PublicKey: handshake.PublicKey(keyOf(0xc3)), Remove: true},
				},
			}},
		},
		{
			name: "update only, removal of an allowed IP, host bits masked",
			in: "set=1\npublic_key=" + hexB + "\nupdate_only=true\nprotocol_version=1\n" +
				"allowed_ip=-10.1.2.3/8\nendpoint=192.0.2.1:1\n\n",
			want: &Request{Op: OpSet, Set: &Set{Peers: []PeerSet{{
				PublicKey:  handshake.PublicKey(keyOf(0xb2)),
				UpdateOnly: true,
				Endpoint:   netip.MustParseAddrPort("192.0.2.1:1"),
				AllowedIPs: []AllowedIP{
					{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Remove: true},
				},
			}}}},
		},
		{
			name: "upper-case hex",
			in:   "set=1\npublic_key=" + strings.ToUpper(hexB) + "\n\n",
			want: &Request{Op: OpSet, Set: &Set{Peers: []PeerSet{
				{PublicKey: handshake.PublicKey(keyOf(0xb2))},
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse =\n%+v\nwant\n%+v", got.Set, tt.want.Set)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	long := strings.Repeat("x", MaxLineLength+1)
	tests := []struct {
		name string
		in   string
		want error
	}{
		{name: "empty", in: "", want: ErrTruncated},
		{name: "unknown operation", in: "get=2\n\n", want: ErrUnknownOperation},
		{name: "get with a body", in: "get=1\nprivate_key=" + hexA + "\n\n",
			want: ErrUnknownOperation},
		{name: "no blank line", in: "set=1\nlisten_port=1\n", want: ErrTruncated},
		{name: "last line without newline", in: "set=1\nlisten_port=1", want: ErrTruncated},
		{name: "carriage return", in: "set=1\r\n\r\n", want: ErrUnknownOperation},
		{name: "line too long", in: "set=1\nfwmark=" + long + "\n\n", want: ErrLineTooLong},
		{name: "no equals sign", in: "set=1\nlisten_port\n\n", want: ErrMalformedLine},
		{name: "unknown key", in: "set=1\nlisten=1\n\n", want: ErrUnknownKey},
		{name: "peer key before public_key", in: "set=1\nendpoint=192.0.2.1:1\n\n",
			want: ErrUnknownKey},
		{name: "interface key in a peer", in: "set=1\npublic_key=" + hexB +
			"\nlisten_port=1\n\n", want: ErrUnknownKey},
		{name: "short key", in: "set=1\nprivate_key=" + hexA[:62] + "\n\n",
			want: ErrInvalidValue},
		{name: "base64 key", in: "set=1\npublic_key=" +
			"YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=\n\n", want: ErrInvalidValue},
		{name: "not hex", in: "set=1\nprivate_key=" + strings.Repeat("zz", 32) + "\n\n",
			want: ErrInvalidValue},
		{name: "zero public key", in: "set=1\npublic_key=" + hex0 + "\n\n",
			want: ErrInvalidValue},
		{name: "small-order public key", in: "set=1\npublic_key=" + hexSmallOrder + "\n\n",
			want: ErrInvalidValue},
		{name: "small-order public key removed", in: "set=1\npublic_key=" + hexSmallOrder +
			"\nremove=true\n\n", want: ErrInvalidValue},
		{name: "port too big", in: "set=1\nlisten_port=65536\n\n", want: ErrInvalidValue},
		{name: "signed port", in: "set=1\nlisten_port=+1\n\n", want: ErrInvalidValue},
		{name: "leading zero", in: "set=1\nfwmark=01\n\n", want: ErrInvalidValue},
		{name: "empty number", in: "set=1\nfwmark=\n\n", want: ErrInvalidValue},
		{name: "replace_peers false", in: "set=1\nreplace_peers=false\n\n",
			want: ErrInvalidValue},
		{name: "remove yes", in: "set=1\npublic_key=" + hexB + "\nremove=yes\n\n",
			want: ErrInvalidValue},
		{name: "endpoint name", in: "set=1\npublic_key=" + hexB +
			"\nendpoint=example.com:51820\n\n", want: ErrInvalidValue},
		{name: "endpoint port 0", in: "set=1\npublic_key=" + hexB +
			"\nendpoint=192.0.2.1:0\n\n", want: ErrInvalidValue},
		{name: "endpoint unspecified", in: "set=1\npublic_key=" + hexB +
			"\nendpoint=0.0.0.0:1\n\n", want: ErrInvalidValue},
		{name: "endpoint IPv6 unspecified", in: "set=1\npublic_key=" + hexB +
			"\nendpoint=[::]:1\n\n", want: ErrInvalidValue},
		{name: "endpoint multicast", in: "set=1\npublic_key=" + hexB +
			"\nendpoint=224.0.0.1:51820\n\n", want: ErrInvalidValue},
		{name: "endpoint IPv6 multicast", in: "set=1\npublic_key=" + hexB +
			"\nendpoint=[ff02::1]:51820\n\n", want: ErrInvalidValue},
		{name: "endpoint broadcast", in: "set=1\npublic_key=" + hexB +
			"\nendpoint=255.255.255.255:51820\n\n", want: ErrInvalidValue},
		{name: "endpoint IPv4-mapped", in: "set=1\npublic_key=" + hexB +
			"\nendpoint=[::ffff:192.0.2.2]:51820\n\n", want: ErrInvalidValue},
		{name: "allowed IP without length", in: "set=1\npublic_key=" + hexB +
			"\nallowed_ip=10.0.0.1\n\n", want: ErrInvalidValue},
		{name: "IPv4-mapped allowed IP", in: "set=1\npublic_key=" + hexB +
			"\nallowed_ip=::ffff:10.0.0.1/128\n\n", want: ErrInvalidValue},
		{name: "keepalive too long", in: "set=1\npublic_key=" + hexB +
			"\npersistent_keepalive_interval=65536\n\n", want: ErrInvalidValue},
		{name: "protocol version 2", in: "set=1\npublic_key=" + hexB +
			"\nprotocol_version=2\n\n", want: ErrInvalidValue},
		{name: "a second request", in: "get=1\n\nget=1\n\n", want: ErrMalformedLine},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse = %+v, %v; want %v", got, err, tt.want)
			}
			if strings.Contains(err.Error(), hexA) || strings.Contains(err.Error(), hexA[:62]) {
				t.Fatalf("error %q shows a key", err)
			}
		})
	}
}

// TestParseSizeLimit checks that a set request beyond MaxSetSize is
// refused while it is read, not after.
func TestParseSizeLimit(t *testing.T) {
	line := "allowed_ip=100.64.0.0/10\n"
	var b strings.Builder
	b.WriteString("set=1\npublic_key=" + hexB + "\n")
	for b.Len() <= MaxSetSize {
		b.WriteString(line)
	}
	b.WriteString("\n")
	if _, err := Parse([]byte(b.String())); !errors.Is(err, ErrRequestTooLarge) {
		t.Fatalf("Parse of %d bytes: %v, want ErrRequestTooLarge", b.Len(), err)
	}
}

// TestParserKeepsStep checks that a refused set request is read to its
// end, so the next request on the stream parses, and that the parser
// wipes the lines it read from its buffer.
func TestParserKeepsStep(t *testing.T) {
	in := []byte("set=1\nbogus=1\nprivate_key=" + hexA + "\n\nget=1\n\n")
	spy := &spyReader{r: bytes.NewReader(in)}
	p := NewParser(spy)
	if _, err := p.Next(); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("first request: %v, want ErrUnknownKey", err)
	}
	req, err := p.Next()
	if err != nil || req.Op != OpGet {
		t.Fatalf("second request: %+v, %v; want get", req, err)
	}
	if _, err := p.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last request: %v, want io.EOF", err)
	}
	if len(spy.bufs) == 0 {
		t.Fatal("the parser read nothing")
	}
	for _, buf := range spy.bufs {
		if bytes.Contains(buf, []byte(hexA[:16])) {
			t.Fatal("the private key is still in the parser's buffer")
		}
	}
}

// spyReader keeps the buffers its reader reads into: for a bufio.Reader,
// slices of its internal buffer.
type spyReader struct {
	r    io.Reader
	bufs [][]byte
}

func (s *spyReader) Read(p []byte) (int, error) {
	s.bufs = append(s.bufs, p[:cap(p)])
	return s.r.Read(p)
}

// TestSetZero checks that Zero erases every key a request holds.
func TestSetZero(t *testing.T) {
	req, err := Parse([]byte("set=1\nprivate_key=" + hexA + "\npublic_key=" + hexB +
		"\npreshared_key=" + hexC + "\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	req.Set.Zero()
	if !req.Set.PrivateKey.IsZero() || !req.Set.Peers[0].PresharedKey.IsZero() {
		t.Fatal("Zero left a key")
	}
	if req.Set.Peers[0].PublicKey.IsZero() {
		t.Fatal("Zero erased a public key")
	}
}

func TestApplyAllowedIPs(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name    string
		have    []netip.Prefix
		changes []AllowedIP
		want    []netip.Prefix
	}{
		{name: "add to nothing", changes: []AllowedIP{{Prefix: p("10.0.0.0/8")}},
			want: []netip.Prefix{p("10.0.0.0/8")}},
		{name: "add twice", have: []netip.Prefix{p("10.0.0.0/8")},
			changes: []AllowedIP{{Prefix: p("10.0.0.0/8")}},
			want:    []netip.Prefix{p("10.0.0.0/8")}},
		{name: "remove", have: []netip.Prefix{p("10.0.0.0/8"), p("fd00::/8")},
			changes: []AllowedIP{{Prefix: p("10.0.0.0/8"), Remove: true}},
			want:    []netip.Prefix{p("fd00::/8")}},
		{name: "remove absent", have: []netip.Prefix{p("fd00::/8")},
			changes: []AllowedIP{{Prefix: p("10.0.0.0/8"), Remove: true}},
			want:    []netip.Prefix{p("fd00::/8")}},
		{name: "add then remove", changes: []AllowedIP{
			{Prefix: p("10.0.0.0/8")}, {Prefix: p("10.0.0.0/8"), Remove: true},
		}, want: []netip.Prefix{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := applyAllowedIPs(tt.have, tt.changes)
			if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
				t.Fatalf("applyAllowedIPs = %v, want %v", got, tt.want)
			}
		})
	}
}
