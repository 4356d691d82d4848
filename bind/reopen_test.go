package bind

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

// Close and reopen (as a listen-port change does) while senders and
// receivers run; nothing may crash, hang or race.
func TestCloseReopenUnderLoad(t *testing.T) {
	rx, tx := New(), New()
	_, _ = openBind(t, tx)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var port atomic.Uint32
	var sends, errs atomic.Int64
	startRecv := func(fns []conn.ReceiveFunc) {
		for _, fn := range fns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := newRxBufs()
				for {
					if _, err := fn(r.bufs, r.sizes, r.eps); err != nil {
						return
					}
				}
			}()
		}
	}
	fns, p, err := rx.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	port.Store(uint32(p))
	startRecv(fns)
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sizes := [][]int{repeat(200, 1452), {0, 0, 1}, repeat(3, maxPayload4),
				append(repeat(10, 100), 0, 100)}[i%4]
			bufs := payloads(sizes)
			for !stop.Load() {
				ep4, _ := tx.ParseEndpoint("127.0.0.1:" + itoa(uint16(port.Load())))
				ep6, _ := tx.ParseEndpoint("[::1]:" + itoa(uint16(port.Load())))
				// Send on the bind being closed and reopened, too.
				for _, b := range []*Bind{tx, rx} {
					for _, ep := range []conn.Endpoint{ep4, ep6} {
						if err := b.Send(bufs, ep); err != nil {
							errs.Add(1)
						} else {
							sends.Add(1)
						}
					}
				}
			}
		}()
	}
	deadline := time.Now().Add(3 * time.Second)
	reopens := 0
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if err := rx.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		fns, p, err := rx.Open(0)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		_ = rx.SetMark(uint32(reopens + 1))
		port.Store(uint32(p))
		startRecv(fns)
		reopens++
	}
	stop.Store(true)
	_ = rx.Close()
	_ = tx.Close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("goroutines hung after close")
	}
	t.Logf("%d reopens, %d sends ok, %d failed", reopens, sends.Load(), errs.Load())
}
