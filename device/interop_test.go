package device

// Interoperability with WireGuard: hoprd's engine against wireguard-go's
// own device package, in one process, over the in-memory TUN and bind that
// module ships:
//
//	tunH <-> hoprd (100.64.0.1, fd7a:686f:7072::1) <-bindtest-> wireguard-go (.2, ::2) <-> tunW
//
// wireguard-go's timers are constants, so the rekey test shortens hoprd's
// and lets hoprd initiate the new handshakes.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoprd/hoprd/bind"
	"github.com/hoprd/hoprd/handshake"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	wgdevice "golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

var (
	addrH6 = netip.MustParseAddr("fd7a:686f:7072::1")
	addrW6 = netip.MustParseAddr("fd7a:686f:7072::2")
)

// interopPair is a hoprd device and a wireguard-go device that know each
// other. addrA and addrB (device_test.go) are hoprd's and wireguard-go's
// IPv4 overlay addresses.
type interopPair struct {
	h    *Device
	w    *wgdevice.Device
	tunH *tuntest.ChannelTUN
	tunW *tuntest.ChannelTUN
	peer *Peer // hoprd's view of wireguard-go
	keyW handshake.PrivateKey
	logs *syncBuffer // hoprd's log
}

// interopOptions vary an interopPair.
type interopOptions struct {
	timers Timers              // hoprd's timers
	proto  *handshake.Protocol // what hoprd expects wireguard-go to speak
	pskH   handshake.PresharedKey
	pskW   handshake.PresharedKey
	noKeyH bool // start hoprd without a private key
	udp    bool // real UDP on 127.0.0.1 instead of bindtest
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// hexKey returns k as the configuration protocol writes keys.
func hexKey(k [handshake.KeySize]byte) string { return hex.EncodeToString(k[:]) }

func newInteropPair(t *testing.T, o interopOptions) *interopPair {
	t.Helper()
	if o.proto == nil {
		o.proto = handshake.WireGuard
	}
	// endpoint[0] is where hoprd sends, endpoint[1] where wireguard-go does.
	var (
		binds    [2]conn.Bind
		endpoint [2]string
	)
	if o.udp {
		binds = [2]conn.Bind{bind.New(), conn.NewStdNetBind()}
	} else {
		binds = bindtest.NewChannelBinds()
		// bindtest names its peer by the "port" of the endpoint.
		endpoint = [2]string{"127.0.0.1:1", "127.0.0.1:2"}
	}
	ip := &interopPair{
		tunH: tuntest.NewChannelTUN(),
		tunW: tuntest.NewChannelTUN(),
		keyW: mustKey(t),
		logs: &syncBuffer{},
	}
	keyH := mustKey(t)
	cfgKey := keyH
	if o.noKeyH {
		cfgKey = handshake.PrivateKey{}
	}
	var err error
	ip.h, err = New(Config{PrivateKey: cfgKey, HopInterval: time.Second, TUN: ip.tunH.TUN(),
		Bind: binds[0], Logger: slog.New(slog.NewTextHandler(ip.logs, nil)), Timers: o.timers})
	if err != nil {
		t.Fatal(err)
	}
	level := wgdevice.LogLevelSilent
	if testing.Verbose() {
		level = wgdevice.LogLevelVerbose
	}
	ip.w = wgdevice.NewDevice(ip.tunW.TUN(), binds[1], wgdevice.NewLogger(level, "wg-go: "))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hoprd status: %+v\nhoprd log:\n%s", ip.h.Status(), ip.logs)
			if get, err := ip.w.IpcGet(); err == nil {
				t.Logf("wireguard-go state (keys left out):\n%s", redactKeys(get))
			}
		}
		ip.h.Close()
		ip.w.Close()
	})
	if o.udp {
		// wireguard-go's port is known once it is up, below.
		endpoint[1] = fmt.Sprintf("127.0.0.1:%d", ip.h.ListenPort())
	}
	wgConf := fmt.Sprintf("private_key=%s\npublic_key=%s\npreshared_key=%s\n"+
		"endpoint=%s\nallowed_ip=%s/32\nallowed_ip=%s/128\n",
		hexKey(ip.keyW), hexKey(keyH.PublicKey()), hexKey(o.pskW), endpoint[1],
		addrA, addrH6)
	if err := ip.w.IpcSet(wgConf); err != nil {
		t.Fatalf("configure wireguard-go: %v", err)
	}
	if err := ip.w.Up(); err != nil {
		t.Fatalf("wireguard-go up: %v", err)
	}
	if o.udp {
		endpoint[0] = fmt.Sprintf("127.0.0.1:%d", wgListenPort(t, ip.w))
	}
	ip.peer, err = ip.h.AddPeer(PeerConfig{
		Name:         "wg-go",
		PublicKey:    ip.keyW.PublicKey(),
		PresharedKey: o.pskH,
		Protocol:     o.proto,
		Endpoint:     netip.MustParseAddrPort(endpoint[0]),
		AllowedIPs: []netip.Prefix{
			netip.PrefixFrom(addrB, 32), netip.PrefixFrom(addrW6, 128),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.noKeyH {
		if err := ip.h.SetPrivateKey(keyH); err != nil {
			t.Fatal(err)
		}
	}
	keyH.Zero()
	return ip
}

// redactKeys drops the secret lines of a configuration protocol dump.
func redactKeys(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "private_key=") && !strings.HasPrefix(l, "preshared_key=") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// wgGet returns the values of key in wireguard-go's configuration dump.
func wgGet(t *testing.T, w *wgdevice.Device, key string) []string {
	t.Helper()
	get, err := w.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	var vals []string
	sc := bufio.NewScanner(strings.NewReader(get))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && k == key {
			vals = append(vals, v)
		}
	}
	return vals
}

func wgListenPort(t *testing.T, w *wgdevice.Device) uint16 {
	t.Helper()
	v := wgGet(t, w, "listen_port")
	if len(v) != 1 {
		t.Fatalf("wireguard-go reports listen ports %v", v)
	}
	port, err := strconv.ParseUint(v[0], 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	return uint16(port)
}

// wgLastHandshake returns wireguard-go's last handshake time with hoprd.
func wgLastHandshake(t *testing.T, w *wgdevice.Device) time.Time {
	t.Helper()
	secs, nsecs := wgGet(t, w, "last_handshake_time_sec"), wgGet(t, w, "last_handshake_time_nsec")
	if len(secs) != 1 || len(nsecs) != 1 {
		t.Fatalf("wireguard-go reports %d peers, want 1", len(secs))
	}
	s, _ := strconv.ParseInt(secs[0], 10, 64)
	ns, _ := strconv.ParseInt(nsecs[0], 10, 64)
	if s == 0 && ns == 0 {
		return time.Time{}
	}
	return time.Unix(s, ns)
}

// udp6Packet builds an IPv6/UDP packet carrying seq.
func udp6Packet(src, dst netip.Addr, seq uint32, size int) []byte {
	size = max(size, 52)
	b := make([]byte, size)
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(size-40))
	b[6] = 17
	b[7] = 64
	s16, d16 := src.As16(), dst.As16()
	copy(b[8:24], s16[:])
	copy(b[24:40], d16[:])
	binary.BigEndian.PutUint16(b[40:], 4000)
	binary.BigEndian.PutUint16(b[42:], 4001)
	binary.BigEndian.PutUint16(b[44:], uint16(size-40))
	binary.BigEndian.PutUint32(b[48:], seq)
	for i := 52; i < size; i++ {
		b[i] = byte(seq) ^ byte(i)
	}
	return b
}

// exchange sends packets of both families and sizes each way, starting
// from first, and checks that each arrives intact.
func (ip *interopPair) exchange(t *testing.T, hoprdFirst bool, seq uint32) {
	t.Helper()
	toW := func(i uint32) {
		p4 := udpPacket(addrA, addrB, seq+i, 60+int(i)*700)
		ip.tunH.Outbound <- p4
		expectPacket(t, ip.tunW.Inbound, p4, "hoprd to wireguard-go, IPv4")
		p6 := udp6Packet(addrH6, addrW6, seq+i, 80+int(i)*650)
		ip.tunH.Outbound <- p6
		expectPacket(t, ip.tunW.Inbound, p6, "hoprd to wireguard-go, IPv6")
	}
	toH := func(i uint32) {
		p4 := udpPacket(addrB, addrA, seq+i, 1400-int(i)*600)
		ip.tunW.Outbound <- p4
		expectPacket(t, ip.tunH.Inbound, p4, "wireguard-go to hoprd, IPv4")
		p6 := udp6Packet(addrW6, addrH6, seq+i, 1380-int(i)*600)
		ip.tunW.Outbound <- p6
		expectPacket(t, ip.tunH.Inbound, p6, "wireguard-go to hoprd, IPv6")
	}
	for i := range uint32(3) {
		if hoprdFirst {
			toW(i)
			toH(i)
		} else {
			toH(i)
			toW(i)
		}
	}
}

// hoprdInitiated reports whether hoprd's current session with
// wireguard-go is one hoprd initiated.
func (ip *interopPair) hoprdInitiated(t *testing.T) bool {
	t.Helper()
	ip.peer.mu.RLock()
	defer ip.peer.mu.RUnlock()
	if ip.peer.current == nil {
		t.Fatal("hoprd has no current session with wireguard-go")
	}
	return ip.peer.current.initiator
}

// TestInteropWireGuardGo runs traffic both ways between hoprd and
// wireguard-go, with each side starting the handshake in turn.
func TestInteropWireGuardGo(t *testing.T) {
	var psk handshake.PresharedKey
	copy(psk[:], "a preshared key both sides share")
	tests := []struct {
		name       string
		hoprdFirst bool
		psk        handshake.PresharedKey
		udp        bool
	}{
		{name: "hoprd initiates", hoprdFirst: true},
		{name: "wireguard-go initiates", hoprdFirst: false},
		{name: "hoprd initiates with a preshared key", hoprdFirst: true, psk: psk},
		{name: "wireguard-go initiates with a preshared key", psk: psk},
		{name: "hoprd initiates over UDP", hoprdFirst: true, udp: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip := newInteropPair(t, interopOptions{pskH: tt.psk, pskW: tt.psk, udp: tt.udp})
			ip.exchange(t, tt.hoprdFirst, 0)
			if got := ip.hoprdInitiated(t); got != tt.hoprdFirst {
				t.Errorf("hoprd initiated the session: %t, want %t", got, tt.hoprdFirst)
			}
			if ip.peer.LastHandshake().IsZero() || wgLastHandshake(t, ip.w).IsZero() {
				t.Error("a side records no handshake")
			}
			st := ip.h.Status().Peers[0]
			if st.Mode != "wireguard" || st.Epoch == nil || *st.Epoch != 0 || st.Hops != 0 {
				t.Errorf("status mode %q epoch %v hops %d: want wireguard, epoch 0, no hops",
					st.Mode, st.Epoch, st.Hops)
			}
			if rx, tx := ip.peer.Transfer(); rx == 0 || tx == 0 {
				t.Errorf("hoprd counted rx %d tx %d bytes", rx, tx)
			}
		})
	}
}

