package interop_tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gobridge/gobridge/bridge/mp"
	"github.com/gobridge/gobridge/internal/testenv"
)

// buildMPPeer builds the Go peer of the shared-object tests.
func buildMPPeer(t *testing.T) string { return buildGoPeer(t, "mppeer") }

// TestMPLoad is the CI-sized run of the queue load test; TestStressMPLoad
// (make stress) sends a million messages.
func TestMPLoad(t *testing.T) { mpLoad(t, 1000) }

func TestStressMPLoad(t *testing.T) {
	if os.Getenv("GOBRIDGE_STRESS") == "" {
		t.Skip("set GOBRIDGE_STRESS=1 (make stress)")
	}
	mpLoad(t, 1_000_000/8)
}

// mpLoad: 4 Go and 4 Python producers put perProducer messages each
// ([id, seq, crc32, payload]) into one queue; 4 Go and 4 Python consumers
// take them until their null end marker and report, per producer, the count,
// the sum and the sum of squares of the sequence numbers and how many
// payloads failed their checksum. Exactly once means every producer's count
// is perProducer and its sums are those of 0..perProducer-1.
func mpLoad(t *testing.T, perProducer int) {
	py := testenv.Python(t)
	peer := buildMPPeer(t)
	name := testenv.Name("mpload")
	q, err := mp.OpenQueue(name, mp.WithMaxSize(1000), mp.WithCapacity(256<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer cancel()
	pyPeer := filepath.Join(testenv.RepoRoot(), "interop_tests", "mp_peer.py")
	start := func(args ...string) *exec.Cmd {
		var c *exec.Cmd
		if args[0] == "go" {
			c = exec.CommandContext(ctx, peer, args[1:]...)
		} else {
			c = exec.CommandContext(ctx, py, append([]string{pyPeer}, args[1:]...)...)
		}
		c.Stderr = os.Stderr
		return c
	}
	var consumers []*exec.Cmd
	var outs []*bytes.Buffer
	for i := 0; i < 8; i++ {
		side := []string{"go", "py"}[i%2]
		c := start(side, "consume", name)
		b := &bytes.Buffer{}
		c.Stdout = b
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		consumers, outs = append(consumers, c), append(outs, b)
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	for id := 0; id < 8; id++ {
		side := []string{"go", "py"}[id%2]
		c := start(side, "produce", name, fmt.Sprint(id), fmt.Sprint(perProducer), fmt.Sprint(8+id*5))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(); err != nil {
				t.Errorf("producer %d: %v", id, err)
			}
		}()
	}
	wg.Wait()
	for range consumers {
		if err := q.Put(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	type acc struct {
		Count, Sum, Bad int64
		Sum2            float64
	}
	total := map[string]*acc{}
	for i, c := range consumers {
		if err := c.Wait(); err != nil {
			t.Fatalf("consumer %d: %v", i, err)
		}
		var got map[string]acc
		if err := json.Unmarshal(outs[i].Bytes(), &got); err != nil {
			t.Fatalf("consumer %d: %v: %q", i, err, outs[i].String())
		}
		for id, a := range got {
			if total[id] == nil {
				total[id] = &acc{}
			}
			total[id].Count += a.Count
			total[id].Sum += a.Sum
			total[id].Sum2 += a.Sum2
			total[id].Bad += a.Bad
		}
	}
	el := time.Since(t0)
	n := int64(perProducer)
	for id := 0; id < 8; id++ {
		a := total[fmt.Sprint(id)]
		if a == nil {
			t.Fatalf("producer %d: nothing delivered", id)
		}
		wantSum2 := float64(n-1) * float64(n) * float64(2*n-1) / 6
		if a.Count != n || a.Sum != n*(n-1)/2 || a.Sum2 != wantSum2 || a.Bad != 0 {
			t.Errorf("producer %d: %+v, want count %d sum %d sum2 %.0f, no bad checksums", id, *a, n, n*(n-1)/2, wantSum2)
		}
	}
	t.Logf("%d messages through one queue in %v (%.0f msg/s)", 8*n, el, float64(8*n)/el.Seconds())
	if q.Qsize() != 0 {
		t.Fatalf("%d messages left", q.Qsize())
	}
}
