package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// version is the hoprd version. The Makefile stamps it from git with
// -ldflags "-X main.version=...".
var version = "dev"

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "hoprd %s\n", version)
			return err
		},
	}
}