// TestInteropRekey shortens hoprd's timers so that hoprd starts a new
// handshake every few hundred milliseconds, and checks that traffic flows
// without loss across the rekeys.
func TestInteropRekey(t *testing.T) {
	timers := Timers{
		RekeyAfterTime:   400 * time.Millisecond,
		RejectAfterTime:  3 * time.Second,
		RekeyTimeout:     200 * time.Millisecond,
		KeepaliveTimeout: time.Second,
	}
	ip := newInteropPair(t, interopOptions{timers: timers})
	ip.exchange(t, true, 0)
	first, wgFirst := ip.peer.LastHandshake(), wgLastHandshake(t, ip.w)
	handshakes := map[int64]bool{first.UnixNano(): true}
	deadline := time.Now().Add(10 * time.Second)
	seq := uint32(100)
	for len(handshakes) < 4 && time.Now().Before(deadline) {
		ip.exchange(t, true, seq)
		seq += 10
		handshakes[ip.peer.LastHandshake().UnixNano()] = true
		time.Sleep(50 * time.Millisecond)
	}
	if len(handshakes) < 4 {
		t.Fatalf("saw %d handshakes in 10s with RekeyAfterTime %v, want 4",
			len(handshakes), timers.RekeyAfterTime)
	}
	if !ip.hoprdInitiated(t) {
		t.Error("the last session was not initiated by hoprd")
	}
	if !wgLastHandshake(t, ip.w).After(wgFirst) {
		t.Error("wireguard-go did not record the new handshakes")
	}
	if drops := ip.peer.drops.snapshot(); len(drops) != 0 {
		t.Errorf("hoprd dropped packets across rekeys: %v", drops)
	}
}

