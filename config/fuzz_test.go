package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error is an *Error
// about the file it was given, and that what it accepts keeps the
// documented limits.
func FuzzParse(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("..", "examples", "*.toml"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		iface(),
		withPeer(`endpoint = "[fe80::1%eth0]:51820"`, `persistent_keepalive = "25s"`),
		iface(peers(peer("a", pubA, `"10.0.0.0/24"`), peer("b", pubA, `"10.0.0.0/24"`))...),
		iface(`hop_interval = "10ms"`, `mtu = 1`),
		`peer = [{name = "a", public_key = "` + key31 + `"}]`,
		"[interface]\nname = \"\"\"\nx\"\"\"\n",
		"[[interface]]\n[[peer]]\n[peer.x]\n",
		"a = [[[[[[1]]]]]]\n",
		"= \n[",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.toml")
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.File != "fuzz.toml" || e.Msg == "" {
				t.Fatalf("error %v (%T) is not an *Error about fuzz.toml", err, err)
			}
			return
		}
		in := cfg.Interface
		if in.MTU < MinMTU || in.MTU > MaxMTU ||
			in.HopInterval < MinHopInterval || in.HopInterval > MaxHopInterval ||
			CheckInterfaceName(in.Name) != nil || in.PrivateKeyFile == "" {
			t.Fatalf("accepted an interface out of limits: %+v", in)
		}
		names := make(map[string]bool)
		for _, p := range cfg.Peers {
			if names[p.Name] || p.PublicKey.IsZero() ||
				(p.Mode != ModeHop && p.Mode != ModeWireGuard) {
				t.Fatalf("accepted a bad peer: %+v", p)
			}
			names[p.Name] = true
			for _, a := range p.AllowedIPs {
				if a != a.Masked() {
					t.Fatalf("accepted a prefix with host bits: %v", a)
				}
			}
		}
	})
}

// FuzzScanLines checks that the line scanner ends and never panics, even
// on input the TOML decoder would refuse.
func FuzzScanLines(f *testing.F) {
	f.Add([]byte(withPeer()))
	f.Add([]byte("a = \"\"\"\\"))
	f.Add([]byte("[[[\n{{{'''"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, tooDeep := scanLines(data)
		if tooDeep < 0 || tooDeep > len(data)+1 {
			t.Fatalf("stopped on line %d of a %d-byte input", tooDeep, len(data))
		}
		for k, line := range lines {
			if line < 1 || line > len(data)+1 {
				t.Fatalf("key %q on line %d of a %d-byte input", k, line, len(data))
			}
		}
	})
}
