package bind

import (
	"bytes"
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"golang.zx2c4.com/wireguard/conn"
)

// ParseEndpoint accepts what StdNetBind's does, except zones naming no
// interface, and agrees with it on the address and its bytes.
func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1:51820", "[::1]:1", "[fe80::1%lo]:5", "[fe80::1%7]:5",
		"[::ffff:1.2.3.4]:9", "1.2.3.4", "", "[::1]:65536", "[fe80::1%zz]:1",
	} {
		f.Add(s)
	}
	b, std := New(), conn.NewStdNetBind()
	f.Fuzz(func(t *testing.T, s string) {
		ep, err := b.ParseEndpoint(s)
		sep, serr := std.ParseEndpoint(s)
		if serr != nil {
			if err == nil {
				t.Fatalf("ParseEndpoint(%q) = %s, StdNetBind refuses: %v", s,
					ep.DstToString(), serr)
			}
			return
		}
		if err != nil {
			if sep.DstIP().Zone() == "" {
				t.Fatalf("ParseEndpoint(%q): %v", s, err)
			}
			return // a zone that names no interface
		}
		if ep.DstToString() != sep.DstToString() || ep.DstIP() != sep.DstIP() {
			t.Fatalf("ParseEndpoint(%q) = %s, StdNetBind %s", s, ep.DstToString(),
				sep.DstToString())
		}
		if !bytes.Equal(ep.DstToBytes(), sep.DstToBytes()) {
			t.Fatalf("ParseEndpoint(%q): bytes %x, StdNetBind %x", s, ep.DstToBytes(),
				sep.DstToBytes())
		}
	})
}

// parseControl reads any bytes without panicking or reading past them.
func FuzzParseControl(f *testing.F) {
	var c rxControl
	b := c.bytes()
	n := putPktinfo(b, unix.AF_INET6, &[16]byte{1}, 3)
	n += putGRO(b[n:], 1452)
	f.Add(append([]byte(nil), b[:n]...))
	f.Add([]byte{})
	f.Add(make([]byte, 15))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c rxControl
		b := c.bytes()
		n := copy(b, data)
		_ = parseControl(b[:n])
	})
}

// What putPktinfo and putSegment write, parseControl reads back.
func TestControlRoundTrip(t *testing.T) {
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		var c rxControl
		b := c.bytes()
		local := [16]byte{127, 0, 0, 2}
		if family == unix.AF_INET6 {
			local = [16]byte{15: 1}
		}
		n := putPktinfo(b, family, &local, 7)
		n += putGRO(b[n:], 1452)
		info := parseControl(b[:n])
		if !info.hasLocal || info.local != local || info.ifindex != 7 ||
			info.segment != 1452 {
			t.Errorf("family %d: read as %+v", family, info)
		}
	}
}

// putGRO writes a UDP_GRO message as the kernel does, and returns its length.
func putGRO(b []byte, size int) int {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_GRO
	h.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(b[unix.CmsgLen(0):], uint32(size))
	return unix.CmsgSpace(4)
}
