package handshake

import (
	"testing"
	"time"
)

// BenchmarkHandshake measures one complete handshake, both sides:
// initiation, its consumption, the response, and its consumption.
func BenchmarkHandshake(b *testing.B) {
	for _, p := range []*Protocol{Hop, WireGuard} {
		b.Run(p.Name, func(b *testing.B) {
			pr := newPair(b, p, PresharedKey{1})
			initiation := make([]byte, MessageInitiationSize)
			response := make([]byte, MessageResponseSize)
			b.ReportAllocs()
			for b.Loop() {
				pr.clock.advance(time.Second) // stay clear of the flood rule
				if _, err := pr.init.CreateInitiation(initiation, initiatorIndex); err != nil {
					b.Fatal(err)
				}
				h, err := ConsumeInitiation(pr.respID, initiation, pr.byStatic)
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := h.CreateResponse(response, responderIndex); err != nil {
					b.Fatal(err)
				}
				if _, _, err := ConsumeResponse(pr.initID, response, pr.byIndex); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCheckMAC1 measures the first, cheap check every handshake
// message meets, the one that runs for each packet of a flood.
func BenchmarkCheckMAC1(b *testing.B) {
	pr := newPair(b, Hop, PresharedKey{})
	checker := NewCookieChecker(pr.respID)
	msg := pr.initiation(b)
	b.ReportAllocs()
	for b.Loop() {
		if !checker.CheckMAC1(msg) {
			b.Fatal("mac1 refused")
		}
	}
}

// BenchmarkRefusedInitiation measures the cost of an initiation with a
// valid mac1 that fails to decrypt: the work an attacker who knows our
// public key can cause per packet before cookies are demanded.
func BenchmarkRefusedInitiation(b *testing.B) {
	pr := newPair(b, Hop, PresharedKey{})
	msg := pr.initiation(b)
	msg[initiationOffsetStatic] ^= 1
	resealMAC1(msg, Hop, pr.respID.PublicKey())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ConsumeInitiation(pr.respID, msg, pr.byStatic); err == nil {
			b.Fatal("accepted")
		}
	}
}
