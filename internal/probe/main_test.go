package probe_test

import (
	"os"
	"testing"

	"github.com/ackprobe/ackprobe/internal/natstest"
)

// TestMain removes the nats-server binary the process tests built.
func TestMain(m *testing.M) { os.Exit(natstest.Main(m)) }
