package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/gobridge/gobridge/bridge/shm"
	"github.com/gobridge/gobridge/internal/shmseg"
)

const shmUsage = `Inspect and manage shared-memory segments (/dev/shm; wire/SPEC.md section 9).

  gobridge shm ls [--json]                        every segment: tag, size, owner, mode, live handles, kind;
                                                  shm: listener sockets show kind socket, 1 handle while live
  gobridge shm cat TAG [--offset N] [--length N]  segment bytes to stdout
  gobridge shm write TAG [--offset N] [--size N]  stdin into the segment; a new TAG is created
                                                  (size of the input, or --size) and kept
  gobridge shm rm TAG...                          remove segments now (holders keep their mappings)
  gobridge shm gc [--kept] [--dry-run]            remove your gobridge segments no live process holds
                                                  and your stale listener sockets
                                                  ("removed TAG"; "would remove TAG" with --dry-run)`

func runShm(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: gobridge shm ls|cat|write|rm|gc ...\n\n"+shmUsage)
		return fmt.Errorf("%w: missing subcommand", errUsage)
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, shmUsage)
		return nil
	case "ls":
		return shmLs(args[1:], stdout, stderr)
	case "cat":
		return shmCat(args[1:], stdout, stderr)
	case "write":
		return shmWrite(args[1:], os.Stdin, stdout, stderr)
	case "rm":
		return shmRm(args[1:], stdout, stderr)
	case "gc":
		return shmGC(args[1:], stdout, stderr)
	}
	return fmt.Errorf("%w: unknown subcommand %q (ls, cat, write, rm, gc)", errUsage, args[0])
}

type shmEntry struct {
	Tag     string `json:"tag"`
	Size    int64  `json:"size"`
	Owner   string `json:"owner"`
	UID     uint32 `json:"uid"`
	Mode    string `json:"mode"`
	Handles int    `json:"handles"`
	Kind    string `json:"kind"`
	Keep    bool   `json:"keep"`
}

