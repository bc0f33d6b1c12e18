package interop_tests

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gobridge/gobridge/bridge"
	"github.com/gobridge/gobridge/internal/vectors"
	"github.com/gobridge/gobridge/wire"
)

var vectorErrors = map[string]error{
	"malformed":           wire.ErrMalformed,
	"too_deep":            wire.ErrTooDeep,
	"too_many_containers": wire.ErrTooManyContainers,
	"invalid_utf8":        wire.ErrInvalidUTF8,
	"unknown_extension":   wire.ErrUnknownExtension,
	"unsupported_key":     wire.ErrUnsupportedKey,
}

// Every payload Python cannot decode crosses the language line both ways,
// each followed by a good message on the same connection: the receiver
// reports the documented error (Python DecodeError; Go the vector's
// sentinel, or the value for a timestamp only Go can hold) and then gets
// the next message.
func TestDecodeErrorsAcross(t *testing.T) {
	var bad []vectors.Vector
	for _, v := range vectors.Load(t) {
		if v.Error != "" || v.PyError != "" {
			bad = append(bad, v)
		}
	}
	if len(bad) < 25 {
		t.Fatalf("only %d invalid vectors", len(bad))
	}
	for _, transport := range []string{"unix", "pipe"} {
		t.Run(transport, func(t *testing.T) {
			c, cmd := startPeer(t, transport, "decode-errors")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for _, v := range bad { // Go -> Python
				p, err := v.Payload()
				if err != nil {
					t.Fatal(err)
				}
				if err := c.SendBytesContext(ctx, p); err != nil {
					t.Fatalf("%s: %v", v.Name, err)
				}
				if err := c.SendContext(ctx, "next "+v.Name); err != nil {
					t.Fatal(err)
				}
				var reply []any
				if err := c.RecvContext(ctx, &reply); err != nil {
					t.Fatalf("%s: reply: %v", v.Name, err)
				}
				if reply[0] != "DecodeError" || reply[2] != "next "+v.Name {
					t.Errorf("%s: Python got %v", v.Name, reply)
				}
				msg, _ := reply[1].(string)
				switch {
				case v.PyError == "timestamp_range" && !strings.Contains(msg, "timestamp out of range"),
					v.Error == "too_many_containers" && !strings.Contains(msg, "too many arrays and maps"):
					t.Errorf("%s: Python said %q", v.Name, msg)
				}
			}
			for _, v := range bad { // Python -> Go
				var got any
				err := c.RecvContext(ctx, &got)
				if v.PyError != "" {
					want, werr := expectedValue(v)
					if err != nil || werr != nil || !vectors.Same(got, want) {
						t.Errorf("%s: Go got %#v, %v; want %#v", v.Name, got, err, want)
					}
				} else if !errors.Is(err, vectorErrors[v.Error]) || !errors.Is(err, bridge.ErrDecode) {
					t.Errorf("%s: Go got %v, want %v", v.Name, err, vectorErrors[v.Error])
				}
				var next string
				if err := c.RecvContext(ctx, &next); err != nil || next != "after "+v.Name {
					t.Fatalf("%s: the next message: %q, %v", v.Name, next, err)
				}
			}
			c.Close()
			if err := cmd.Wait(); err != nil {
				t.Fatalf("python peer: %v", err)
			}
		})
	}
}
