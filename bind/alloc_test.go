package bind

import (
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

// allocRuns is how many runs each allocation pin averages over.
const allocRuns = 200

// allocAttempts is how many times a pin measures before it fails.
const allocAttempts = 3

// fewestAllocs returns the least of allocAttempts averages of
// testing.AllocsPerRun(allocRuns, f), stopping at the first zero. The
// count covers every goroutine of the process, and one of the runtime's or
// the testing package's, woken on a loaded machine, may allocate during
// one attempt; an allocation of f's own recurs in every attempt.
func fewestAllocs(f func()) float64 {
	least := testing.AllocsPerRun(allocRuns, f)
	for i := 1; i < allocAttempts && least != 0; i++ {
		least = min(least, testing.AllocsPerRun(allocRuns, f))
	}
	return least
}

// skipUnderRace skips an allocation pin under the race detector.
func skipUnderRace(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
}

// Send of 64 buffers allocates nothing, with GSO and without.
func TestSendAllocs(t *testing.T) {
	skipUnderRace(t)
	for _, gso := range []bool{true, false} {
		for _, fam := range families {
			rx, tx := New(), &Bind{noGSO: !gso}
			_, port := openBind(t, rx)
			openBind(t, tx)
			bufs := payloads(repeat(64, datagramSize))
			ep := endpoint(t, tx, fam.addr, port)
			// Nobody reads rx: the kernel drops what does not fit.
			allocs := fewestAllocs(func() {
				if err := tx.Send(bufs, ep); err != nil {
					t.Fatalf("send: %v", err)
				}
			})
			if allocs != 0 {
				t.Errorf("%s gso=%v: Send allocates %.1f times per call", fam.name, gso, allocs)
			}
		}
	}
}

// A ReceiveFunc allocates nothing once the flow's endpoint is interned,
// with GRO and without; Send with a sticky source allocates nothing either.
func TestReceiveAllocs(t *testing.T) {
	skipUnderRace(t)
	for _, gro := range []bool{true, false} {
		for _, fam := range families {
			rx, tx := &Bind{noGRO: !gro}, New()
			fns, port := openBind(t, rx)
			_, txPort := openBind(t, tx)
			fn := fns[fam.name]
			bufs := payloads(repeat(64, datagramSize))
			ep := endpoint(t, tx, fam.addr, port)
			r := newRxBufs()
			timer := time.AfterFunc(time.Minute, func() { _ = rx.Close() })
			var reply conn.Endpoint
			allocs := fewestAllocs(func() {
				if err := tx.Send(bufs, ep); err != nil {
					t.Fatalf("send: %v", err)
				}
				for got := 0; got < len(bufs); {
					n, err := fn(r.bufs, r.sizes, r.eps)
					if err != nil {
						t.Fatalf("receive: %v", err)
					}
					got += n
				}
				reply = r.eps[0]
			})
			timer.Stop()
			if allocs != 0 {
				t.Errorf("%s gro=%v: Send and receive allocate %.1f times", fam.name, gro,
					allocs)
			}
			if reply.DstToString() != endpoint(t, tx, fam.addr, txPort).DstToString() {
				t.Fatalf("received from %s", reply.DstToString())
			}
			// Reply through the received endpoint: sticky source.
			allocs = fewestAllocs(func() {
				if err := rx.Send(bufs[:1], reply); err != nil {
					t.Fatalf("reply: %v", err)
				}
			})
			if allocs != 0 {
				t.Errorf("%s: Send with a sticky source allocates %.1f times", fam.name, allocs)
			}
		}
	}
}

// DstToBytes allocates nothing.
func TestEndpointAllocs(t *testing.T) {
	skipUnderRace(t)
	ep, err := New().ParseEndpoint("[2001:db8::1]:51820")
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if a := fewestAllocs(func() { _ = ep.DstToBytes() }); a != 0 {
		t.Errorf("DstToBytes allocates %.1f times", a)
	}
	if a := fewestAllocs(func() { _ = ep.SrcIP() }); a != 0 {
		t.Errorf("SrcIP allocates %.1f times", a)
	}
}
