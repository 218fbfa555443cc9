package faults_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/faults"
	"github.com/ackprobe/ackprobe/internal/natstest"
)

// startServer runs an embedded JetStream server for the test.
func startServer(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host:               "127.0.0.1",
		Port:               -1,
		JetStream:          true,
		StoreDir:           t.TempDir(),
		NoLog:              true,
		NoSigs:             true,
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  64 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// startProxy runs a proxy in front of s.
func startProxy(t *testing.T, s *server.Server, cfg faults.Config) *faults.Proxy {
	t.Helper()
	cfg.Upstream = s.Addr().String()
	p, err := faults.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("proxy close: %v", err)
		}
	})
	return p
}

// connect connects a client through the proxy.
func connect(t *testing.T, p *faults.Proxy, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(p.URL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// setupConsumer creates a memory stream on "orders.>", publishes n messages
// and returns a pull consumer on it.
func setupConsumer(t *testing.T, nc *nats.Conn, n int, ackWait time.Duration) (jetstream.JetStream, jetstream.Consumer) {
	t.Helper()
	ctx := testContext(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     "ORDERS",
		Subjects: []string{"orders.>"},
		Storage:  jetstream.MemoryStorage,
	})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:   "probe",
		AckPolicy: jetstream.AckExplicitPolicy,
		AckWait:   ackWait,
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, n)
	return js, cons
}

func publish(t *testing.T, js jetstream.JetStream, n int) {
	t.Helper()
	ctx := testContext(t)
	for i := range n {
		if _, err := js.Publish(ctx, fmt.Sprintf("orders.%d", i), []byte(fmt.Sprintf("order %d", i))); err != nil {
			t.Fatal(err)
		}
	}
}

// fetch fetches exactly n messages.
func fetch(t *testing.T, cons jetstream.Consumer, n int) []jetstream.Msg {
	t.Helper()
	var msgs []jetstream.Msg
	deadline := time.Now().Add(5 * time.Second)
	for len(msgs) < n && time.Now().Before(deadline) {
		batch, err := cons.Fetch(n-len(msgs), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			t.Fatal(err)
		}
	}
	if len(msgs) != n {
		t.Fatalf("fetched %d messages, want %d", len(msgs), n)
	}
	return msgs
}

