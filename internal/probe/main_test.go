package probe_test

import (
	"os"
	"testing"

	"github.com/ackprobe/ackprobe/internal/natstest"
)

// TestMain removes the nats-server binary that the tests running separate
// server processes (disturbances, per-node) build in the temp directory.
func TestMain(m *testing.M) { os.Exit(natstest.Main(m)) }
