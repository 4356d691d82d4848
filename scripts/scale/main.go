// Command scale is the Go half of scripts/bench.sh: it makes peer lists,
// drives a daemon's WireGuard configuration socket, churns peers through
// the device package in memory, and runs hoprd's engine under the
// profiler. It is a benchmark tool, not part of hoprd.
//
//	scale peers -n N [-first ADDR]        N random public keys, one /32 each
//	scale churn -sock PATH -n N           N add/remove cycles over the socket
//	scale churn-inproc -n N               the same against device.Device in memory
//	scale serve -c FILE -cpuprofile F -memprofile F
//	                                      hoprd's engine on a real TUN, profiled
//
// Each prints its figures on stdout as "key value" lines.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hoprd/hoprd/bind"
	"github.com/hoprd/hoprd/config"
	"github.com/hoprd/hoprd/device"
	"github.com/hoprd/hoprd/device/uapi"
	"github.com/hoprd/hoprd/handshake"
	"github.com/hoprd/hoprd/tun"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// errUsage reports a bad command line.
var errUsage = errors.New("usage: scale peers|churn|churn-inproc|serve [flags]")

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errUsage
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	switch args[0] {
	case "peers":
		n := fs.Int("n", 10000, "how many peers")
		first := fs.String("first", "100.64.0.2", "allowed IP of the first peer")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return peers(*n, *first)
	case "churn":
		sock := fs.String("sock", "", "the daemon's configuration socket")
		n := fs.Int("n", 5000, "add/remove cycles")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return churnSocket(*sock, *n)
	case "churn-inproc":
		n := fs.Int("n", 5000, "add/remove cycles")
		base := fs.Int("peers", 0, "peers configured before the cycles")
		settle := fs.Duration("settle", 5*time.Second, "wait before the last reading")
		viaSocket := fs.Bool("socket", false, "churn through a configuration socket served "+
			"in this process (device/uapi), not through the device's methods")
		heap := fs.String("heapprofile", "", "write a heap profile here at the end")
		tunName := fs.String("tun", "", "run on a real TUN of this name, with routes kept "+
			"in step by the socket (needs -socket, root, and a namespace to play in)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return churnInProcess(churnOpts{base: *base, cycles: *n, settle: *settle,
			viaSocket: *viaSocket, heapProfile: *heap, tun: *tunName})
	case "serve":
		cfg := fs.String("c", "", "hoprd config file")
		cpu := fs.String("cpuprofile", "", "write a CPU profile here")
		mem := fs.String("memprofile", "", "write an allocation profile here")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return serve(*cfg, *cpu, *mem)
	}
	return errUsage
}

// peerAddr returns the i-th address from first on.
func peerAddr(first netip.Addr, i int) netip.Addr {
	a := first.As4()
	binary.BigEndian.PutUint32(a[:], binary.BigEndian.Uint32(a[:])+uint32(i))
	return netip.AddrFrom4(a)
}

// randomKey returns a fresh public key, that of a new private key.
func randomKey() (handshake.PublicKey, error) {
	k, err := handshake.GeneratePrivateKey()
	if err != nil {
		return handshake.PublicKey{}, fmt.Errorf("generate key: %w", err)
	}
	defer k.Zero()
	return k.PublicKey(), nil
}

