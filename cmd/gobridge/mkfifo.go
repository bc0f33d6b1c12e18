package main

import (
	"context"
	"fmt"
	"io"

	"github.com/gobridge/gobridge/bridge"
)

// runMkfifo creates named pipes for fifo: addresses and bridge.OpenFIFO*.
func runMkfifo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("mkfifo", "PATH...",
		"Create named pipes with mode 0600. An existing FIFO of yours is kept; a path\n"+
			"that is anything else (a symlink included) is an error.", stderr)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("%w: a PATH is required", errUsage)
	}
	for _, p := range pos {
		if _, err := bridge.Mkfifo(p); err != nil {
			return err
		}
	}
	return nil
}
