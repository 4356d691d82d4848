package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/hoprd/hoprd/config"
	"github.com/spf13/cobra"
)

type checkFlags struct {
	config string // config file to check
}

func newCheckCmd() *cobra.Command {
	f := &checkFlags{}
	cmd := &cobra.Command{
		Use:   "check -c FILE",
		Short: "Check a config file and the key files it names",
		Long: "Loads the config file as up would, reads the private and preshared key\n" +
			"files it names, and checks that no peer has this host's own key. It\n" +
			"prints \"FILE: ok (N peers)\", or the file, line and key of the first\n" +
			"problem and exits with status 2. It changes nothing on the host.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCheck(cmd.OutOrStdout(), f)
		},
	}
	cmd.Flags().StringVarP(&f.config, "config", "c", "", "config file (required)")
	return cmd
}

func runCheck(w io.Writer, f *checkFlags) error {
	if f.config == "" {
		return usageError{errors.New("check: give the config file with -c FILE")}
	}
	cfg, err := config.Load(f.config)
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