// peers prints n lines "public-key-base64 address/32".
func peers(n int, first string) error {
	start, err := netip.ParseAddr(first)
	if err != nil || !start.Is4() {
		return fmt.Errorf("peers: -first %q: not an IPv4 address", first)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := range n {
		pub, err := randomKey()
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s %s/32\n", pub.Base64(), peerAddr(start, i))
	}
	return w.Flush()
}

// uapiClient is a client of the WireGuard configuration protocol.
type uapiClient struct {
	path string
}

// set sends one set transaction and checks its errno.
func (u uapiClient) set(body string) error {
	c, err := net.DialTimeout("unix", u.path, 5*time.Second)
	if err != nil {
		return fmt.Errorf("dial %s: %w", u.path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("set=1\n" + body + "\n")); err != nil {
		return fmt.Errorf("write %s: %w", u.path, err)
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("read %s: %w", u.path, err)
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "errno="); ok {
			if v != "0" {
				return fmt.Errorf("set on %s: errno %s", u.path, v)
			}
			return nil
		}
	}
}

// churnSocket adds and removes n peers, each with its own key and /32,
// one after the other, through a configuration socket.
func churnSocket(path string, n int) error {
	if path == "" {
		return fmt.Errorf("churn: -sock is required")
	}
	u := uapiClient{path: path}
	first := netip.MustParseAddr("100.96.0.2")
	start := time.Now()
	for i := range n {
		pub, err := randomKey()
		if err != nil {
			return err
		}
		if err := churnOnce(u, pub, peerAddr(first, i)); err != nil {
			return fmt.Errorf("cycle %d: %w", i, err)
		}
	}
	fmt.Printf("cycles %d\nseconds %.2f\n", n, time.Since(start).Seconds())
	return nil
}

// churnOnce adds a peer with key pub owning ip/32 over u, then removes it.
func churnOnce(u uapiClient, pub handshake.PublicKey, ip netip.Addr) error {
	h := hex.EncodeToString(pub[:])
	if err := u.set(fmt.Sprintf("public_key=%s\nallowed_ip=%s/32\n", h, ip)); err != nil {
		return fmt.Errorf("add: %w", err)
	}
	if err := u.set("public_key=" + h + "\nremove=true\n"); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	return nil
}

// rssKiB returns this process's resident set size.
func rssKiB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kb
		}
	}
	return -1
}

// churnOpts are the settings of churnInProcess.
type churnOpts struct {
	base, cycles int
	settle       time.Duration
	viaSocket    bool
	heapProfile  string
	tun          string
}

