package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// preflight tries, before the probe creates or publishes anything, the
// subjects a run needs whose refusal would otherwise show only after the
// stream or consumer exists, or after probe messages were stored: a
// locked-down account that lacks one is refused with nothing changed.
// Every try is harmless:
//   - a publish to the probe subject carries Nats-Expected-Stream naming
//     the probe stream, which does not exist yet: a stream that stores the
//     subject refuses it (nats-server processJetStreamMsg);
//   - API requests name a stream or consumer that does not exist, or carry
//     no body (a consumer create without a configuration is refused);
//   - the purge of the probe subject of a stream that stays removes only
//     probe messages (the subject was checked to hold nothing else);
//   - a pull request and an ack go to a consumer that does not exist.
//
// The server answers a refused publish or subscription with a permission
// violation, which arrives before the answer to the flush that follows.
func (p *Probe) preflight(ctx context.Context) error {
	newStream, newConsumer := p.streamHandle == nil, p.cons == nil
	api := func(format string, args ...any) string {
		return p.apiPrefix() + fmt.Sprintf(format, args...)
	}
	type try struct {
		subject string
		request bool
		payload []byte
		header  nats.Header
	}
	var tries []try
	if newStream {
		tries = append(tries,
			try{subject: p.subject, header: nats.Header{jetstream.ExpectedStreamHeader: []string{p.stream}}},
			try{subject: api("CONSUMER.INFO.%s.%s", p.stream, p.consumer), request: true})
	}
	if newConsumer {
		tries = append(tries,
			try{subject: api("CONSUMER.CREATE.%s.%s.%s", p.stream, p.consumer, p.subject), request: true},
			try{subject: api("CONSUMER.MSG.NEXT.%s.%s", p.stream, p.consumer), request: true, payload: []byte(`{"batch":1,"no_wait":true}`)})
		// With fault injection in the path, the proxy would count this ack
		// frame (and might cut the connection after it) as one of the run's.
		if p.cfg.Faults == nil {
			tries = append(tries, try{subject: fmt.Sprintf("$JS.ACK.%s.%s.1.1.1.0.0", p.stream, p.consumer)})
		}
	}
	switch stays := !newStream || p.cfg.Keep; {
	case stays:
		purge, _ := json.Marshal(map[string]string{"filter": p.subject})
		tries = append(tries, try{subject: api("STREAM.PURGE.%s", p.stream), request: true, payload: purge})
	default:
		tries = append(tries, try{subject: api("STREAM.DELETE.%s", p.stream), request: true})
	}
	if newConsumer && !newStream && !p.cfg.Keep {
		tries = append(tries, try{subject: api("CONSUMER.DELETE.%s.%s", p.stream, p.consumer), request: true})
	}
	for _, t := range tries {
		msg := &nats.Msg{Subject: t.subject, Data: t.payload, Header: t.header}
		if !t.request {
			if err := p.nc.PublishMsg(msg); err != nil {
				return err
			}
			continue
		}
		cctx, cancel := p.call(ctx)
		_, err := p.nc.RequestMsgWithContext(cctx, msg)
		cancel()
		if lost := p.conn.lost(); lost != nil {
			return lost
		}
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	cctx, cancel := p.call(ctx)
	defer cancel()
	if err := p.nc.FlushWithContext(cctx); err != nil {
		return fmt.Errorf("check permissions: %w", err)
	}
	return p.conn.lost()
}

// apiPrefix is the JetStream API prefix the handle sends requests to:
// $JS.API., unless a domain or an imported API moves it (as nats.go's
// NewWithDomain and NewWithAPIPrefix do).
func (p *Probe) apiPrefix() string {
	o := p.js.Options()
	switch {
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "."
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	}
	return jetstream.DefaultAPIPrefix
}
