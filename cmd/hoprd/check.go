package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/hoprd/hoprd/config"
	"github.com/spf13/cobra"
)

type checkFlags struct {
	configs []string // config files to check, in the order given
}

func newCheckCmd() *cobra.Command {
	f := &checkFlags{}
	cmd := &cobra.Command{
		Use:   "check -c FILE [-c FILE]...",
		Short: "Check config files and the key files they name",
		Long: "Loads each config file as up would, reads the private and preshared key\n" +
			"files it names, and checks that no peer has this host's own key. For each\n" +
			"file it prints \"FILE: ok (N peers)\", or the file, line and key of the\n" +
			"file's first problem; it checks every file given and exits with status 2\n" +
			"if any has a problem. It changes nothing on the host.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCheck(cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	cmd.Flags().StringArrayVarP(&f.configs, "config", "c", nil,
		"config file (required; repeat to check several)")
	return cmd
}

// runCheck checks each file in f, printing what it finds. With one file,
// the file's problem is the error returned; with several, each problem is
// printed as it is found and the error returned says only how to exit.
func runCheck(stdout, stderr io.Writer, f *checkFlags) error {
	switch len(f.configs) {
	case 0:
		return usageError{errors.New("check: give the config file with -c FILE")}
	case 1:
		return checkFile(stdout, f.configs[0])
	}
	var failed []error
	for _, path := range f.configs {
		if err := checkFile(stdout, path); err != nil {
			fmt.Fprintf(stderr, "hoprd: %v\n", err)
			failed = append(failed, err)
		}
	}
	if failed != nil {
		return reportedError{errors.Join(failed...)}
	}
	return nil
}

// checkFile checks one config file and the key files it names, and prints
// "FILE: ok (N peers)" if they pass.
func checkFile(w io.Writer, path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	keys, err := cfg.ReadKeys()
	if err != nil {
		return err
	}
	keys.Zero()
	noun := "peers"
	if len(cfg.Peers) == 1 {
		noun = "peer"
	}
	if _, err := fmt.Fprintf(w, "%s: ok (%d %s)\n", cfg.Path, len(cfg.Peers), noun); err != nil {
		return fmt.Errorf("check: %w", err)
	}
	return nil
}