// churnInProcess configures o.base peers, then adds and removes o.cycles
// more, each with its own key and /32, on a device.Device running on an
// in-memory TUN and bind, through its methods or through a configuration
// socket served in this process. It reports the process's RSS and Go heap
// before, right after, and after o.settle, and the live heap (after a
// collection) before and after.
func churnInProcess(o churnOpts) error {
	base, n := o.base, o.cycles
	priv, err := handshake.GeneratePrivateKey()
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	binds := bindtest.NewChannelBinds()
	dc := device.Config{
		PrivateKey:  priv,
		HopInterval: time.Second,
		TUN:         tuntest.NewChannelTUN().TUN(),
		Bind:        binds[0],
		Logger:      slog.New(slog.DiscardHandler),
	}
	var routes uapi.Routes
	if o.tun != "" {
		link, err := tun.Create(tun.Config{Name: o.tun,
			Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.1/10")}}, nil)
		if err != nil {
			return err // tun.Create names the interface and the step
		}
		defer link.Close()
		dc.TUN, routes = link.Device, link
	}
	d, err := device.New(dc)
	priv.Zero()
	if err != nil {
		return fmt.Errorf("start device: %w", err)
	}
	defer d.Close()
	var sock *uapi.Server
	if o.viaSocket {
		dir, err := os.MkdirTemp("", "scale-uapi")
		if err != nil {
			return fmt.Errorf("socket directory: %w", err)
		}
		defer os.RemoveAll(dir)
		sock, err = uapi.Listen(uapi.Config{Dir: dir, Name: "churn0", Device: d,
			Routes: routes})
		if err != nil {
			return err
		}
		defer sock.Close()
	}
	ep := netip.MustParseAddrPort("192.0.2.2:51820")
	first := netip.MustParseAddr("100.96.0.2")
	cycle := func(i int) error {
		pub, err := randomKey()
		if err != nil {
			return err
		}
		if sock != nil {
			return churnOnce(uapiClient{path: sock.Path()}, pub, peerAddr(first, i))
		}
		if _, err := d.AddPeer(device.PeerConfig{PublicKey: pub, Endpoint: ep,
			AllowedIPs: []netip.Prefix{netip.PrefixFrom(peerAddr(first, i), 32)}}); err != nil {
			return fmt.Errorf("cycle %d: %w", i, err)
		}
		if err := d.RemovePeer(pub); err != nil {
			return fmt.Errorf("cycle %d: %w", i, err)
		}
		return nil
	}
	for i := range base {
		pub, err := randomKey()
		if err != nil {
			return err
		}
		if _, err := d.AddPeer(device.PeerConfig{PublicKey: pub, AllowedIPs: []netip.Prefix{
			netip.PrefixFrom(peerAddr(netip.MustParseAddr("100.64.0.2"), i), 32)}}); err != nil {
			return fmt.Errorf("peer %d: %w", i, err)
		}
	}
	// A first few cycles let the runtime size its structures.
	for i := range 50 {
		if err := cycle(i); err != nil {
			return err
		}
	}
	report := func(when string) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Printf("rss_kib_%s %d\nheap_inuse_kib_%s %d\n", when, rssKiB(), when,
			ms.HeapInuse/1024)
	}
	live := func(when string) {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		fmt.Printf("heap_live_kib_%s %d\n", when, ms.HeapAlloc/1024)
	}
	time.Sleep(time.Second)
	report("before")
	defer live("after")
	live("before")
	start := time.Now()
	for i := range n {
		if err := cycle(50 + i); err != nil {
			return err
		}
	}
	fmt.Printf("cycles %d\nseconds %.2f\n", n, time.Since(start).Seconds())
	report("after")
	time.Sleep(o.settle)
	report("settled")
	if got := len(d.Peers()); got != base {
		return fmt.Errorf("%d peers left, want %d", got, base)
	}
	if o.heapProfile != "" {
		runtime.GC()
		f, err := os.Create(o.heapProfile)
		if err != nil {
			return fmt.Errorf("heap profile: %w", err)
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			return fmt.Errorf("heap profile: %w", err)
		}
	}
	return nil
}

// serve runs hoprd's engine as `hoprd up` does, on the interface the
// config file describes, with a CPU profile running from start to
// SIGINT/SIGTERM and an allocation profile written at the end. It serves
// no control socket: the benchmark waits for traffic instead.
func serve(path, cpuProfile, memProfile string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	priv, err := config.ReadPrivateKeyFile(cfg.Interface.PrivateKeyFile)
	if err != nil {
		return err
	}
	defer priv.Zero()
	var routes []netip.Prefix
	for _, p := range cfg.Peers {
		routes = append(routes, p.AllowedIPs...)
	}
	ic := cfg.Interface
	link, err := tun.Create(tun.Config{Name: ic.Name, MTU: ic.MTU, Addresses: ic.Addresses,
		Routes: routes}, log)
	if err != nil {
		return err // tun.Create names the interface and the step
	}
	defer link.Close()
	runtime.MemProfileRate = 4096
	d, err := device.New(device.Config{PrivateKey: priv, ListenPort: ic.ListenPort,
		HopInterval: ic.HopInterval, MTU: link.MTU(), TUN: link.Device,
		Bind: bind.New(), Logger: log})
	if err != nil {
		return fmt.Errorf("start %s: %w", ic.Name, err)
	}
	defer d.Close()
	for _, pc := range cfg.Peers {
		p := device.PeerConfig{Name: pc.Name, PublicKey: pc.PublicKey,
			AllowedIPs: pc.AllowedIPs, PersistentKeepalive: pc.PersistentKeepalive}
		if pc.Endpoint != "" {
			if p.Endpoint, err = device.ResolveEndpoint(pc.Endpoint); err != nil {
				return err
			}
		}
		if _, err := d.AddPeer(p); err != nil {
			return fmt.Errorf("start %s: %w", ic.Name, err)
		}
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	fmt.Println("ready")
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sigs:
	case <-d.Done():
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	fmt.Fprintf(os.Stderr, "mallocs %d\nbytes_allocated %d\ngc_cycles %d\n",
		after.Mallocs-before.Mallocs, after.TotalAlloc-before.TotalAlloc,
		after.NumGC-before.NumGC)
	if memProfile != "" {
		f, err := os.Create(memProfile)
		if err != nil {
			return fmt.Errorf("memory profile: %w", err)
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return fmt.Errorf("memory profile: %w", err)
		}
	}
	return nil
}
