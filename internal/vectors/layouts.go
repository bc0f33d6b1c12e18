package vectors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// LayoutsPath is the location of layouts.json: the byte layouts of every
// shared-memory structure of wire/SPEC.md (sections 9.4, 10, 11.2), which
// each language's tests check its constants against.
func LayoutsPath() string { return filepath.Join(filepath.Dir(Path()), "layouts.json") }

// Layouts is layouts.json, a section per structure.
type Layouts struct {
	t        testing.TB
	sections map[string]map[string]json.RawMessage
}

// A Field is a field's offset and size in bytes (size 0: runs to the end).
type Field struct{ Off, Size int }

// LoadLayouts reads layouts.json.
func LoadLayouts(t testing.TB) *Layouts {
	t.Helper()
	data, err := os.ReadFile(LayoutsPath())
	if err != nil {
		t.Fatalf("shared layouts: %v", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("layouts.json: %v", err)
	}
	l := &Layouts{t: t, sections: map[string]map[string]json.RawMessage{}}
	for name, v := range raw {
		var sec map[string]json.RawMessage
		if json.Unmarshal(v, &sec) == nil { // "about" is a string
			l.sections[name] = sec
		}
	}
	return l
}

func (l *Layouts) get(section, key string, into any) {
	l.t.Helper()
	sec, ok := l.sections[section]
	if !ok {
		l.t.Fatalf("layouts.json has no section %q", section)
	}
	v, ok := sec[key]
	if !ok {
		l.t.Fatalf("layouts.json: %s has no %q", section, key)
	}
	if err := json.Unmarshal(v, into); err != nil {
		l.t.Fatalf("layouts.json: %s.%s: %v", section, key, err)
	}
}

// Int returns section.key, a number.
func (l *Layouts) Int(section, key string) int64 {
	l.t.Helper()
	var n int64
	l.get(section, key, &n)
	return n
}

// Str returns section.key, a string.
func (l *Layouts) Str(section, key string) string {
	l.t.Helper()
	var s string
	l.get(section, key, &s)
	return s
}

// Strings returns section.key, a list of strings.
func (l *Layouts) Strings(section, key string) []string {
	l.t.Helper()
	var s []string
	l.get(section, key, &s)
	return s
}

// Keys returns the names in section.key, an object, sorted.
func (l *Layouts) Keys(section, key string) []string {
	l.t.Helper()
	var m map[string]json.RawMessage
	l.get(section, key, &m)
	return sortedKeys(m, map[string]bool{})
}

// Ints returns section.key, an object of numbers (kind codes, lock bytes).
func (l *Layouts) Ints(section, key string) map[string]int64 {
	l.t.Helper()
	var m map[string]int64
	l.get(section, key, &m)
	return m
}

// CheckFields compares section.fields with the fields of the code (name ->
// offset, size): every field on either side must be on the other, at the
// same offset with the same size.
func (l *Layouts) CheckFields(section string, code map[string]Field) {
	l.t.Helper()
	var raw map[string][2]int
	l.get(section, "fields", &raw)
	for _, name := range sortedKeys(raw, code) {
		f, inFile := raw[name]
		c, inCode := code[name]
		switch {
		case !inFile:
			l.t.Errorf("%s.%s: the code has it at %d (%d bytes), layouts.json does not", section, name, c.Off, c.Size)
		case !inCode:
			l.t.Errorf("%s.%s: layouts.json has it at %d (%d bytes), the code does not", section, name, f[0], f[1])
		case f[0] != c.Off || f[1] != c.Size:
			l.t.Errorf("%s.%s: layouts.json says offset %d, %d bytes; the code %d, %d bytes", section, name, f[0], f[1], c.Off, c.Size)
		}
	}
}

// CheckInts compares section.key with the code's values, as CheckFields.
func (l *Layouts) CheckInts(section, key string, code map[string]int64) {
	l.t.Helper()
	file := l.Ints(section, key)
	for _, name := range sortedKeys(file, code) {
		f, inFile := file[name]
		c, inCode := code[name]
		if !inFile || !inCode || f != c {
			l.t.Errorf("%s.%s.%s: layouts.json %d (present: %v), the code %d (present: %v)", section, key, name, f, inFile, c, inCode)
		}
	}
}

func sortedKeys[A, B any](a map[string]A, b map[string]B) []string {
	seen := map[string]bool{}
	var keys []string
	for k := range a {
		seen[k] = true
		keys = append(keys, k)
	}
	for k := range b {
		if !seen[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}
