// Command shmpeer is the Go side of the shared-memory interop tests: the
// seed 004 server and client (over test.dat or a tag) and small helpers the
// tests drive. Lines go to stdout; it stops on SIGINT or SIGTERM and closes
// what it opened, as the Python seeds do when interrupted.
//
//	shmpeer file-server PATH INTERVAL    write "msg i" to PATH's first 1024 bytes every INTERVAL
//	shmpeer file-client PATH INTERVAL    map PATH, print its text, every INTERVAL
//	shmpeer tag-server TAG INTERVAL      the same through tag TAG
//	shmpeer tag-client TAG INTERVAL
//	shmpeer write-tag TAG SIZE TEXT      create TAG, write TEXT, print "ready", hold until stdin closes
//	shmpeer read-tag TAG                 print the text (NULs stripped) of existing TAG
//	shmpeer mm-txt PATH                  check PATH is all 'a', write "hello from go" at 0
//	shmpeer sl-dump NAME                 print ShareableList NAME as JSON
//	shmpeer sl-set NAME INDEX JSON       set one item (JSON: number, string, bool, null; {"$bin": base64})
//	shmpeer sl-new NAME JSON             create a list, print "ready", hold until stdin closes
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/gobridge/gobridge/bridge/shm"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "shmpeer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, a []string) error {
	if len(a) < 2 {
		return fmt.Errorf("usage: see the package comment")
	}
	interval := func() time.Duration {
		d, err := time.ParseDuration(a[2])
		if err != nil {
			panic(err)
		}
		return d
	}
	switch a[0] {
	case "file-server":
		if err := os.WriteFile(a[1], make([]byte, 1024), 0o644); err != nil {
			return err
		}
		f, err := os.OpenFile(a[1], os.O_RDWR, 0)
		if err != nil {
			return err
		}
		m, err := shm.OpenFile(f, 1024, shm.AccessWrite, 0)
		f.Close()
		if err != nil {
			return err
		}
		defer m.Close()
		return serve(ctx, m, interval())
	case "file-client":
		return client(ctx, interval(), func() (*shm.MMap, error) {
			f, err := os.Open(a[1])
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return shm.OpenFile(f, 1024, shm.AccessRead, 0)
		})
	case "tag-server":
		m, err := shm.Open(a[1], 1024, shm.AccessWrite)
		if err != nil {
			return err
		}
		defer m.Close()
		return serve(ctx, m, interval())
	case "tag-client":
		return client(ctx, interval(), func() (*shm.MMap, error) {
			return shm.Open(a[1], 1024, shm.AccessRead)
		})
	case "write-tag":
		size, _ := strconv.Atoi(a[2])
		m, err := shm.Open(a[1], size, shm.AccessWrite)
		if err != nil {
			return err
		}
		defer m.Close()
		if _, err := m.Write([]byte(a[3])); err != nil {
			return err
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		return nil
	case "resize-tag": // TAG SIZE: "resized N" or "busy" (another handle maps it)
		size, _ := strconv.Atoi(a[2])
		m, err := shm.Open(a[1], 0, shm.AccessWrite, shm.WithAttachOnly())
		if err != nil {
			return err
		}
		defer m.Close()
		if err := m.Resize(size); errors.Is(err, shm.ErrBusy) {
			fmt.Println("busy")
			return nil
		} else if err != nil {
			return err
		}
		n, _ := m.Size()
		fmt.Println("resized", n)
		return nil
	case "read-tag":
		m, err := shm.Open(a[1], 0, shm.AccessRead, shm.WithAttachOnly())
		if err != nil {
			return err
		}
		defer m.Close()
		b, err := io.ReadAll(m)
		if err != nil {
			return err
		}
		fmt.Println(string(bytes.ReplaceAll(b, []byte{0}, nil)))
		return nil
	case "mm-txt":
		f, err := os.OpenFile(a[1], os.O_RDWR, 0)
		if err != nil {
			return err
		}
		m, err := shm.OpenFile(f, 0, shm.AccessDefault, 0)
		f.Close()
		if err != nil {
			return err
		}
		defer m.Close()
		if !bytes.Equal(m.Bytes(), bytes.Repeat([]byte("a"), m.Len())) {
			return fmt.Errorf("%s is not all 'a'", a[1])
		}
		if _, err := m.WriteAt([]byte("hello from go"), 0); err != nil {
			return err
		}
		fmt.Println(m.Len())
		return m.Flush()
	case "sl-dump":
		l, err := shm.OpenShareableList(a[1])
		if err != nil {
			return err
		}
		defer l.Close()
		vals, err := l.List()
		if err != nil {
			return err
		}
		return printJSON(vals)
	case "sl-set":
		l, err := shm.OpenShareableList(a[1])
		if err != nil {
			return err
		}
		defer l.Close()
		i, _ := strconv.Atoi(a[2])
		v, err := fromJSON(a[3])
		if err != nil {
			return err
		}
		return l.Set(i, v)
	case "sl-new":
		var raw []json.RawMessage
		if err := json.Unmarshal([]byte(a[2]), &raw); err != nil {
			return err
		}
		vals := make([]any, len(raw))
		for i, r := range raw {
			v, err := fromJSON(string(r))
			if err != nil {
				return err
			}
			vals[i] = v
		}
		l, err := shm.NewShareableList(a[1], vals)
		if err != nil {
			return err
		}
		defer l.Close()
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		return nil
	}
	return fmt.Errorf("unknown mode %q", a[0])
}

func serve(ctx context.Context, m *shm.MMap, every time.Duration) error {
	for i := 1; i <= 10000; i++ {
		m.Seek(0, io.SeekStart)
		if _, err := m.Write([]byte("msg " + strconv.Itoa(i))); err != nil {
			return err
		}
		if err := m.Flush(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
	return nil
}

func client(ctx context.Context, every time.Duration, open func() (*shm.MMap, error)) error {
	for {
		m, err := open()
		if err != nil {
			return err
		}
		b := make([]byte, 1024)
		n, err := m.Read(b)
		m.Close()
		if err != nil {
			return err
		}
		fmt.Println(string(bytes.ReplaceAll(b[:n], []byte{0}, nil)))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

func printJSON(vals []any) error {
	out := make([]any, len(vals))
	for i, v := range vals {
		if b, ok := v.([]byte); ok {
			out[i] = map[string]string{"$bin": base64.StdEncoding.EncodeToString(b)}
		} else {
			out[i] = v
		}
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

func fromJSON(s string) (any, error) {
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		return x.Float64()
	case map[string]any:
		b, err := base64.StdEncoding.DecodeString(fmt.Sprint(x["$bin"]))
		return b, err
	}
	return v, nil
}