// TestInteropWrongPresharedKey checks that no handshake completes, and no
// packet passes, when the preshared keys differ.
func TestInteropWrongPresharedKey(t *testing.T) {
	var pskH, pskW handshake.PresharedKey
	copy(pskH[:], "hoprd's preshared key, 32 bytes.")
	copy(pskW[:], "wireguard-go's key, also 32 byte")
	tests := []struct {
		name       string
		hoprdFirst bool
	}{
		{name: "hoprd initiates", hoprdFirst: true},
		{name: "wireguard-go initiates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip := newInteropPair(t, interopOptions{pskH: pskH, pskW: pskW})
			if tt.hoprdFirst {
				ip.tunH.Outbound <- udpPacket(addrA, addrB, 1, 100)
			} else {
				ip.tunW.Outbound <- udpPacket(addrB, addrA, 1, 100)
			}
			select {
			case <-ip.tunW.Inbound:
				t.Fatal("a packet reached wireguard-go")
			case <-ip.tunH.Inbound:
				t.Fatal("a packet reached hoprd")
			case <-time.After(1500 * time.Millisecond):
			}
			if !ip.peer.LastHandshake().IsZero() || !wgLastHandshake(t, ip.w).IsZero() {
				t.Error("a side records a handshake")
			}
			if tt.hoprdFirst && ip.peer.drops[DropHandshakeRejected].Load() == 0 {
				t.Error("hoprd did not count the response it could not open on the peer")
			}
			if tt.hoprdFirst && !strings.Contains(ip.peer.status(time.Now()).Problem, "preshared key") {
				t.Errorf("problem %q does not name the preshared key", ip.peer.status(time.Now()).Problem)
			}
		})
	}
}

