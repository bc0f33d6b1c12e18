package interop_tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobridge/gobridge/bridge"
	"github.com/gobridge/gobridge/internal/shmseg"
	"github.com/gobridge/gobridge/internal/shmtest"
	"github.com/gobridge/gobridge/internal/testenv"
)

func shmPeerScript() string {
	return filepath.Join(testenv.RepoRoot(), "interop_tests", "peers", "shm_conn_peer.py")
}

// shmConnAddr returns a fresh shm: address; at the end of the test nothing
// named after it may be left in /dev/shm.
func shmConnAddr(t *testing.T) string {
	t.Helper()
	name := testenv.Name("ic")
	t.Cleanup(func() {
		// Give exiting peers' last close a moment.
		deadline := time.Now().Add(5 * time.Second)
		for {
			left := shmLeft(name)
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("left behind in /dev/shm: %v", left)
				for _, n := range left {
					os.Remove(shmseg.Path(n))
				}
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	return "shm:" + name
}

func shmLeft(name string) []string {
	var left []string
	ents, _ := os.ReadDir(shmseg.Dir)
	for _, e := range ents {
		if n := e.Name(); n == name || strings.HasPrefix(n, name+".") {
			left = append(left, n)
		}
	}
	return left
}

// startShmServer starts an echo server on addr in Go (the gobridge command)
// or Python and returns once it accepts connections.
func startShmServer(t *testing.T, lang, addr string) {
	t.Helper()
	var cmd *exec.Cmd
	if lang == "go" {
		cmd = exec.Command(testenv.Gobridge(t), "echo", addr)
	} else {
		cmd = testenv.PythonCmd(t, shmPeerScript(), "serve-echo", addr)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The Python server exits after its one connection; the Go one
		// serves until stopped.
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
	})
	name := strings.TrimPrefix(addr, "shm:")
	deadline := time.Now().Add(20 * time.Second)
	for {
		// The listener's socket is renamed into place once it listens.
		if st, err := os.Lstat(shmseg.Path(name)); err == nil && st.Mode()&os.ModeSocket != 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s server did not listen on %s", lang, addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dialRetry dials, retrying while the listener is still initializing.
func dialRetry(t *testing.T, addr string) *bridge.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		c, err := bridge.Dial(ctx, addr)
		if err == nil {
			return c
		}
		if ctx.Err() != nil || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestShmConnPairings runs the same exchange for every client->server
// pairing: Go->Go, Go->Python, Python->Go, Python->Python.
func TestShmConnPairings(t *testing.T) {
	for _, client := range []string{"go", "python"} {
		for _, server := range []string{"go", "python"} {
			t.Run(client+"->"+server, func(t *testing.T) {
				addr := shmConnAddr(t)
				startShmServer(t, server, addr)
				if client == "python" {
					cmd := testenv.PythonCmd(t, shmPeerScript(), "check", addr)
					cmd.Stderr = os.Stderr
					out, err := runBounded(cmd, 60*time.Second)
					if err != nil || strings.TrimSpace(string(out)) != "ok" {
						t.Fatalf("python check: %v, output %q", err, out)
					}
					return
				}
				c := dialRetry(t, addr)
				defer c.Close()
				c.SetDeadline(time.Now().Add(60 * time.Second))
				values := []any{nil, true, int64(-3), uint64(1<<64 - 1), 2.5, "héllo", []byte{0, 1},
					[]any{int64(1), "x"}}
				for _, v := range values {
					if err := c.Send(v); err != nil {
						t.Fatal(err)
					}
					var got any
					if err := c.Recv(&got); err != nil {
						t.Fatal(err)
					}
					if fmt.Sprint(got) != fmt.Sprint(v) {
						t.Fatalf("sent %#v, got %#v", v, got)
					}
				}
				buf := make([]byte, 4<<20)
				for _, n := range []int{0, 1, 4095, 65536, 1 << 20, 3 << 20} {
					data := bytes.Repeat([]byte{byte(n)}, n)
					var want []byte
					if server == "go" { // the Go echo re-encodes: send msgpack bin
						if err := c.Send(data); err != nil {
							t.Fatal(err)
						}
						var got any
						if err := c.Recv(&got); err != nil {
							t.Fatal(err)
						}
						if b, _ := got.([]byte); !bytes.Equal(b, data) {
							t.Fatalf("echo of %d bytes differs", n)
						}
						continue
					}
					want = data
					if err := c.SendBytes(data); err != nil {
						t.Fatal(err)
					}
					got, err := c.RecvBytesInto(context.Background(), buf)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("echo of %d bytes differs", n)
					}
				}
			})
		}
	}
}

// startAndAccept starts cmd, a peer that dials l, and accepts its
// connection within a minute. After the test the Conn is closed, then the
// peer is waited for (and killed if it does not exit).
func startAndAccept(t *testing.T, l *bridge.Listener, cmd *exec.Cmd) *bridge.Conn {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { waitOrKill(cmd) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitOrKill lets a peer that is finishing close its end (the last handle
// removes the segment), and kills it only if it does not exit in time.
func waitOrKill(cmd *exec.Cmd) {
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func runBounded(cmd *exec.Cmd, d time.Duration) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return out.Bytes(), fmt.Errorf("%s did not finish within %v", cmd.Path, d)
	}
}

// TestShmConnPeerKilledMidMessage: a Python sender is SIGKILLed while a
// 40 MiB message sits half-written in the ring. The Go receiver gets the
// three whole messages, then ErrPeerGone within about a second, never part
// of the big one; closing reclaims the segment.
func TestShmConnPeerKilledMidMessage(t *testing.T) {
	addr := shmConnAddr(t)
	l, err := bridge.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cmd := testenv.PythonCmd(t, shmPeerScript(), "big-then-hang", addr)
	cmd.Stderr = os.Stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "sending\n" {
		t.Fatalf("peer said %q", line)
	}
	time.Sleep(200 * time.Millisecond) // the ring fills; the sender blocks mid-message
	cmd.Process.Kill()
	cmd.Wait()
	killed := time.Now()
	for i := 0; i < 3; i++ {
		b, err := c.RecvBytesContext(ctx)
		if err != nil || len(b) != 1000 || b[0] != byte(i) {
			t.Fatalf("message %d: %d bytes, %v", i, len(b), err)
		}
	}
	b, err := c.RecvBytesContext(ctx)
	if !errors.Is(err, bridge.ErrPeerGone) || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after the kill: %d bytes, %v; want ErrPeerGone", len(b), err)
	}
	if d := time.Since(killed); d > 1500*time.Millisecond {
		t.Fatalf("peer-gone took %v", d)
	}
	if _, err := c.RecvBytesContext(ctx); !errors.Is(err, bridge.ErrPeerGone) {
		t.Fatalf("second receive: %v", err)
	}
	c.Close()
	l.Close()
	if left := shmLeft(strings.TrimPrefix(addr, "shm:")); len(left) != 0 {
		t.Fatalf("not reclaimed: %v", left)
	}
}

// TestShmConnGCAfterBothDie: when both ends are SIGKILLed, the kernel frees
// the connection's memory (a memfd: no file in /dev/shm), and the stale
// listener socket is what `gobridge shm gc` removes (and `shm ls` shows).
func TestShmConnGCAfterBothDie(t *testing.T) {
	addr := shmConnAddr(t)
	name := strings.TrimPrefix(addr, "shm:")
	server := testenv.PythonCmd(t, shmPeerScript(), "serve-echo", addr)
	srvOut, _ := server.StdoutPipe()
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { server.Process.Kill(); server.Wait() }()
	if line, _ := bufio.NewReader(srvOut).ReadString('\n'); line != "ready\n" {
		t.Fatalf("server said %q", line)
	}
	cmd := testenv.PythonCmd(t, shmPeerScript(), "big-then-hang", addr)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "sending\n" {
		t.Fatalf("client said %q", line)
	}
	server.Process.Kill()
	cmd.Process.Kill()
	server.Wait()
	cmd.Wait()
	if left := shmLeft(name); len(left) != 1 || left[0] != name {
		t.Fatalf("after SIGKILL: %v, want only the stale listener socket", left)
	}
	out, err := exec.Command(testenv.Gobridge(t), "shm", "ls", "--json").Output()
	if err != nil || !strings.Contains(string(out), `"tag":"`+name+`"`) || !strings.Contains(string(out), `"kind":"socket"`) {
		t.Fatalf("gobridge shm ls: %v\n%s", err, out)
	}
	out, err = exec.Command(testenv.Gobridge(t), "shm", "gc").CombinedOutput()
	if err != nil || !strings.Contains(string(out), name) {
		t.Fatalf("gobridge shm gc: %v\n%s", err, out)
	}
	if left := shmLeft(name); len(left) != 0 {
		t.Fatalf("left after gc: %v", left)
	}
}

// TestShmConnIdleReceiverCPU: a Python receiver blocked for a second uses
// under 1% of a CPU.
func TestShmConnIdleReceiverCPU(t *testing.T) {
	addr := shmConnAddr(t)
	l, err := bridge.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cmd := testenv.PythonCmd(t, shmPeerScript(), "idle", addr)
	cmd.Stderr = os.Stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer waitOrKill(cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	c.Close()
	f := strings.Fields(line)
	if len(f) != 2 {
		t.Fatalf("peer said %q", line)
	}
	cpu, _ := strconv.ParseFloat(f[0], 64)
	t.Logf("python receiver idle for 1 s: %.2f ms CPU", cpu*1e3)
	if cpu > 0.010 || f[1] != "False" {
		t.Fatalf("idle python receiver used %.2f ms CPU in 1 s (poll said %s)", cpu*1e3, f[1])
	}
}

// stressCount is the number of messages per direction: 10 million under
// `make stress` (GOBRIDGE_STRESS=1), GOBRIDGE_SHM_STRESS_N if set, else a
// small count for CI.
func stressCount() int {
	if v, err := strconv.Atoi(os.Getenv("GOBRIDGE_SHM_STRESS_N")); err == nil && v > 0 {
		return v
	}
	if os.Getenv("GOBRIDGE_STRESS") != "" {
		return 10_000_000
	}
	return 100_000
}

// stressSize is size_for in shm_conn_peer.py.
func stressSize(seq uint64) int {
	x := (seq * 2654435761) & 0xFFFFFFFF
	switch {
	case seq%100003 == 7:
		return int(2*1024*1024 + x%4096)
	case x%97 == 0:
		return int(4096 + x%65536)
	}
	return int(x % 300)
}

func stressSend(c *bridge.Conn, n int) error {
	buf := make([]byte, 12+3<<20)
	for seq := 0; seq < n; seq++ {
		size := stressSize(uint64(seq))
		body := buf[12 : 12+size]
		for i := range body {
			body[i] = byte(seq)
		}
		binary.LittleEndian.PutUint64(buf, uint64(seq))
		binary.LittleEndian.PutUint32(buf[8:], crc32.ChecksumIEEE(body))
		if err := c.SendBytes(buf[:12+size]); err != nil {
			return fmt.Errorf("send %d: %w", seq, err)
		}
	}
	return nil
}

func stressRecv(c *bridge.Conn, n int) error {
	buf := make([]byte, 4<<20)
	for seq := 0; seq < n; seq++ {
		m, err := c.RecvBytesInto(context.Background(), buf)
		if err != nil {
			return fmt.Errorf("message %d: %w", seq, err)
		}
		if len(m) < 12 || binary.LittleEndian.Uint64(m) != uint64(seq) {
			return fmt.Errorf("message %d: out of order or short (%d bytes)", seq, len(m))
		}
		if len(m) != 12+stressSize(uint64(seq)) || crc32.ChecksumIEEE(m[12:]) != binary.LittleEndian.Uint32(m[8:]) {
			return fmt.Errorf("message %d: bad size or checksum", seq)
		}
	}
	return nil
}

// TestStressShmConn sends sequence-numbered, checksummed messages of mixed
// sizes Go->Python, Python->Go and Go->Go (across processes) and checks that
// each arrives once, in order, intact.
func TestStressShmConn(t *testing.T) {
	n := stressCount()
	limit := 120*time.Second + time.Duration(n)*20*time.Microsecond
	for _, dir := range []string{"go->python", "python->go", "go->go"} {
		t.Run(dir, func(t *testing.T) {
			addr := shmConnAddr(t)
			l, err := bridge.Listen(addr)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			var cmd *exec.Cmd
			switch dir {
			case "go->python":
				cmd = testenv.PythonCmd(t, shmPeerScript(), "stress-recv", addr, strconv.Itoa(n))
			case "python->go":
				cmd = testenv.PythonCmd(t, shmPeerScript(), "stress-send", addr, strconv.Itoa(n))
			case "go->go":
				exe, _ := os.Executable()
				cmd = exec.Command(exe, "-test.run=^TestShmConnHelper$")
				cmd.Env = append(os.Environ(), "GOBRIDGE_SHM_HELPER="+addr, "GOBRIDGE_SHM_HELPER_N="+strconv.Itoa(n))
			}
			cmd.Stderr = os.Stderr
			cmd.Stdout = os.Stderr
			c := startAndAccept(t, l, cmd)
			timer := time.AfterFunc(limit, func() { c.Close() }) // bounded
			defer timer.Stop()
			start := time.Now()
			if dir == "python->go" {
				if err := stressRecv(c, n); err != nil {
					t.Fatal(err)
				}
				if err := c.Send("ok"); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := stressSend(c, n); err != nil {
					t.Fatal(err)
				}
				var reply any
				if err := c.Recv(&reply); err != nil || reply != "ok" {
					t.Fatalf("receiver: %v %v", reply, err)
				}
			}
			t.Logf("%s: %d messages in %v", dir, n, time.Since(start).Round(time.Millisecond))
			c.Close()
			if err := cmd.Wait(); err != nil {
				t.Fatalf("peer: %v", err)
			}
		})
	}
}

// TestShmConnHelper is the Go receiver of the go->go stress, run as a child.
func TestShmConnHelper(t *testing.T) {
	addr := os.Getenv("GOBRIDGE_SHM_HELPER")
	if addr == "" {
		t.Skip("helper process only")
	}
	n, _ := strconv.Atoi(os.Getenv("GOBRIDGE_SHM_HELPER_N"))
	c, err := bridge.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := stressRecv(c, n); err != nil {
		c.Send(err.Error())
		t.Fatal(err)
	}
	c.Send("ok")
	var v any
	if err := c.Recv(&v); err != io.EOF {
		t.Fatalf("after the stress: %v", err)
	}
}

// startPythonEchoMany starts the Python listener that echoes on every
// connection, and returns once it listens.
func startPythonEchoMany(t *testing.T, addr string) {
	t.Helper()
	cmd := testenv.PythonCmd(t, shmPeerScript(), "serve-echo-many", addr)
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		waitOrKill(cmd)
	})
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("python server said %q", line)
	}
}

// TestShmIndexWrapGoToPython: Go's ring code, driven by a hand-made dialer
// whose rings start just below 2^64, and Python's listener carry frames
// across the wrap both ways: small ones (the tenth 100-byte frame ends
// exactly at 2^64) and one streamed through the ring.
func TestShmIndexWrapGoToPython(t *testing.T) {
	addr := shmConnAddr(t)
	startPythonEchoMany(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := shmtest.Dialer{Start: 1<<64 - 1000}.Dial(ctx, strings.TrimPrefix(addr, "shm:"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !p.Accepted() {
		t.Fatalf("reply %q", p.Reply)
	}
	p.SetDeadline(time.Now().Add(30 * time.Second))
	big := bytes.Repeat([]byte("wrap"), 3<<18) // 3 MiB through a 1 MiB ring
	for i := 0; i < 40; i++ {
		msg := bytes.Repeat([]byte{byte(i)}, 96)
		if i == 20 {
			msg = big
		}
		if err := p.Send(msg); err != nil {
			t.Fatal(err)
		}
		got, err := p.Recv()
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("message %d: %d bytes, %v", i, len(got), err)
		}
	}
	if head := binary.LittleEndian.Uint64(p.Mem[shmtest.Ring0:]); head >= 1<<64-1000 {
		t.Fatalf("head %d did not wrap", head)
	}
}

// TestShmDroppedPythonClients: a Python process drops 100 connections to a
// Go listener without closing them. Each is closed when collected: the Go
// server sees every peer go, and descriptors and mappings on both sides
// come back to where they were.
func TestShmDroppedPythonClients(t *testing.T) {
	addr := shmConnAddr(t)
	l, err := bridge.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fds := func() int {
		ents, _ := os.ReadDir("/proc/self/fd")
		return len(ents)
	}
	before := fds()
	const n = 100
	ends := make(chan error, n)
	go func() {
		for i := 0; i < n; i++ {
			c, err := l.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					var v any
					err := c.Recv(&v)
					if err == nil {
						err = c.Send(v)
					}
					if err != nil {
						ends <- err
						return
					}
				}
			}()
		}
	}()
	cmd := testenv.PythonCmd(t, shmPeerScript(), "drop", addr, strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	out, err := runBounded(cmd, 120*time.Second)
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	var r struct {
		Before int `json:"fds_before"`
		After  int `json:"fds_after"`
		Maps   int `json:"maps_after"`
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	if r.After != r.Before || r.Maps != 0 {
		t.Fatalf("python side: %+v", r)
	}
	timeout := time.After(20 * time.Second)
	for got := 0; got < n; got++ {
		select {
		case err := <-ends:
			if err != io.EOF && !errors.Is(err, bridge.ErrPeerGone) {
				t.Fatalf("server end %d: %v", got, err)
			}
		case <-timeout:
			t.Fatalf("the Go server saw %d of %d dropped peers go", got, n)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for fds() > before {
		if time.Now().After(deadline) {
			t.Fatalf("go side: %d descriptors, %d before", fds(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
