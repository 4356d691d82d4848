package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnsafeStateDirIsUsageError: hoprd up and hoprd NAME refuse a state
// directory others may write as a configuration error (exit 2), saying how
// to fix it, before any interface is created.
func TestUnsafeStateDirIsUsageError(t *testing.T) {
	keepGCPercent(t)
	const cfg = `[interface]
name = "hop0"
private_key_file = "private.key"
address = ["100.64.0.1/24"]

[[peer]]
name = "beta"
public_key = "` + peerPubA + `"
allowed_ips = ["100.64.0.2/32"]
`
	dir := checkDir(t)
	cfgPath := filepath.Join(dir, "hoprd.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{ // the state dir is checked first
		"up":   {"up", "-c", cfgPath},
		"NAME": {"-f", "hop0"},
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			state := filepath.Join(root, "state")
			unsafe := filepath.Join(state, "hop0")
			if err := os.MkdirAll(unsafe, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(unsafe, 0o777); err != nil {
				t.Fatal(err)
			}
			args := append(args, "--run-dir", root, "--state-dir", state, "--wg-dir", root)
			code, _, errOut := runOffline(t, "", args...)
			want := "fix with: chmod 700 " + unsafe
			if code != exitConfig || !strings.Contains(errOut, want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, exitConfig, want)
			}
		})
	}
}
