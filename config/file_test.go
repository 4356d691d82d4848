package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestConfigFileChecks checks what Load refuses about the config file
// itself, before reading it: what is not a regular file (a FIFO would
// block the read), a file group or others may write, and, as root, a file
// another user owns. Each is an *Error naming the file, with a fix.
func TestConfigFileChecks(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("..", "examples", "minimal.toml"))
	if err != nil {
		t.Fatal(err)
	}
	type setup func(t *testing.T, path string)
	write := func(mode os.FileMode) setup {
		return func(t *testing.T, path string) {
			if err := os.WriteFile(path, good, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name  string
		setup setup
		want  string // "" when the file must load
		root  bool   // needs root
	}{
		{"0644", write(0o644), "", false},
		{"0600", write(0o600), "", false},
		{"0444", write(0o444), "", false},
		{"group-writable", write(0o664), "mode 0664 lets group or others change", false},
		{"world-writable", write(0o646), "chmod go-w", false},
		{"fifo", func(t *testing.T, path string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file", false},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file", false},
		{"owned by nobody", func(t *testing.T, path string) {
			write(0o644)(t, path)
			if err := os.Chown(path, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "owned by uid 65534", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("needs root to give a file away")
			}
			path := filepath.Join(t.TempDir(), "hop0.toml")
			tc.setup(t, path)
			_, err := Load(path)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.File != path || !strings.Contains(e.Msg, tc.want) {
				t.Fatalf("Load = %v, want an *Error about %s saying %q", err, path, tc.want)
			}
		})
	}
}
