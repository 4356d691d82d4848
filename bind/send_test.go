package bind

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// segmented reports whether the first of msgs is a GSO message.
func segmented(msgs []unix.Mmsghdr) bool {
	return msgs[0].Hdr.Iovlen > 1
}

// Send recovers from what the kernel refuses, as injected by a hook in
// front of sendmmsg, and every datagram still arrives once, in order.
func TestSendFallback(t *testing.T) {
	cases := []struct {
		name   string
		hook   func(msgs []unix.Mmsghdr) (int, unix.Errno)
		gso    bool  // GSO still on afterwards
		err    error // what Send returns
		srcSet bool  // whether the endpoint has a sticky source
	}{{
		name: "partial",
		hook: func(msgs []unix.Mmsghdr) (int, unix.Errno) { return 1, 0 },
		gso:  true,
	}, {
		name: "EIO",
		hook: func(msgs []unix.Mmsghdr) (int, unix.Errno) {
			if segmented(msgs) {
				return 0, unix.EIO
			}
			return len(msgs), 0
		},
	}, {
		name: "EMSGSIZE",
		hook: func(msgs []unix.Mmsghdr) (int, unix.Errno) {
			if segmented(msgs) {
				return 0, unix.EMSGSIZE
			}
			return len(msgs), 0
		},
		gso: true,
	}, {
		name: "EINVAL with source",
		hook: func(msgs []unix.Mmsghdr) (int, unix.Errno) {
			if msgs[0].Hdr.Controllen > 0 {
				return 0, unix.EINVAL
			}
			return len(msgs), 0
		},
		gso:    true,
		srcSet: true,
	}, {
		name: "EPERM",
		hook: func(msgs []unix.Mmsghdr) (int, unix.Errno) { return 0, unix.EPERM },
		gso:  true,
		err:  unix.EPERM,
	}, {
		name: "EIO unsegmented",
		hook: func(msgs []unix.Mmsghdr) (int, unix.Errno) { return 0, unix.EIO },
		err:  unix.EIO,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rx, tx := New(), New()
			fns, port := openBind(t, rx)
			openBind(t, tx)
			sock := tx.socks.Load().v4
			if !sock.gso.Load() {
				t.Fatal("kernel lacks UDP_SEGMENT")
			}
			sock.sendHook = tc.hook
			ep := endpoint(t, tx, loop4, port).(*Endpoint)
			if tc.srcSet {
				ep = newEndpoint(ep.dst, 0, loop4, 1)
			}
			want := payloads(append(repeat(70, datagramSize), 10, 20, 30))
			err := tx.Send(want, ep)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("send: %v, want %v", err, tc.err)
			}
			if got := sock.gso.Load(); got != tc.gso {
				t.Errorf("GSO on: %v, want %v", got, tc.gso)
			}
			if tc.srcSet && ep.SrcIP().IsValid() {
				t.Errorf("sticky source %v kept", ep.SrcIP())
			}
			if tc.err == nil {
				checkDatagrams(t, receiveN(t, rx, fns["v4"], len(want)), want)
			}
		})
	}
}

// Send cuts buffers into GSO runs as the kernel allows.
func TestBuildRuns(t *testing.T) {
	cases := []struct {
		name   string
		family int
		sizes  []int
		runs   []int // buffers per message
	}{
		{"single", unix.AF_INET, []int{100}, []int{1}},
		{"equal", unix.AF_INET, repeat(5, 100), []int{5}},
		{"tail", unix.AF_INET, []int{100, 100, 50}, []int{3}},
		{"tail ends run", unix.AF_INET, []int{100, 50, 50}, []int{2, 1}},
		{"longer ends run", unix.AF_INET, []int{100, 200, 200}, []int{1, 2}},
		{"empty", unix.AF_INET, []int{0, 0, 100, 0}, []int{1, 1, 1, 1}},
		{"64 segments", unix.AF_INET, repeat(100, 10), []int{64, 36}},
		{"payload v4", unix.AF_INET, repeat(40, 1700), []int{38, 2}},
		{"payload v6", unix.AF_INET6, repeat(40, 1700), []int{38, 2}},
		{"payload v6 edge", unix.AF_INET6, []int{65000, 527, 1}, []int{2, 1}},
		{"payload v4 edge", unix.AF_INET, []int{65000, 527, 1}, []int{1, 2}},
		{"over batch", unix.AF_INET, repeat(200, 10), []int{64, 64}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := scratchPool.Get().(*sendScratch)
			defer scratchPool.Put(s)
			s.t = target{family: tc.family}
			s.build(payloads(tc.sizes), true)
			var runs []int
			for m := range s.nmsgs {
				runs = append(runs, s.start[m+1]-s.start[m])
				h := s.msgs[m].Hdr
				if int(h.Iovlen) != runs[m] || (runs[m] > 1) != (h.Controllen > 0) {
					t.Fatalf("message %d: %d iovecs, control %d bytes", m, h.Iovlen,
						h.Controllen)
				}
			}
			if len(runs) != len(tc.runs) {
				t.Fatalf("runs %v, want %v", runs, tc.runs)
			}
			for i := range runs {
				if runs[i] != tc.runs[i] {
					t.Fatalf("runs %v, want %v", runs, tc.runs)
				}
			}
			clear(s.iovs[:])
			s.used = 0
		})
	}
}
