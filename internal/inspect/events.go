package inspect

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Subjects of the server's consumer advisories and ack metric events, as
// nats-server names them (server/jetstream_api.go); each is followed by
// ".<stream>.<consumer>".
const (
	SubjectNaked         = "$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED"
	SubjectMaxDeliveries = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
	SubjectTerminated    = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED"
	SubjectAckMetric     = "$JS.EVENT.METRIC.CONSUMER.ACK"
)

// Reasons the server gives in a MSG_TERMINATED advisory when a message
// left the stream while it was ack pending (server/consumer.go); any other
// reason is a client's +TERM.
var removalReasons = []string{
	"Unacknowledged message was deleted",
	"Message deleted by stream limits",
}

// Events is what the server announced about one consumer during one
// interval under --watch.
type Events struct {
	// Naks counts MSG_NAKED advisories: messages the client handed back.
	Naks int `json:"naks"`
	// MaxDeliveries counts MAX_DELIVERIES advisories: messages that reached
	// the consumer's MaxDeliver without an ack and will not be delivered again.
	MaxDeliveries int `json:"max_deliveries"`
	// Terminated counts MSG_TERMINATED advisories of a client's +TERM.
	Terminated int `json:"terminated"`
	// Removed counts MSG_TERMINATED advisories of messages that left the
	// stream (limits, age, deletes) while they were ack pending: no acks.
	Removed int `json:"removed"`
	// AckTimes are the delivery→ack times of the sampled acks
	// ($JS.EVENT.METRIC.CONSUMER.ACK, field ack_time), as received.
	AckTimes []time.Duration `json:"-"`
	// AcksAfterRedelivery counts the sampled acks of messages delivered
	// more than once: the server had redelivered them before this ack.
	AcksAfterRedelivery int `json:"acks_after_redelivery"`
}

func (e *Events) add(o *Events) {
	e.Naks += o.Naks
	e.MaxDeliveries += o.MaxDeliveries
	e.Terminated += o.Terminated
	e.Removed += o.Removed
	e.AckTimes = append(e.AckTimes, o.AckTimes...)
	e.AcksAfterRedelivery += o.AcksAfterRedelivery
}

// Key names a consumer of a stream.
type Key struct{ Stream, Consumer string }

// Listener counts the server's consumer advisories and ack metric events
// between two calls of Take. It only subscribes: it never publishes, and
// Close unsubscribes everything.
type Listener struct {
	nc   *nats.Conn
	subs []*nats.Subscription

	mu     sync.Mutex
	counts map[Key]*Events
	// unavailable says why events cannot be counted, when they cannot.
	unavailable string
}

// Listen subscribes to the advisories and ack metric events of the
// consumers in scope (every consumer, one stream's or one consumer) and
// checks, with one flush bounded by timeout, that the server accepted the
// subscriptions. A subscription the account may not make leaves the
// Listener open but Unavailable: inspect then says what it cannot count.
func Listen(nc *nats.Conn, scope Scope, timeout time.Duration) (*Listener, error) {
	l := &Listener{nc: nc, counts: map[Key]*Events{}}
	tail := ".*.*"
	switch {
	case scope.Consumer != "":
		tail = "." + scope.Stream + "." + scope.Consumer
	case scope.Stream != "":
		tail = "." + scope.Stream + ".*"
	}
	for _, prefix := range []string{SubjectNaked, SubjectMaxDeliveries, SubjectTerminated, SubjectAckMetric} {
		sub, err := nc.Subscribe(prefix+tail, l.handle(prefix))
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("subscribe to %s: %w", prefix+tail, err)
		}
		l.subs = append(l.subs, sub)
	}
	if err := nc.FlushTimeout(timeout); err != nil {
		l.unavailable = fmt.Sprintf("the server did not confirm the event subscriptions: %v", err)
		return l, nil
	}
	// A denied subscription is answered with an error before the flush's
	// PONG; nats.go reports it as the connection's last error.
	if err := nc.LastError(); err != nil && errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), "$JS.EVENT.") {
		l.unavailable = "no permission to subscribe to $JS.EVENT.> (" + strings.TrimSpace(err.Error()) + ")"
	}
	return l, nil
}

// Unavailable says why events cannot be counted, or "" when they can.
func (l *Listener) Unavailable() string {
	if l == nil {
		return "not watching"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.unavailable
}

// Take returns the events counted since the previous Take, by consumer,
// and starts counting anew.
func (l *Listener) Take() map[Key]*Events {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.counts
	l.counts = map[Key]*Events{}
	return out
}

// Close unsubscribes from every subject Listen subscribed to.
func (l *Listener) Close() {
	if l == nil {
		return
	}
	for _, s := range l.subs {
		_ = s.Unsubscribe()
	}
	l.subs = nil
}

// event holds the fields inspect reads from the advisories and metric
// events (server/jetstream_events.go).
type event struct {
	Stream   string `json:"stream"`
	Consumer string `json:"consumer"`
	Reason   string `json:"reason"`
	// AckTime is ack_time of an ack metric event: nanoseconds from the
	// delivery to the ack being applied.
	AckTime int64 `json:"ack_time"`
	// Deliveries is how many times the message was delivered.
	Deliveries uint64 `json:"deliveries"`
}

func (l *Listener) handle(prefix string) nats.MsgHandler {
	return func(m *nats.Msg) {
		var e event
		if err := json.Unmarshal(m.Data, &e); err != nil {
			return
		}
		if e.Stream == "" || e.Consumer == "" {
			// Take the names from the subject: <prefix>.<stream>.<consumer>.
			parts := strings.Split(strings.TrimPrefix(m.Subject, prefix+"."), ".")
			if len(parts) != 2 {
				return
			}
			e.Stream, e.Consumer = parts[0], parts[1]
		}
		var one Events
		switch prefix {
		case SubjectNaked:
			one.Naks = 1
		case SubjectMaxDeliveries:
			one.MaxDeliveries = 1
		case SubjectTerminated:
			if slices.Contains(removalReasons, e.Reason) {
				one.Removed = 1
			} else {
				one.Terminated = 1
			}
		case SubjectAckMetric:
			if e.AckTime < 0 {
				return
			}
			one.AckTimes = []time.Duration{time.Duration(e.AckTime)}
			if e.Deliveries > 1 {
				one.AcksAfterRedelivery = 1
			}
		}
		k := Key{e.Stream, e.Consumer}
		l.mu.Lock()
		defer l.mu.Unlock()
		c := l.counts[k]
		if c == nil {
			c = &Events{}
			l.counts[k] = c
		}
		c.add(&one)
	}
}
