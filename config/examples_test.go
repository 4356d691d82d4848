package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadExample parses an example config shipped in examples/. It reads the
// file rather than Load it, so that the checkout's file modes (a umask of
// 002 makes files group-writable, which Load refuses) play no part.
func loadExample(t *testing.T, path string) *Config {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data, path)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

// TestExamples loads every example config shipped in examples/.
func TestExamples(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "examples", "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no example configs found")
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			loadExample(t, path)
		})
	}
}

// TestExampleLines checks LineOf against the text of the main example.
func TestExampleLines(t *testing.T) {
	path := filepath.Join("..", "examples", "hoprd.toml")
	cfg := loadExample(t, path)
	if len(cfg.Peers) != 2 {
		t.Fatalf("%d peers, want 2", len(cfg.Peers))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	// lineStarting returns the line of the n-th line starting with prefix.
	lineStarting := func(prefix string, n int) int {
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				if n--; n == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	tests := []struct {
		key  string
		want int
	}{
		{"interface", lineStarting("[interface]", 1)},
		{"interface.hop_interval", lineStarting("hop_interval", 1)},
		{"peer[1]", lineStarting("[[peer]]", 1)},
		{"peer[2]", lineStarting("[[peer]]", 2)},
		{"peer[2].endpoint", lineStarting("endpoint", 2)},
		{"peer[2].allowed_ips[2]", lineStarting(`    "fd64::3/128"`, 1)},
		{"peer[2].preshared_key_file", lineStarting("preshared_key_file", 1)},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			if got := cfg.LineOf(tc.key); got != tc.want || got <= 0 {
				t.Errorf("LineOf(%q) = %d, want %d", tc.key, got, tc.want)
			}
		})
	}
}
