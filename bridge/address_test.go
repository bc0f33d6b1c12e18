package bridge

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/gobridge/gobridge/internal/testenv"
)

// The address table in interop_tests/vectors/addresses.json is checked by
// this test and by pytest, so both languages parse addresses alike.
func TestAddressTable(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "interop_tests", "vectors", "addresses.json"))
	if err != nil {
		t.Fatal(err)
	}
	var table []struct {
		Address, Scheme, Rest string
		Error                 bool
	}
	if err := json.Unmarshal(data, &table); err != nil {
		t.Fatal(err)
	}
	for _, a := range table {
		scheme, rest, err := ParseAddress(a.Address)
		if a.Error {
			if !errors.Is(err, ErrBadAddress) {
				t.Errorf("ParseAddress(%q) = %q %q %v, want ErrBadAddress", a.Address, scheme, rest, err)
			}
			continue
		}
		if err != nil || scheme != a.Scheme || rest != a.Rest {
			t.Errorf("ParseAddress(%q) = %q %q %v, want %q %q", a.Address, scheme, rest, err, a.Scheme, a.Rest)
		}
	}
}
