package bench

import (
	"context"
	"embed"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// roleFiles are the Python roles of the benchmarks (python/*.py): modules
// run with `python -m`, not part of the gobridge package, so that no user's
// site-packages holds them.
//
//go:embed python/*.py
var roleFiles embed.FS

// writeRoles writes roleFiles to a new private directory (0700, each file
// 0600) and returns its path; the caller removes it.
func writeRoles() (string, error) {
	dir, err := os.MkdirTemp("", "gobridge-bench-")
	if err != nil {
		return "", err
	}
	names, err := fs.Glob(roleFiles, "python/*.py")
	if err == nil && len(names) == 0 {
		err = fs.ErrNotExist
	}
	for _, name := range names {
		if err != nil {
			break
		}
		var b []byte
		if b, err = roleFiles.ReadFile(name); err == nil {
			err = writeNew(filepath.Join(dir, filepath.Base(name)), b)
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// writeNew writes b to a file path that must not exist yet, mode 0600.
func writeNew(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err = f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pyEnv is the environment of every Python process the benchmarks start:
// this process's, with the roles' directory first on PYTHONPATH.
func pyEnv(o Options) []string {
	path := o.roles
	var env []string
	for _, kv := range os.Environ() {
		if v, ok := strings.CutPrefix(kv, "PYTHONPATH="); ok {
			if v != "" {
				path += string(os.PathListSeparator) + v
			}
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PYTHONPATH="+path)
}

// pyCommand is `python -m MODULE ARGS...` for a role module of python/.
func pyCommand(ctx context.Context, o Options, module string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, o.Python, append([]string{"-m", module}, args...)...)
	cmd.Env = pyEnv(o)
	return cmd
}
