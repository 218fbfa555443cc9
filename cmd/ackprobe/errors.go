package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ackprobe/ackprobe/internal/connect"
	"github.com/ackprobe/ackprobe/internal/limits"
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
	if strings.Count(u.Host, ":") > 1 && !strings.HasPrefix(u.Host, "[") {
		return usageErr(fmt.Sprintf("--server %q: an IPv6 address goes in brackets, such as nats://[::1]:4222", connect.Redact(raw)))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return usageErr(fmt.Sprintf("--server %q: port %q is not a number from 1 to 65535", connect.Redact(raw), p))
		}
	}
	return nil
}

// withAsync adds what the connection knows to an error of a call on it:
// a permission the server refused (reported asynchronously, which the call
// sees only as a timeout or a cancelled context), whether the connection
// was lost or closed, whether the server is clustered (see
// connect.StateError).
func withAsync(err error, c *connect.Conn) error { return c.Wrap(err) }

// secretsError is an error of a command together with the secrets its
// connection flags carry, so that the line printed never shows them.
type secretsError struct {
	err   error
	scrub func(string) string
}

func (e *secretsError) Error() string { return e.scrub(e.err.Error()) }
func (e *secretsError) Unwrap() error { return e.err }

// explain turns an error into a sentence that says what to do, with any
// secret of the connection flags scrubbed: what ackprobe composes holds
// none, but library errors quote what they were given.
func explain(err error) string {
	text := explainText(err)
	var se *secretsError
	if errors.As(err, &se) {
		text = se.scrub(text)
	}
	return text
}

func explainText(err error) string {
	var (
		ue  *usageError
		pu  *probe.UsageError
		re  *probe.RefusedError
		no  *probe.NotOwnedError
		de  *connect.DialError
		fe  *connect.FileError
		pe  *connect.PermissionError
		ce  *connect.ClosedError
		st  *connect.StateError
		le  *limits.Error
		api *jetstream.APIError
		cl  *probe.ConnectionLostError
		ppe *probe.PermissionError
	)
	errors.As(err, &st)
	switch {
	case errors.As(err, &ue):
		return ue.msg
	case errors.As(err, &pu):
		return pu.Msg
	case errors.As(err, &pe):
		return explainDenied(pe)
	case errors.As(err, &ppe) && connect.ParsePermission(ppe.Err) != nil && connect.ParsePermission(ppe.Err).Subject != "":
		// The probe noticed the refusal before the connection's watch did.
		return explainDenied(connect.ParsePermission(ppe.Err))
	case errors.As(err, &le):
		return le.Error()
	case errors.As(err, &re):
		return re.Msg
	case errors.As(err, &no):
		return no.Error()
	case errors.As(err, &fe):
		return fe.Error()
	case errors.As(err, &cl):
		return cl.Error()
	case errors.As(err, &ce):
		where := "the server"
		if st != nil {
			where = st.URL
		}
		why := ""
		if ce.Err != nil {
			why = fmt.Sprintf(" (%v)", ce.Err)
		}
		return fmt.Sprintf("the connection to %s was closed%s while: %v", where, why, errText(err))
	case st != nil && st.Lost() && !errors.As(err, &api):
		return fmt.Sprintf("lost the connection to %s: the server went away or closed it (is it still running?); ackprobe was reconnecting when this failed: %v", st.URL, errText(err))
	case errors.As(err, &de):
		return explainDial(de)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return "JetStream is not enabled on this server or for this account: enable it (nats-server -js) or use an account that has it"
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Sprintf("%v: nothing answered the JetStream API; is JetStream enabled, and are --js-domain and --js-api-prefix right?", err)
	case errors.As(err, &api):
		if hint := apiHint(api.ErrorCode, topologyOf(st)); hint != "" {
			return fmt.Sprintf("%v: %s", err, hint)
		}
		return err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return fmt.Sprintf("%v: the server did not answer in time: it may be overloaded, or the stream's or consumer's leader may be down or being elected; raise --timeout to wait longer", err)
	}
	return err.Error()
}

// errText is the text of the error a call returned, without the state
// the connection added.
func errText(err error) string {
	var st *connect.StateError
	if errors.As(err, &st) {
		return st.Err.Error()
	}
	return err.Error()
}

// explainDenied names the permission the server refused, and for a
// refused inbox says how to move ackprobe's reply subjects.
func explainDenied(pe *connect.PermissionError) string {
	msg := pe.Error() + " for this user"
	switch {
	case pe.Op == "subscribe" && strings.HasPrefix(pe.Subject, nats.InboxPrefix):
		return msg + `: allow it, or pass --inbox-prefix with a prefix the user may subscribe to (README: "Least privilege")`
	case pe.Op == "subscribe":
		return msg + `: allow it (README: "Least privilege" lists what each command needs)`
	}
	return msg + `: grant it (README: "Least privilege" lists what each command needs)`
}

// topology says whether the server is clustered, as far as known.
type topology int

const (
	topologyUnknown topology = iota
	standalone
	clustered
)

func topologyOf(st *connect.StateError) topology {
	switch {
	case st == nil:
		return topologyUnknown
	case st.Clustered():
		return clustered
	}
	return standalone
}

