package bind

import (
	"encoding/binary"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawGSOSend sends one datagram of nseg segments of seg bytes with
// UDP_SEGMENT from a plain socket, as any local process may.
func rawGSOSend(t *testing.T, port uint16, nseg, seg int) error {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, nseg*seg)
	for i := 0; i < nseg; i++ {
		binary.BigEndian.PutUint32(buf[i*seg:], uint32(i))
	}
	oob := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(seg))
	to := &unix.SockaddrInet4{Port: int(port), Addr: [4]byte{127, 0, 0, 1}}
	return unix.Sendmsg(fd, buf, oob, to, 0)
}

// The kernel's UDP_MAX_SEGMENTS is 128 since Linux 6.x, and a GSO message
// of more than 64 segments reaches a GRO socket whole over loopback or a
// veth: every datagram of it comes out.
func TestReceiveLargeGSO(t *testing.T) {
	rx := New()
	fns, port := openBind(t, rx)
	for _, n := range []int{64, 65, 100, 128} {
		if err := rawGSOSend(t, port, n, 200); err != nil {
			t.Fatalf("%d segments: send: %v", n, err)
		}
		got := receiveN(t, rx, fns["v4"], 1)
		// Give the rest a moment and drain.
		r := newRxBufs()
		total := len(got)
		for {
			done := make(chan struct{})
			go func() {
				select {
				case <-done:
				case <-time.After(200 * time.Millisecond):
					_ = rx.socks.Load().v4.conn.SetReadDeadline(time.Now())
				}
			}()
			k, err := fns["v4"](r.bufs, r.sizes, r.eps)
			close(done)
			if err != nil {
				break
			}
			total += k
		}
		_ = rx.socks.Load().v4.conn.SetReadDeadline(time.Time{})
		t.Logf("%d segments sent, %d datagrams received", n, total)
		if total != n {
			t.Errorf("%d segments sent, %d datagrams received", n, total)
		}
	}
}

// Two back-to-back 100-segment GSO messages: the receiver reads both in one
// recvmmsg, more datagrams than it has buffers for, and hands out the rest
// from its spill on the next calls.
func TestReceiveSpill(t *testing.T) {
	rx := New()
	fns, port := openBind(t, rx)
	for range 2 {
		if err := rawGSOSend(t, port, 100, 200); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	r := newRxBufs()
	total := 0
	for {
		timer := time.AfterFunc(300*time.Millisecond, func() {
			_ = rx.socks.Load().v4.conn.SetReadDeadline(time.Now())
		})
		k, err := fns["v4"](r.bufs, r.sizes, r.eps)
		timer.Stop()
		if err != nil {
			break
		}
		for i := range k {
			if r.sizes[i] != 200 {
				t.Errorf("datagram size %d", r.sizes[i])
			}
		}
		total += k
	}
	if rx.socks.Load().rx4.spilled == 0 {
		t.Error("nothing went through the spill")
	}
	if total != 200 {
		t.Errorf("sent 200 datagrams in two GSO messages, received %d", total)
	}
}
