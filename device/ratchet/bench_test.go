package ratchet

import (
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// BenchmarkDerive measures one step of the chain that yields a key, and
// building that key's AEAD.
func BenchmarkDerive(b *testing.B) {
	b.Run("step", func(b *testing.B) {
		d := newDeriver()
		chain := testSecret(1)
		b.ReportAllocs()
		for b.Loop() {
			d.step(&chain, true)
		}
		d.erase()
	})
	b.Run("step+key", func(b *testing.B) {
		d := newDeriver()
		chain := testSecret(1)
		b.ReportAllocs()
		for b.Loop() {
			d.step(&chain, true)
			newKey(0, &d.key).Release()
		}
	})
}

// BenchmarkSealOpen1420 seals and opens a 1420-byte packet in place with
// a Key's AEAD.
func BenchmarkSealOpen1420(b *testing.B) {
	const size = 1420
	s := testSecret(1)
	snd := NewSender(&s, time.Now(), time.Second)
	defer snd.Close()
	k := snd.Current(time.Now())
	defer k.Release()
	aead := k.AEAD()
	buf := make([]byte, size+chacha20poly1305.Overhead)
	nonce := make([]byte, chacha20poly1305.NonceSize)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		ct := aead.Seal(buf[:0], nonce, buf[:size], nil)
		if _, err := aead.Open(ct[:0], nonce, ct, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCurrent measures the sender's per-packet key lookup.
func BenchmarkCurrent(b *testing.B) {
	s := testSecret(1)
	start := time.Now()
	snd := NewSender(&s, start, time.Second)
	defer snd.Close()
	now := start.Add(time.Second / 2)
	b.ReportAllocs()
	for b.Loop() {
		snd.Current(now).Release()
	}
}

// BenchmarkReceiverKey measures the receiver's per-packet key lookup.
func BenchmarkReceiverKey(b *testing.B) {
	s := testSecret(1)
	start := time.Now()
	r := NewReceiver(&s, start, time.Second)
	defer r.Close()
	now := start.Add(time.Second / 2)
	b.ReportAllocs()
	for b.Loop() {
		k, err := r.Key(0, now)
		if err != nil {
			b.Fatal(err)
		}
		k.Release()
	}
}