func explainDial(de *connect.DialError) string {
	var (
		rh tls.RecordHeaderError
		op *net.OpError
	)
	switch {
	case errors.Is(de.Err, nats.ErrNoServers):
		return fmt.Sprintf("cannot connect to %s: no server answered there; is nats-server running? (set -s/--server or NATS_URL)", de.URL)
	case errors.Is(de.Err, nats.ErrAuthorization), errors.Is(de.Err, nats.ErrAuthExpired), errors.Is(de.Err, nats.ErrAuthRevoked):
		return fmt.Sprintf("cannot connect to %s: authorization failed; check --user/--password, --token, --creds or --nkey", de.URL)
	case de.TLSFirst:
		return fmt.Sprintf("cannot connect to %s: the server sent nothing and answered a TLS handshake instead: it expects TLS first, try --tlsfirst", de.URL)
	case errors.As(de.Err, &rh):
		return fmt.Sprintf("cannot connect to %s: the server does not start with TLS: drop --tlsfirst (TLS, when the server requires it, starts after its INFO)", de.URL)
	case errors.As(de.Err, &op) && op.Op == "read" && op.Timeout():
		return fmt.Sprintf("cannot connect to %s: the server accepted the connection but sent nothing within --timeout: is it a NATS server? If it expects TLS first, try --tlsfirst", de.URL)
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

// checkPrefixes validates --inbox-prefix and --js-api-prefix (or a
// context's) as the server reads subjects: no wildcards, no empty token.
func checkPrefixes(o connect.Options) error {
	if strings.HasSuffix(o.InboxPrefix, ".") {
		return usageErr(fmt.Sprintf("--inbox-prefix %q must not end with a dot: ackprobe adds it", o.InboxPrefix))
	}
	for _, p := range []struct{ flag, value string }{
		{"inbox-prefix", o.InboxPrefix}, {"js-api-prefix", strings.TrimSuffix(o.APIPrefix, ".")},
	} {
		if p.value == "" {
			continue
		}
		if !server.IsValidLiteralSubject(p.value) {
			return usageErr(fmt.Sprintf("--%s %q is not a subject prefix: tokens separated by dots, none empty, no wildcards (* >) or spaces", p.flag, p.value))
		}
	}
	return nil
}

// checkFiles makes sure the credential and TLS files named by the flags
// can be read, before anything is dialed. A seed or credentials given in
// place of a file's path is refused without repeating it.
func checkFiles(o connect.Options) error {
	if connect.LooksLikeSeed(o.NKey) {
		return usageErr("--nkey (NATS_NKEY) takes the path of a file holding the seed, not the seed itself")
	}
	if strings.Contains(o.Creds, "\n") || strings.Contains(o.Creds, "-----BEGIN") {
		return usageErr("--creds (NATS_CREDS) takes the path of a credentials file, not its contents")
	}
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
// nats-server's errors.json); message texts are not relied upon. Where the
// cause differs between a single server and a cluster, t says which.
func apiHint(code jetstream.ErrorCode, t topology) string {
	switch code {
	case 10027: // JSMaximumStreamsLimitErr
		return "the account may not have more streams (its max_streams); remove one, or probe inside an existing stream with --stream"
	case 10026: // JSMaximumConsumersLimitErr
		return "the account or stream may not have more consumers (max_consumers); remove one or probe another stream"
	case 10002: // JSAccountResourcesExceededErr
		return "the account's JetStream limit (max_mem or max_file) is used up; lower --count, try the other --storage, or free space"
	case 10028: // JSMemoryResourcesExceededErr
		return "not enough JetStream memory: the account's max_mem, or the server's own max_mem (jetstream { max_mem }, which an account cannot see), leaves no room for the probe stream; lower --count or use --storage file"
	case 10047: // JSStorageResourcesExceededErr
		return "not enough JetStream file storage: the account's max_file, or the server's own max_file (jetstream { max_file }, which an account cannot see), leaves no room for the probe stream; lower --count, or free file storage on the servers"
	case 10005: // JSClusterNoPeersErrF
		if t == standalone {
			return "the server found no place for the stream (its placement, or no room for its max_bytes)"
		}
		return "the cluster has fewer JetStream servers than --replicas, or none with room for the probe stream (or none fit the placement)"
	case 10023: // JSInsufficientResourcesErr
		switch t {
		case standalone:
			return "the server's JetStream memory or file storage is used up (its max_mem or max_file, shared by every account); lower --count, try the other --storage, or free space on the server"
		case clustered:
			return "the cluster has fewer JetStream servers than --replicas, or no room on them (their max_mem or max_file)"
		}
		return "the server's JetStream limits (max_mem, max_file) are used up, or a cluster has fewer JetStream servers than --replicas"
	case 10121: // JSConsumerMaxPendingAckExcessErrF
		return "the server or the account caps a consumer's max_ack_pending below what the probe asks for; ask for less with --max-ack-pending"
	case 10122: // JSStreamMaxStreamBytesExceeded
		return "the account caps the size of one stream (memory/storage max_stream_bytes); lower --count"
	case 10113: // JSStreamMaxBytesRequired
		return "the account requires every stream to set max_bytes"
	case 10120: // JSNoLimitsErr
		return "the account has no JetStream limits for streams of this many replicas (tiered limits); use a --replicas it has limits for"
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
