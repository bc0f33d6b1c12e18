package main

import (
	"strings"
	"testing"
)

// Bad values are usage errors, refused before anything is measured.
func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--rounds", "0", "pool"}, {"bench", "--rounds=-1", "pool"}, {"bench", "--n", "-5", "pool"},
	} {
		out, errOut, code := runCLI(t, "", args...)
		if code != 2 || out != "" || len(strings.Split(strings.TrimSpace(errOut), "\n")) != 2 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}
