package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/hoprd/hoprd/config"
	"github.com/spf13/cobra"
)

// maxPubkeyInput bounds what pubkey reads from stdin: far more than a key
// and a newline, so that a longer input is told apart and refused.
const maxPubkeyInput = 128

func newPubkeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pubkey",
		Short: "Read a private key on stdin and print its public key",
		Long: "Reads a private key as genkey writes it (44 characters of base64 and at\n" +
			"most one newline) and prints the public key to give to peers.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPubkey(cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
}

// runPubkey reads the private key from r and writes its public key to w.
// Its errors never repeat the input.
func runPubkey(r io.Reader, w io.Writer) error {
	buf := make([]byte, maxPubkeyInput+1)
	defer clear(buf)
	n, err := io.ReadFull(r, buf)
	switch {
	case err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("pubkey: read stdin: %w", err)
	case n > maxPubkeyInput:
		return usageError{errors.New("pubkey: stdin is too long to be a private key")}
	}
	k, err := config.DecodePrivateKey(buf[:n])
	if err != nil {
		return usageError{fmt.Errorf("pubkey: stdin is not a private key: %w", err)}
	}
	defer k.Zero()
	if _, err := fmt.Fprintln(w, k.PublicKey()); err != nil {
		return fmt.Errorf("pubkey: write key: %w", err)
	}
	return nil
}
