package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/hoprd/hoprd/config"
	"github.com/hoprd/hoprd/handshake"
	"github.com/spf13/cobra"
)

type genkeyFlags struct {
	out string // key file to create; empty for stdout
}

func newGenkeyCmd() *cobra.Command {
	f := &genkeyFlags{}
	cmd := &cobra.Command{
		Use:   "genkey [--out FILE]",
		Short: "Print a new private key, or write it to a new file with mode 0600",
		Long: "Generates a private key and prints it in base64, or with --out writes it\n" +
			"to a new file that only its owner may read, whatever the umask. An\n" +
			"existing file is never replaced. A preshared key is made the same way.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGenkey(cmd.OutOrStdout(), f)
		},
	}
	cmd.Flags().StringVarP(&f.out, "out", "o", "",
		"write the key to FILE (mode 0600) instead of printing it")
	return cmd
}

func runGenkey(w io.Writer, f *genkeyFlags) error {
	k, err := handshake.GeneratePrivateKey()
	if err != nil {
		return err
	}
	defer k.Zero()
	if f.out != "" {
		err := config.WritePrivateKeyFile(f.out, k)
		if errors.Is(err, fs.ErrExist) {
			return usageError{err}
		}
		return err
	}
	text := config.EncodePrivateKey(&k)
	defer clear(text)
	if _, err := w.Write(text); err != nil {
		return fmt.Errorf("genkey: write key: %w", err)
	}
	return nil
}

// noArgs refuses positional arguments as a usage error, so that the
// process exits with exitConfig.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args[0])}
	}
	return nil
}