// TestInteropProtocolMismatch points a hop-mode peer at wireguard-go: no
// handshake completes, and hoprd says why in status and once in its log.
func TestInteropProtocolMismatch(t *testing.T) {
	ip := newInteropPair(t, interopOptions{proto: handshake.Hop})
	ip.tunW.Outbound <- udpPacket(addrB, addrA, 1, 100)
	ip.tunH.Outbound <- udpPacket(addrA, addrB, 2, 100)
	deadline := time.Now().Add(5 * time.Second)
	var st PeerStatus
	for time.Now().Before(deadline) {
		st = ip.h.Status().Peers[0]
		if st.Problem != "" && st.Drops[DropProtocolMismatch.String()] > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(st.Problem, "wireguard") || !strings.Contains(st.Problem, "hop") {
		t.Fatalf("status problem %q, want one naming both protocols", st.Problem)
	}
	if st.LastHandshake != nil || !wgLastHandshake(t, ip.w).IsZero() {
		t.Error("a handshake completed between a hop peer and a WireGuard peer")
	}
	if testing.Short() {
		return
	}
	// wireguard-go retries after RekeyTimeout; the repeat must not log again.
	deadline = time.Now().Add(wgdevice.RekeyTimeout + 3*time.Second)
	for ip.peer.drops[DropProtocolMismatch].Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := ip.peer.drops[DropProtocolMismatch].Load(); n < 2 {
		t.Fatalf("%d mismatched initiations seen, want wireguard-go's retry too", n)
	}
	if n := strings.Count(ip.logs.String(), "peer problem"); n != 1 {
		t.Errorf("%d peer problem log lines, want 1:\n%s", n, ip.logs)
	}
	select {
	case <-ip.tunH.Inbound:
		t.Error("a packet crossed between mismatched peers")
	case <-ip.tunW.Inbound:
		t.Error("a packet crossed between mismatched peers")
	default:
	}
}

// TestInteropCookieReply puts hoprd under load: wireguard-go's initiation
// gets a cookie reply, and its retry, carrying a valid mac2, completes the
// handshake.
func TestInteropCookieReply(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for wireguard-go's 5 s retransmission")
	}
	ip := newInteropPair(t, interopOptions{})
	ip.h.underLoadUntil.Store(time.Now().Add(time.Minute).UnixNano())
	p := udpPacket(addrB, addrA, 1, 100)
	ip.tunW.Outbound <- p
	select {
	case got := <-ip.tunH.Inbound:
		if !bytes.Equal(got, p) {
			t.Fatal("packet changed on the way")
		}
	case <-time.After(wgdevice.RekeyTimeout + 3*time.Second):
		t.Fatal("no packet after wireguard-go's retry")
	}
	if n := ip.h.drops[DropCookieRequired].Load(); n == 0 {
		t.Error("hoprd sent no cookie reply")
	}
	ip.exchange(t, true, 10)
}

