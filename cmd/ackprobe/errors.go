package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/connect"
	"github.com/ackprobe/ackprobe/internal/probe"
	"github.com/ackprobe/ackprobe/internal/report"
)

// usageError is a bad command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErr(msg string) error { return &usageError{msg: msg} }

func writeJSON(w io.Writer, v any) error { return report.JSON(w, v) }

// checkURL validates one server URL the way nats.go will read it.
func checkURL(raw string) error {
	if raw == "" {
		return usageErr("--server has an empty URL in its list")
	}
	s := raw
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return usageErr(fmt.Sprintf("--server %q is not a valid URL", connect.Redact(raw)))
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return usageErr(fmt.Sprintf("--server %q: unknown scheme %q (use nats://, tls://, ws:// or wss://)", connect.Redact(raw), u.Scheme))
	}
	if u.Hostname() == "" {
		return usageErr(fmt.Sprintf("--server %q has no host", connect.Redact(raw)))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return usageErr(fmt.Sprintf("--server %q: port %q is not a number from 1 to 65535", connect.Redact(raw), p))
		}
	}
	return nil
}

// asyncError carries an error the server reported asynchronously (such as
// a permissions violation) next to the error the call returned.
type asyncError struct{ err, async error }

func (e *asyncError) Error() string { return e.err.Error() }
func (e *asyncError) Unwrap() error { return e.err }

func withAsync(err error, c *connect.Conn) error {
	if a := c.AsyncError(); a != nil {
		return &asyncError{err: err, async: a}
	}
	return err
}

// explain turns an error into a sentence that says what to do.
func explain(err error) string {
	var (
		ue  *usageError
		pu  *probe.UsageError
		re  *probe.RefusedError
		no  *probe.NotOwnedError
		de  *connect.DialError
		fe  *connect.FileError
		ae  *asyncError
		api *jetstream.APIError
		cl  *probe.ConnectionLostError
	)
	switch {
	case errors.As(err, &ue):
		return ue.msg
	case errors.As(err, &pu):
		return pu.Msg
	case errors.As(err, &re):
		return re.Msg
	case errors.As(err, &no):
		return no.Error()
	case errors.As(err, &fe):
		return fe.Error()
	case errors.As(err, &cl):
		return cl.Error()
	case errors.As(err, &ae) && errors.Is(ae.async, nats.ErrPermissionViolation):
		return fmt.Sprintf("permission denied: %v (while: %v)", ae.async, ae.err)
	case errors.As(err, &de):
		return explainDial(de)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return "JetStream is not enabled on this server or for this account: enable it (nats-server -js) or use an account that has it"
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Sprintf("%v: nothing answered the JetStream API; is JetStream enabled, and is --js-domain right?", err)
	case errors.As(err, &api):
		if hint := apiHint(api.ErrorCode); hint != "" {
			return fmt.Sprintf("%v: %s", err, hint)
		}
		return err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return fmt.Sprintf("%v: the server did not answer in time (raise --timeout, or check permissions on $JS.API.>)", err)
	}
	return err.Error()
}

func explainDial(de *connect.DialError) string {
	switch {
	case errors.Is(de.Err, nats.ErrNoServers):
		return fmt.Sprintf("cannot connect to %s: no server answered there; is nats-server running? (set -s/--server or NATS_URL)", de.URL)
	case errors.Is(de.Err, nats.ErrAuthorization), errors.Is(de.Err, nats.ErrAuthExpired), errors.Is(de.Err, nats.ErrAuthRevoked):
		return fmt.Sprintf("cannot connect to %s: authorization failed; check --user/--password, --token, --creds or --nkey", de.URL)
	case errors.Is(de.Err, context.DeadlineExceeded), errors.Is(de.Err, nats.ErrTimeout):
		return fmt.Sprintf("cannot connect to %s: timed out (raise --timeout?)", de.URL)
	case errors.Is(de.Err, context.Canceled):
		return fmt.Sprintf("cannot connect to %s: interrupted", de.URL)
	}
	var dns *net.DNSError
	if errors.As(de.Err, &dns) {
		return fmt.Sprintf("cannot connect to %s: host %q not found; check the server URL", de.URL, dns.Name)
	}
	return fmt.Sprintf("cannot connect to %s: %v", de.URL, de.Err)
}

// checkFiles makes sure the credential and TLS files named by the flags
// can be read, before anything is dialed.
func checkFiles(o connect.Options) error {
	for _, f := range []struct{ flag, path string }{
		{"creds", o.Creds}, {"nkey", o.NKey}, {"tlscert", o.TLSCert}, {"tlskey", o.TLSKey}, {"tlsca", o.TLSCA},
	} {
		if f.path == "" {
			continue
		}
		fh, err := os.Open(f.path)
		if err != nil {
			return usageErr(fmt.Sprintf("--%s file %s cannot be read: %v", f.flag, f.path, errors.Unwrap(err)))
		}
		fh.Close()
	}
	return nil
}

// apiHint says what to do about a JetStream API error, by its code (see
// nats-server's errors.json); message texts are not relied upon.
func apiHint(code jetstream.ErrorCode) string {
	switch code {
	case 10027: // JSMaximumStreamsLimitErr
		return "the account may not have more streams; remove one, or probe inside an existing stream with --stream"
	case 10026: // JSMaximumConsumersLimitErr
		return "the account or stream may not have more consumers; remove one or probe another stream"
	case 10002, 10047, 10028: // account resources, storage, memory exceeded
		return "not enough JetStream storage for the probe in this account; lower --count or try --storage file/memory"
	case 10005: // JSClusterNoPeersErrF
		return "the cluster has fewer JetStream servers than --replicas (or none fit the placement)"
	case 10023: // JSInsufficientResourcesErr
		return "the cluster has fewer JetStream servers than --replicas, or no room on them"
	case 10074: // JSStreamReplicasNotSupportedErr
		return "--replicas above 1 needs a JetStream cluster; this server is not clustered"
	case 10065: // JSStreamSubjectOverlapErr
		return "the probe subject overlaps another stream's subjects; pass --subject outside them, or --stream to probe inside that stream"
	case 10058: // JSStreamNameExistErr
		return "a stream of that name exists with another configuration"
	case 10076, 10039: // JetStream not enabled (for the account)
		return "enable JetStream on the server or for this account"
	case 10059: // JSStreamNotFoundErr
		return "check the stream name (ackprobe inspect lists them)"
	case 10014: // JSConsumerNotFoundErr
		return "check the consumer name (ackprobe inspect STREAM lists them)"
	}
	return ""
}
