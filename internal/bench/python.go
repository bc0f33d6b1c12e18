package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// FindPython returns the interpreter the benchmarks run: flag when it is
// set, else the first candidate (pythonCandidates) that can import
// gobridge. Either way it checks the import first, so that a missing
// package is said as such, with what to pass, and not as a Python role's
// "exit status 1" in the middle of a run.
func FindPython(ctx context.Context, flag string) (string, error) {
	if flag != "" {
		if msg := importsGobridge(ctx, flag); msg != "" {
			return "", fmt.Errorf("--python %s cannot import gobridge (%s): install it there (pip install ./python) or pass another interpreter", flag, msg)
		}
		return flag, nil
	}
	var tried []string
	for _, c := range pythonCandidates() {
		msg := importsGobridge(ctx, c)
		if msg == "" {
			return c, nil
		}
		tried = append(tried, c+": "+msg)
	}
	return "", fmt.Errorf("no Python interpreter with gobridge found; pass --python PATH (one where `import gobridge` works: `pip install ./python`, or `make venv` in the repository). Tried:\n  %s", strings.Join(tried, "\n  "))
}

// pythonCandidates lists, in order, the interpreters FindPython tries:
// the active virtual environment's, the .venv next to this binary (the
// repository's when it is bin/gobridge), the .venv of the current
// directory or the nearest parent that has one, and python3 on PATH.
func pythonCandidates() []string {
	var out []string
	add := func(p string) {
		if p != "" && !strings.Contains(strings.Join(out, "\x00")+"\x00", p+"\x00") {
			out = append(out, p)
		}
	}
	if v := os.Getenv("VIRTUAL_ENV"); v != "" {
		add(filepath.Join(v, "bin", "python"))
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			add(existing(filepath.Join(filepath.Dir(filepath.Dir(exe)), ".venv", "bin", "python")))
		}
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if p := existing(filepath.Join(d, ".venv", "bin", "python")); p != "" {
				add(p)
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	add("python3")
	return out
}

func existing(p string) string {
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// importsGobridge runs `python -c "import gobridge"` and returns "" when it
// works, else why not (the last line Python printed, or the exec error).
func importsGobridge(ctx context.Context, python string) string {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c", "import gobridge")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		return ""
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if last := strings.TrimSpace(lines[len(lines)-1]); last != "" {
			return last
		}
	}
	return err.Error()
}