func consumerInfo(t *testing.T, cons jetstream.Consumer) *jetstream.ConsumerInfo {
	t.Helper()
	info, err := cons.Info(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// eventually polls cond until it holds, failing the test after a while.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s", what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkCoreTraffic sends ordinary messages through nc, some of which look
// like ack frames inside, and checks they arrive unchanged.
func checkCoreTraffic(t *testing.T, nc *nats.Conn) {
	t.Helper()
	sub, err := nc.SubscribeSync("data.>")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	resp, err := nc.Subscribe("svc.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Unsubscribe() }()

	payloads := [][]byte{
		{},
		[]byte("plain"),
		[]byte("\r\nPUB $JS.ACK.ORDERS.probe.1.1.1.0.0 4\r\n+ACK\r\n"),
		[]byte("HPUB $JS.ACK.x 12 16\r\nNATS/1.0\r\n\r\n+ACK\r\n"),
		bytes.Repeat([]byte("0123456789abcdef\r\n"), 300<<10/18), // larger than the proxy's buffers
	}
	for i, data := range payloads {
		msg := &nats.Msg{Subject: fmt.Sprintf("data.%d", i), Data: data}
		if i%2 == 1 {
			msg.Header = nats.Header{"Note": []string{"PUB $JS.ACK.a 1"}} // sent as HPUB
		}
		if err := nc.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
	}
	for i, data := range payloads {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if m.Subject != fmt.Sprintf("data.%d", i) || !bytes.Equal(m.Data, data) {
			t.Fatalf("message %d: got %q with %d bytes, want %d bytes", i, m.Subject, len(m.Data), len(data))
		}
		if i%2 == 1 && m.Header.Get("Note") != "PUB $JS.ACK.a 1" {
			t.Fatalf("message %d: header %v", i, m.Header)
		}
	}
	r, err := nc.Request("svc.echo", []byte("ping"), 5*time.Second)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if string(r.Data) != "ping" {
		t.Fatalf("request: reply %q", r.Data)
	}
}

func TestDropAllAcks(t *testing.T) {
	s := startServer(t)
	p := startProxy(t, s, faults.Config{DropRate: 1})
	nc := connect(t, p)
	_, cons := setupConsumer(t, nc, 20, 300*time.Millisecond)

	msgs := fetch(t, cons, 20)
	for _, m := range msgs {
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.AckFrames != 20 || st.AcksDropped != 20 || st.AcksForwarded != 0 || st.Cuts != 0 || st.Connections != 1 {
		t.Fatalf("stats %+v, want 20 ack frames, all dropped, 1 connection", st)
	}
	if info := consumerInfo(t, cons); info.NumAckPending != 20 {
		t.Fatalf("num_ack_pending %d, want 20", info.NumAckPending)
	}

	// After AckWait the server redelivers every message.
	time.Sleep(400 * time.Millisecond)
	redelivered := fetch(t, cons, 20)
	for _, m := range redelivered {
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		if md.NumDelivered != 2 {
			t.Fatalf("stream seq %d: delivered %d times, want 2", md.Sequence.Stream, md.NumDelivered)
		}
	}

	// A double ack never hears back.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := redelivered[0].DoubleAck(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("DoubleAck: %v, want context.DeadlineExceeded", err)
	}
	if st := p.Stats(); st.AcksDropped != 21 {
		t.Fatalf("stats %+v, want 21 dropped", st)
	}

	// Everything that is not an ack still goes through.
	checkCoreTraffic(t, nc)
}

func TestDropNoAcks(t *testing.T) {
	s := startServer(t)
	p := startProxy(t, s, faults.Config{})
	nc := connect(t, p)
	_, cons := setupConsumer(t, nc, 20, 300*time.Millisecond)

	msgs := fetch(t, cons, 20)
	for _, m := range msgs[:19] {
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if err := msgs[19].DoubleAck(testContext(t)); err != nil {
		t.Fatalf("DoubleAck: %v", err)
	}
	eventually(t, "acks land", func() (bool, string) {
		info := consumerInfo(t, cons)
		return info.NumAckPending == 0 && info.AckFloor.Stream == 20,
			fmt.Sprintf("num_ack_pending %d, ack floor %d", info.NumAckPending, info.AckFloor.Stream)
	})
	if st := p.Stats(); st.AckFrames != 20 || st.AcksForwarded != 20 || st.AcksDropped != 0 {
		t.Fatalf("stats %+v, want 20 ack frames, all forwarded", st)
	}
	checkCoreTraffic(t, nc)
}

func TestDropRateMatchesServer(t *testing.T) {
	const n = 200
	s := startServer(t)
	p := startProxy(t, s, faults.Config{DropRate: 0.2, Seed: 42})
	nc := connect(t, p)
	_, cons := setupConsumer(t, nc, n, time.Minute)

	for _, m := range fetch(t, cons, n) {
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if st.AckFrames != n || st.AcksDropped+st.AcksForwarded != n {
		t.Fatalf("stats %+v, want %d ack frames", st, n)
	}
	if st.AcksDropped < 10 || st.AcksDropped > 70 {
		t.Fatalf("dropped %d of %d acks at a 20%% drop rate", st.AcksDropped, n)
	}
	// The server saw exactly the acks the proxy forwarded. Pending only
	// goes down as the server works through the acks, so wait for it to
	// reach the dropped count and check that it stays there.
	eventually(t, "pending settles", func() (bool, string) {
		pending := consumerInfo(t, cons).NumAckPending
		return int64(pending) == st.AcksDropped, fmt.Sprintf("num_ack_pending %d, dropped %d", pending, st.AcksDropped)
	})
	time.Sleep(100 * time.Millisecond)
	if pending := consumerInfo(t, cons).NumAckPending; int64(pending) != st.AcksDropped {
		t.Fatalf("num_ack_pending %d, dropped %d", pending, st.AcksDropped)
	}
	t.Logf("dropped %d of %d acks", st.AcksDropped, n)
}

func TestCutAfter(t *testing.T) {
	s := startServer(t)
	p := startProxy(t, s, faults.Config{CutAfter: 3})
	reconnected := make(chan struct{}, 1)
	nc := connect(t, p,
		nats.ReconnectWait(50*time.Millisecond),
		nats.MaxReconnects(-1),
		nats.ReconnectHandler(func(*nats.Conn) {
			select {
			case reconnected <- struct{}{}:
			default:
			}
		}),
	)
	js, cons := setupConsumer(t, nc, 10, time.Minute)

	for _, m := range fetch(t, cons, 10) {
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-reconnected:
	case <-time.After(5 * time.Second):
		t.Fatal("client did not reconnect after the cut")
	}
	if st := p.Stats(); st.Cuts != 1 || st.Connections < 2 {
		t.Fatalf("stats %+v, want 1 cut and at least 2 connections", st)
	}

	// The third ack was written before the cut, so the server has it.
	eventually(t, "acks before the cut land", func() (bool, string) {
		floor := consumerInfo(t, cons).AckFloor.Stream
		return floor >= 3, fmt.Sprintf("ack floor %d", floor)
	})

	// The new connection is proxied without further cuts.
	publish(t, js, 5)
	more := fetch(t, cons, 5)
	for _, m := range more {
		if err := m.DoubleAck(testContext(t)); err != nil {
			t.Fatalf("DoubleAck after reconnect: %v", err)
		}
	}
	checkCoreTraffic(t, nc)
	if st := p.Stats(); st.Cuts != 1 {
		t.Fatalf("stats %+v, want exactly 1 cut", st)
	}
}

func TestStartRejectsBadConfig(t *testing.T) {
	for _, cfg := range []faults.Config{
		{Upstream: "no-port"},
		{Upstream: "127.0.0.1:4222", DropRate: -0.1},
		{Upstream: "127.0.0.1:4222", DropRate: 1.5},
		{Upstream: "127.0.0.1:4222", CutAfter: -1},
	} {
		if p, err := faults.Start(cfg); err == nil {
			_ = p.Close()
			t.Errorf("Start(%+v) succeeded", cfg)
		}
	}
}

func TestUnreachableUpstreamAndClose(t *testing.T) {
	// A port nobody listens on.
	addr := strings.TrimPrefix(natstest.RefusedURL(t), "nats://")

	p, err := faults.Start(faults.Config{Upstream: addr})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.URL(), "nats://127.0.0.1:") {
		t.Fatalf("URL %q", p.URL())
	}
	if _, err := nats.Connect(p.URL(), nats.NoReconnect(), nats.Timeout(time.Second)); err == nil {
		t.Fatal("connected through a proxy to nowhere")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(p.URL(), "nats://"), time.Second); err == nil {
		_ = c.Close()
		t.Fatal("proxy still accepts after Close")
	}
}

func TestCloseWithLiveConnections(t *testing.T) {
	s := startServer(t)
	p, err := faults.Start(faults.Config{Upstream: s.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	disconnected := make(chan struct{})
	nc, err := nats.Connect(p.URL(), nats.NoReconnect(),
		nats.ClosedHandler(func(*nats.Conn) { close(disconnected) }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs with a live connection")
	}
	select {
	case <-disconnected:
	case <-time.After(5 * time.Second):
		t.Fatal("client was not disconnected by Close")
	}
}