// TestInteropKeySetLater starts hoprd without a private key, as wg-quick
// does (it sets the key through the configuration socket), and checks that
// the interface refuses handshakes until the key arrives and then works.
func TestInteropKeySetLater(t *testing.T) {
	ip := newInteropPair(t, interopOptions{noKeyH: true})
	ip.exchange(t, true, 0)

	// Changing to another key drops the sessions; wireguard-go no longer
	// knows the interface, so traffic stops. Setting the same key again
	// changes nothing.
	same, ok := ip.h.PrivateKey()
	if !ok {
		t.Fatal("PrivateKey reports no key after SetPrivateKey")
	}
	before := ip.peer.LastHandshake()
	if err := ip.h.SetPrivateKey(same); err != nil {
		t.Fatal(err)
	}
	same.Zero()
	ip.exchange(t, true, 10)
	if ip.peer.LastHandshake() != before {
		t.Error("setting the same private key forced a new handshake")
	}
	if err := ip.h.SetPrivateKey(handshake.PrivateKey{}); err != nil {
		t.Fatal(err)
	}
	if ip.h.HasPrivateKey() || ip.h.Status().Interface.PublicKey != "" {
		t.Fatal("the key was not removed")
	}
	ip.peer.mu.RLock()
	live := ip.peer.current != nil || ip.peer.previous != nil || ip.peer.next != nil
	ip.peer.mu.RUnlock()
	if live {
		t.Error("sessions survived the removal of the private key")
	}
	ip.tunH.Outbound <- udpPacket(addrA, addrB, 20, 100)
	select {
	case <-ip.tunW.Inbound:
		t.Fatal("a packet left an interface without a private key")
	case <-time.After(300 * time.Millisecond):
	}
	if p := ip.h.Status().Peers[0].Problem; !strings.Contains(p, "no private key") {
		t.Errorf("status problem %q, want it to say the key is missing", p)
	}
}

// TestInteropListenPortChange moves hoprd to another UDP port while it
// talks to wireguard-go over real sockets: wireguard-go follows hoprd to the
// new port (it roams to the source of authenticated packets).
func TestInteropListenPortChange(t *testing.T) {
	ip := newInteropPair(t, interopOptions{udp: true})
	ip.exchange(t, true, 0)
	old := ip.h.ListenPort()
	if err := ip.h.SetListenPort(0); err != nil {
		t.Fatal(err)
	}
	if ip.h.ListenPort() == old || ip.h.ListenPort() == 0 {
		t.Fatalf("listen port %d after the change from %d", ip.h.ListenPort(), old)
	}
	if err := ip.h.SetFwmark(0); err != nil {
		t.Fatal(err)
	}
	ip.exchange(t, true, 10)
	if ep := wgGet(t, ip.w, "endpoint"); len(ep) != 1 ||
		ep[0] != fmt.Sprintf("127.0.0.1:%d", ip.h.ListenPort()) {
		t.Errorf("wireguard-go sends to %v, want hoprd's new port %d", ep, ip.h.ListenPort())
	}
	// Setting the port in use changes nothing.
	port := ip.h.ListenPort()
	if err := ip.h.SetListenPort(port); err != nil || ip.h.ListenPort() != port {
		t.Errorf("SetListenPort(%d) = %v, port now %d", port, err, ip.h.ListenPort())
	}
}
