package ratchet

import (
	"bytes"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// TestConcurrentUseAndErasure has many goroutines take keys, seal with
// them and release them, while another moves the clock and calls Advance
// so that keys are retired under their feet. Every sealed message must
// match the definition's key for its epoch: a key erased while held would
// seal differently. Run it with -race.
func TestConcurrentUseAndErasure(t *testing.T) {
	const (
		interval = 50 * time.Millisecond
		epochs   = 300
		workers  = 6
	)
	secret := testSecret(13)
	want := refKeys(t, secret, epochs+maxWindow+1)
	expect := make([][]byte, len(want))
	for e := range want {
		expect[e] = sealWith(t, want[e])
	}
	start := time.Now()
	a, b := secret, secret
	s := NewSender(&a, start, interval)
	r := NewReceiver(&b, start, interval)
	_, ahead := Window(interval)

	var clock atomic.Int64 // elapsed time since start
	now := func() time.Time { return start.Add(time.Duration(clock.Load())) }
	check := func(k *Key) bool {
		nonce := make([]byte, chacha20poly1305.NonceSize)
		var out [64]byte
		got := k.AEAD().Seal(out[:0], nonce, []byte("probe"), nil)
		if !bytes.Equal(got, expect[k.Epoch]) {
			t.Errorf("key of epoch %d sealed wrongly while held", k.Epoch)
			return false
		}
		return true
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	var used atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Yield so the clock can move on a machine with few cores.
				runtime.Gosched()
				if w%2 == 0 {
					k := s.Current(now())
					k.Acquire() // hand a second reference around
					ok := check(k)
					k.Release()
					k.Release()
					if !ok {
						return
					}
					used.Add(1)
					continue
				}
				cur := epochAt(start, now(), interval)
				e := uint32(cur) + uint32(i%int(ahead+1))
				k, err := r.Key(e, now())
				if errors.Is(err, ErrEpochOutOfWindow) {
					continue
				}
				if err != nil {
					t.Errorf("Key(%d): %v", e, err)
					return
				}
				ok := check(k)
				k.Release()
				if !ok {
					return
				}
				used.Add(1)
			}
		})
	}
	for e := 1; e <= epochs; e++ {
		clock.Store(int64(time.Duration(e) * interval))
		s.Advance(now())
		r.Advance(now())
		// Let the workers use this epoch's keys a few times.
		for seen := used.Load(); used.Load() < seen+2*workers; {
			runtime.Gosched()
		}
	}
	close(stop)
	wg.Wait()
	s.Close()
	r.Close()
	if used.Load() == 0 {
		t.Fatal("no key was used")
	}
	if s.Hops() != epochs {
		t.Fatalf("Hops() = %d, want %d", s.Hops(), epochs)
	}
}

// TestSteadyStateAllocs pins that taking and releasing the key of the
// current epoch allocates nothing, on both sides.
func TestSteadyStateAllocs(t *testing.T) {
	start := time.Now()
	a, b := testSecret(1), testSecret(1)
	s := NewSender(&a, start, time.Second)
	r := NewReceiver(&b, start, time.Second)
	defer s.Close()
	defer r.Close()
	now := start.Add(1500 * time.Millisecond)
	s.Current(now).Release()
	if k, err := r.Key(1, now); err == nil {
		k.Release()
	}
	tests := []struct {
		name string
		fn   func()
	}{
		{"Sender.Current+Release", func() { s.Current(now).Release() }},
		{"Receiver.Key+Release", func() {
			k, err := r.Key(1, now)
			if err != nil {
				t.Fatal(err)
			}
			k.Release()
		}},
		{"Receiver.Key out of window", func() {
			if _, err := r.Key(9, now); err == nil {
				t.Fatal("epoch 9 accepted")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, tc.fn); n != 0 {
				t.Fatalf("%v allocations per call, want 0", n)
			}
		})
	}
}
