package limits

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/natstest"
)

const mib = 1 << 20

// accountsConf has one account per kind of limit; sizes are in bytes so
// that the arithmetic below is exact.
const accountsConf = `
listen: "127.0.0.1:-1"
jetstream { store_dir: $STORE, max_memory_store: 64MB, max_file_store: 64MB }
accounts {
  FREE: { jetstream: enabled, users: [{user: free, password: p}] }
  ACK:  { jetstream: {max_ack_pending: 10}, users: [{user: ack, password: p}] }
  MEM:  { jetstream: {max_mem: 1048576, max_file: 2097152}, users: [{user: mem, password: p}] }
  ONE:  { jetstream: {max_streams: 1, max_consumers: 1}, users: [{user: one, password: p}] }
  CAP:  { jetstream: {mem_max_stream_bytes: 262144, max_bytes_required: true}, users: [{user: cap, password: p}] }
}
`

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func js(t *testing.T, s *server.Server, user string) jetstream.JetStream {
	t.Helper()
	_, j := natstest.Connect(t, s.ClientURL(), nats.UserInfo(user, "p"))
	return j
}

// limitErr asserts that err is an *Error about limit.
func limitErr(t *testing.T, err error, limit string) *Error {
	t.Helper()
	var le *Error
	if !errors.As(err, &le) || le.Limit != limit {
		t.Fatalf("error %v (%T), want a %s limit", err, err, limit)
	}
	if strings.Contains(le.Error(), "\n") || !strings.Contains(le.Error(), strings.ReplaceAll(limit, "tier", "limits for")) {
		t.Errorf("message %q should be one line naming %s", le.Error(), limit)
	}
	return le
}

// apiCode returns the JetStream API error code of err, or 0.
func apiCode(err error) jetstream.ErrorCode {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		return api.ErrorCode
	}
	return 0
}

// probeStream creates the stream a probe would, with the fit's max_bytes.
func probeStream(t *testing.T, j jetstream.JetStream, name string, storage jetstream.StorageType, maxBytes int64) (jetstream.Stream, error) {
	t.Helper()
	return j.CreateStream(ctx(t), jetstream.StreamConfig{Name: name, Subjects: []string{strings.ToLower(name)},
		Storage: storage, MaxBytes: maxBytes, Discard: jetstream.DiscardNew})
}