func shmLs(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("shm ls", "[--json] [--prefix P]", "List /dev/shm: tag, size, owner, mode, live gobridge handles\n"+
		"(flock holders), kind (- when the segment is not gobridge's) and keep. Unix sockets\n"+
		"(shm: listeners) show kind socket and 1 handle when a listener accepts a probe.", stderr)
	asJSON := fs.Bool("json", false, "print a JSON array")
	prefix := fs.String("prefix", "", "only the names that start with `P`")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: ls takes no arguments", errUsage)
	}
	infos, err := shmseg.List()
	if err != nil {
		return err
	}
	socks, err := shmseg.ListSockets(*prefix)
	if err != nil {
		return err
	}
	mine := infos[:0]
	for _, i := range infos {
		if strings.HasPrefix(i.Name, *prefix) {
			mine = append(mine, i)
		}
	}
	infos = append(mine, socks...)
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	entries := make([]shmEntry, 0, len(infos))
	for _, i := range infos {
		owner := strconv.FormatUint(uint64(i.UID), 10)
		if u, err := user.LookupId(owner); err == nil {
			owner = u.Username
		}
		kind := i.Kind
		if kind == "" {
			kind = "-"
		}
		entries = append(entries, shmEntry{i.Name, i.Size, owner, i.UID, fmt.Sprintf("%04o", uint32(i.Mode)), i.Handles, kind, i.Keep})
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(entries)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TAG\tSIZE\tOWNER\tMODE\tHANDLES\tKIND\tKEEP")
	for _, e := range entries {
		keep := ""
		if e.Keep {
			keep = "keep"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\n", e.Tag, e.Size, e.Owner, e.Mode, e.Handles, e.Kind, keep)
	}
	return tw.Flush()
}

func oneTag(pos []string, what string) (string, error) {
	if len(pos) != 1 {
		return "", fmt.Errorf("%w: %s needs exactly one TAG", errUsage, what)
	}
	return pos[0], nil
}

func shmCat(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("shm cat", "TAG [--offset N] [--length N]", "Copy a segment's bytes to stdout.", stderr)
	offset := fs.Int64("offset", 0, "first byte")
	length := fs.Int64("length", -1, "number of bytes (default: to the end)")
	other := fs.Bool("allow-other-owner", false, "read a segment owned by another user")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	tag, err := oneTag(pos, "cat")
	if err != nil {
		return err
	}
	opts := []shm.OpenOption{shm.WithAttachOnly()}
	if *other {
		opts = append(opts, shm.WithAllowOtherOwner())
	}
	m, err := shm.Open(tag, 0, shm.AccessRead, opts...)
	if err != nil {
		return err
	}
	defer m.Close()
	size := int64(m.Len())
	if *offset < 0 || *offset > size {
		return fmt.Errorf("%w: offset %d of a %d-byte segment", errUsage, *offset, size)
	}
	end := size
	if *length >= 0 {
		end = min(size, *offset+*length)
	}
	buf := make([]byte, min(end-*offset, 1<<20))
	for off := *offset; off < end; {
		n := min(int64(len(buf)), end-off)
		if _, err := m.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if _, err := stdout.Write(buf[:n]); err != nil {
			return err
		}
		off += n
	}
	return nil
}

func shmWrite(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("shm write", "TAG [--offset N] [--size N]",
		"Copy stdin into a segment at --offset. If TAG does not exist it is created with\n"+
			"--size bytes (default: the input's length) and kept (this command's handle closes\n"+
			"when it exits; remove it with `gobridge shm rm`). Input that does not fit is an error.", stderr)
	offset := fs.Int64("offset", 0, "where to write")
	size := fs.Int64("size", 0, "size of a new segment (default: offset + input length)")
	mode := fs.String("mode", "0600", "permissions of a new segment")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	tag, err := oneTag(pos, "write")
	if err != nil {
		return err
	}
	perm, err := strconv.ParseUint(*mode, 8, 32)
	if err != nil || perm > 0o777 {
		return fmt.Errorf("%w: --mode %q is not an octal permission", errUsage, *mode)
	}
	if *offset < 0 {
		return fmt.Errorf("%w: negative offset", errUsage)
	}
	m, err := shm.Open(tag, 0, shm.AccessWrite, shm.WithAttachOnly())
	var data []byte
	if errors.Is(err, shm.ErrNotExist) {
		if data, err = io.ReadAll(stdin); err != nil {
			return err
		}
		n := *size
		if n == 0 {
			n = *offset + int64(len(data))
		}
		if n <= 0 {
			return fmt.Errorf("%w: empty input and no --size for a new segment", errUsage)
		}
		m, err = shm.Open(tag, int(n), shm.AccessWrite, shm.WithCreateOnly(), shm.WithKeep(), shm.WithMode(os.FileMode(perm)))
	} else if err == nil {
		// Bounded read: never more than fits.
		data, err = io.ReadAll(io.LimitReader(stdin, int64(m.Len())-*offset+1))
	}
	if err != nil {
		if m != nil {
			m.Close()
		}
		return err
	}
	defer m.Close()
	if room := int64(m.Len()) - *offset; int64(len(data)) > room {
		return fmt.Errorf("%s: the input does not fit the %d bytes from offset %d (segment of %d bytes)", tag, max(room, 0), *offset, m.Len())
	}
	if _, err := m.WriteAt(data, *offset); err != nil {
		return fmt.Errorf("%s: %w (the segment has %d bytes)", tag, err, m.Len())
	}
	return nil
}

func shmRm(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("shm rm", "TAG...", "Remove segments now; processes that map them keep their mappings.", stderr)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("%w: rm needs at least one TAG", errUsage)
	}
	var errs []error
	for _, tag := range pos {
		errs = append(errs, shm.Unlink(tag))
	}
	return errors.Join(errs...)
}

func shmGC(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("shm gc", "[--kept] [--dry-run] [--prefix P]",
		"Remove your gobridge segments that no live process holds (their holders exited or\n"+
			"were killed), and your unix sockets in /dev/shm whose connect is refused (shm:\n"+
			"listeners that were killed). Segments without gobridge's mark (Python's psm_*, other\n"+
			"programs') and other users' files are never touched; kept ones only with --kept.", stderr)
	kept := fs.Bool("kept", false, "also remove unheld segments marked keep")
	dry := fs.Bool("dry-run", false, "print what would be removed, and remove nothing")
	prefix := fs.String("prefix", "", "only the names that start with `P` (one application's, one test run's)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: gc takes no arguments", errUsage)
	}
	removed, err := shmseg.GC(shmseg.GCOptions{Kept: *kept, DryRun: *dry, Prefix: *prefix})
	verb := "removed"
	if *dry {
		verb = "would remove"
	}
	for _, r := range removed {
		fmt.Fprintln(stdout, verb, r)
	}
	return err
}