func TestUnlimitedAccount(t *testing.T) {
	t.Parallel()
	s := natstest.RunServerConf(t, accountsConf)
	fit, err := Check(ctx(t), js(t, s, "free"), Plan{Count: 1000, Modes: 2, NewStream: true, NewConsumers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if fit.MaxAckPending != DefaultMaxAckPending || fit.MaxBytes != 1000*2*DefaultMsgBytes || len(fit.Notes) != 0 || fit.Tier != "" {
		t.Errorf("fit %+v", fit)
	}
}

// TestMaxAckPending fits ackprobe's default to the account's
// max_ack_pending, and the server takes the fitted value where it refuses
// the default.
func TestMaxAckPending(t *testing.T) {
	t.Parallel()
	s := natstest.RunServerConf(t, accountsConf)
	j := js(t, s, "ack")
	fit, err := Check(ctx(t), j, Plan{Count: 1, Modes: 2})
	if err != nil {
		t.Fatal(err)
	}
	if fit.MaxAckPending != 10 || len(fit.Notes) != 1 || !strings.Contains(fit.Notes[0], "max_ack_pending") {
		t.Errorf("fit %+v", fit)
	}
	st, err := probeStream(t, j, "P", jetstream.MemoryStorage, fit.MaxBytes)
	if err != nil {
		t.Fatal(err)
	}
	cfg := jetstream.ConsumerConfig{Durable: "C", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: DefaultMaxAckPending}
	if _, err := st.CreateConsumer(ctx(t), cfg); apiCode(err) != 10121 {
		t.Fatalf("the default max ack pending: %v, want 10121", err)
	}
	cfg.MaxAckPending = fit.MaxAckPending
	if _, err := st.CreateConsumer(ctx(t), cfg); err != nil {
		t.Fatalf("the fitted max ack pending: %v", err)
	}

	// Asked for explicitly: kept when it fits, refused when it does not.
	if fit, err := Check(ctx(t), j, Plan{MaxAckPending: 5}); err != nil || fit.MaxAckPending != 5 || len(fit.Notes) != 0 {
		t.Errorf("--max-ack-pending 5: %+v %v", fit, err)
	}
	le := limitErr(t, func() error { _, err := Check(ctx(t), j, Plan{MaxAckPending: 11}); return err }(), "max_ack_pending")
	if le.Value != 10 || le.Need != 11 || le.Fits != 10 {
		t.Errorf("%+v", le)
	}
}

// TestAccountStorage checks the storage arithmetic against the server's:
// at the boundary Decide accepts exactly the plans whose stream the server
// creates, with and without other streams using and reserving space.
func TestAccountStorage(t *testing.T) {
	t.Parallel()
	s := natstest.RunServerConf(t, accountsConf)
	j := js(t, s, "mem")
	const perMsg = 2 * DefaultMsgBytes
	edge := func(storage jetstream.StorageType, limit string, want int64) {
		t.Helper()
		fits := Plan{Count: int(want), Modes: 2, Storage: storage, NewStream: true}
		fit, err := Check(ctx(t), j, fits)
		if err != nil {
			t.Fatalf("%d messages: %v", want, err)
		}
		over := fits
		over.Count++
		_, err = Check(ctx(t), j, over)
		if le := limitErr(t, err, limit); le.Fits != want || le.Need != int64(over.Count)*perMsg {
			t.Errorf("%+v, want %d to fit", le, want)
		}
		// The server agrees on both sides of the edge.
		if _, err := probeStream(t, j, "OVER", storage, fit.MaxBytes+perMsg); err == nil {
			t.Errorf("the server created a stream past the edge")
		}
		st, err := probeStream(t, j, "EDGE", storage, fit.MaxBytes)
		if err != nil {
			t.Fatalf("the server refused the stream that fits: %v", err)
		}
		if err := j.DeleteStream(ctx(t), st.CachedInfo().Config.Name); err != nil {
			t.Fatal(err)
		}
	}
	edge(jetstream.MemoryStorage, "max_memory", mib/perMsg)
	edge(jetstream.FileStorage, "max_storage", 2*mib/perMsg)

	// Another stream reserves a quarter of the memory with max_bytes.
	if _, err := probeStream(t, j, "RESERVED", jetstream.MemoryStorage, mib/4); err != nil {
		t.Fatal(err)
	}
	edge(jetstream.MemoryStorage, "max_memory", 3*mib/4/perMsg)

	// One without max_bytes uses half of it: usage counts, not only
	// reservations.
	if _, err := probeStream(t, j, "USED", jetstream.MemoryStorage, 0); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("x"), 64*1024)
	for range 8 {
		if _, err := j.Publish(ctx(t), "used", payload); err != nil {
			t.Fatal(err)
		}
	}
	ai, err := j.AccountInfo(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	mem := Plan{Modes: 2, Storage: jetstream.MemoryStorage, NewStream: true}
	mem.Count = int((mib-ai.Memory)/perMsg) + 1
	_, err = Check(ctx(t), j, mem)
	le := limitErr(t, err, "max_memory")
	if le.Used != int64(ai.Memory) || le.Fits != (mib-int64(ai.Memory))/perMsg {
		t.Errorf("%+v with %d in use", le, ai.Memory)
	}
	mem.Count = int(le.Fits)
	if _, err := Check(ctx(t), j, mem); err != nil {
		t.Errorf("%d messages should fit: %v", le.Fits, err)
	}
}

func TestStreamsConsumersAndStreamBytes(t *testing.T) {
	t.Parallel()
	s := natstest.RunServerConf(t, accountsConf)
	one := js(t, s, "one")
	if _, err := Check(ctx(t), one, Plan{NewStream: true, NewConsumers: 1}); err != nil {
		t.Fatal(err)
	}
	st, err := probeStream(t, one, "ONLY", jetstream.MemoryStorage, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Check(ctx(t), one, Plan{NewStream: true})
	if le := limitErr(t, err, "max_streams"); le.Value != 1 || le.Used != 1 {
		t.Errorf("%+v", le)
	}
	if _, err := probeStream(t, one, "SECOND", jetstream.MemoryStorage, 0); apiCode(err) != 10027 {
		t.Errorf("the server took a second stream: %v", err)
	}
	// Reusing the stream, one consumer fits; a second does not.
	if _, err := Check(ctx(t), one, Plan{NewConsumers: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "C1", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	_, err = Check(ctx(t), one, Plan{NewConsumers: 1, StreamConsumers: 1})
	limitErr(t, err, "max_consumers")
	if _, err := st.CreateConsumer(ctx(t), jetstream.ConsumerConfig{Durable: "C2", AckPolicy: jetstream.AckExplicitPolicy}); apiCode(err) != 10026 {
		t.Errorf("the server took a second consumer: %v", err)
	}

	// A cap on one memory stream's size, and max_bytes required.
	capped := js(t, s, "cap")
	fit, err := Check(ctx(t), capped, Plan{Count: 512, Modes: 1, Storage: jetstream.MemoryStorage, NewStream: true})
	if err != nil || len(fit.Notes) != 1 || !strings.Contains(fit.Notes[0], "max_bytes") {
		t.Fatalf("%+v %v", fit, err)
	}
	if _, err := probeStream(t, capped, "NOMAX", jetstream.MemoryStorage, 0); apiCode(err) != 10113 {
		t.Errorf("max_bytes required: %v", err)
	}
	if _, err := probeStream(t, capped, "FITS", jetstream.MemoryStorage, fit.MaxBytes); err != nil {
		t.Errorf("the fitted max_bytes: %v", err)
	}
	_, err = Check(ctx(t), capped, Plan{Count: 1025, Modes: 1, Storage: jetstream.MemoryStorage, NewStream: true})
	if le := limitErr(t, err, "memory_max_stream_bytes"); le.Fits != 1024 {
		t.Errorf("%+v", le)
	}
	if _, err := probeStream(t, capped, "TOOBIG", jetstream.MemoryStorage, 1025*DefaultMsgBytes); apiCode(err) != 10122 {
		t.Errorf("past memory_max_stream_bytes: %v", err)
	}
}

// TestServerLimitRefusesMaxBytes pins what the package doc promises: an
// account without limits of its own cannot see the server's max_mem, and a
// probe stream created with the fit's max_bytes is refused up front
// (10028 memory, 10047 file), leaving nothing behind.
func TestServerLimitRefusesMaxBytes(t *testing.T) {
	t.Parallel()
	s := natstest.RunServerConf(t, `
listen: "127.0.0.1:-1"
jetstream { store_dir: $STORE, max_mem: 1MB, max_file: 1MB }
`)
	_, j := natstest.Connect(t, s.ClientURL())
	for _, c := range []struct {
		storage jetstream.StorageType
		code    jetstream.ErrorCode
	}{{jetstream.MemoryStorage, 10028}, {jetstream.FileStorage, 10047}} {
		fit, err := Check(ctx(t), j, Plan{Count: math.MaxInt32 + 1, Modes: 2, Storage: c.storage, NewStream: true})
		if err != nil {
			t.Fatalf("the account has no limit of its own: %v", err)
		}
		if fit.MaxBytes != (math.MaxInt32+1)*2*DefaultMsgBytes {
			t.Errorf("max bytes %d", fit.MaxBytes)
		}
		if _, err := probeStream(t, j, "PROBE", c.storage, fit.MaxBytes); apiCode(err) != c.code {
			t.Errorf("%v: %v, want %d", c.storage, err, c.code)
		}
		fit, err = Check(ctx(t), j, Plan{Count: 1000, Modes: 2, Storage: c.storage, NewStream: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := probeStream(t, j, "SMALL", c.storage, fit.MaxBytes); err != nil {
			t.Errorf("%v: a stream that fits: %v", c.storage, err)
		}
		if err := j.DeleteStream(ctx(t), "SMALL"); err != nil {
			t.Fatal(err)
		}
	}
	for name := range j.StreamNames(ctx(t)).Name() {
		t.Errorf("stream %q left behind", name)
	}
}

// TestTieredLimits reads per-tier limits of an account from a JWT.
func TestTieredLimits(t *testing.T) {
	t.Parallel()
	s, creds := tieredServer(t, map[string]jwt.JetStreamLimits{
		"R1": {MemoryStorage: mib, DiskStorage: mib, Streams: 3, Consumer: -1, MaxAckPending: 20},
	})
	_, j := natstest.Connect(t, s.ClientURL(), nats.UserCredentials(creds))
	fit, err := Check(ctx(t), j, Plan{Count: 1, Modes: 2, NewStream: true})
	if err != nil {
		t.Fatal(err)
	}
	if fit.Tier != "R1" || fit.MaxAckPending != 20 || !strings.Contains(fit.Notes[0], "for R1 streams") {
		t.Errorf("fit %+v", fit)
	}
	_, err = Check(ctx(t), j, Plan{Count: 1, Replicas: 3, NewStream: true})
	if le := limitErr(t, err, "tier"); le.Tier != "R3" || !strings.Contains(le.Error(), "its tiers: R1") {
		t.Errorf("%+v", le)
	}
	_, err = Check(ctx(t), j, Plan{Count: mib/(2*DefaultMsgBytes) + 1, Modes: 2, Storage: jetstream.MemoryStorage, NewStream: true})
	if le := limitErr(t, err, "max_memory"); le.Tier != "R1" || le.Fits != mib/(2*DefaultMsgBytes) {
		t.Errorf("%+v", le)
	}
	if _, err := probeStream(t, j, "OVER", jetstream.MemoryStorage, mib+1); apiCode(err) != 10028 {
		t.Errorf("the server took more than the tier: %v", err)
	}
}

// tieredServer runs a server in operator mode with one account that has
// the given tiered JetStream limits, and returns a creds file of a user.
func tieredServer(t *testing.T, tiers map[string]jwt.JetStreamLimits) (*server.Server, string) {
	t.Helper()
	s := natstest.RunOperatorServer(t, func(ac *jwt.AccountClaims) {
		ac.Limits.JetStreamLimits = jwt.JetStreamLimits{}
		ac.Limits.JetStreamTieredLimits = tiers
	})
	path := t.TempDir() + "/user.creds"
	if err := os.WriteFile(path, s.Creds, 0o600); err != nil {
		t.Fatal(err)
	}
	return s.Server, path
}

// TestDecideArithmetic covers what needs a cluster or sizes no test server
// should hold: R3 tiers, untiered replicas, overflow.
func TestDecideArithmetic(t *testing.T) {
	t.Parallel()
	r3 := &jetstream.AccountInfo{Tiers: map[string]jetstream.Tier{
		"R1": {Limits: jetstream.AccountLimits{MaxMemory: mib, MaxStore: -1}},
		// 3 MiB in use over three replicas is 1 MiB per replica.
		"R3": {Memory: 3 * mib, Limits: jetstream.AccountLimits{MaxMemory: 2 * mib, MaxStore: -1}},
	}}
	perMsg := int64(2 * DefaultMsgBytes)
	mem := jetstream.MemoryStorage
	if _, err := Decide(r3, Plan{Count: int(mib / perMsg), Modes: 2, Replicas: 3, Storage: mem}); err != nil {
		t.Errorf("1 MiB per replica left in R3: %v", err)
	}
	_, err := Decide(r3, Plan{Count: int(mib/perMsg) + 1, Modes: 2, Replicas: 3, Storage: mem})
	if le := limitErr(t, err, "max_memory"); le.Tier != "R3" || le.Used != mib {
		t.Errorf("%+v", le)
	}
	// Untiered limits count every replica.
	flat := &jetstream.AccountInfo{Tier: jetstream.Tier{Limits: jetstream.AccountLimits{MaxMemory: 3 * mib, MaxStore: -1}}}
	if _, err := Decide(flat, Plan{Count: int(mib / perMsg), Modes: 2, Replicas: 3, Storage: mem}); err != nil {
		t.Errorf("R3 of 1 MiB in 3 MiB: %v", err)
	}
	_, err = Decide(flat, Plan{Count: int(mib/perMsg) + 1, Modes: 2, Replicas: 3, Storage: mem})
	if le := limitErr(t, err, "max_memory"); le.Need != 3*(mib+perMsg) || le.Fits != mib/perMsg {
		t.Errorf("%+v", le)
	}
	// No memory at all.
	_, err = Decide(&jetstream.AccountInfo{Tier: jetstream.Tier{Limits: jetstream.AccountLimits{MaxMemory: 0, MaxStore: -1}}}, Plan{Storage: mem})
	if le := limitErr(t, err, "max_memory"); !strings.Contains(le.Error(), "--storage file") || le.Fits != -1 {
		t.Errorf("%+v", le)
	}
	// Counts that overflow saturate instead of wrapping to a small need.
	huge, err := Decide(&jetstream.AccountInfo{Tier: jetstream.Tier{Limits: jetstream.AccountLimits{MaxMemory: -1, MaxStore: -1}}},
		Plan{Count: math.MaxInt, Modes: 2, MsgBytes: math.MaxInt32})
	if err != nil || huge.MaxBytes != math.MaxInt64 {
		t.Errorf("overflow: %+v %v", huge, err)
	}
	_, err = Decide(&jetstream.AccountInfo{Tier: jetstream.Tier{Limits: jetstream.AccountLimits{MaxMemory: mib, MaxStore: -1}}},
		Plan{Count: math.MaxInt, Modes: 2, Replicas: 3, Storage: mem})
	limitErr(t, err, "max_memory")
}

// TestClusterRefusesMaxBytes pins the clustered half of the package doc:
// the meta leader places a stream only on peers with room for its
// max_bytes, else 10005.
func TestClusterRefusesMaxBytes(t *testing.T) {
	t.Parallel()
	c := natstest.RunCluster(t, 3)
	_, j := natstest.Connect(t, c.URLs())
	fit, err := Check(ctx(t), j, Plan{Count: 1 << 20, Modes: 2, Replicas: 3, Storage: jetstream.MemoryStorage, NewStream: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = j.CreateStream(ctx(t), jetstream.StreamConfig{Name: "PROBE", Subjects: []string{"probe"}, Replicas: 3,
		Storage: jetstream.MemoryStorage, MaxBytes: fit.MaxBytes, Discard: jetstream.DiscardNew})
	if apiCode(err) != 10005 {
		t.Errorf("%d bytes on 256 MiB servers: %v, want 10005", fit.MaxBytes, err)
	}
}
