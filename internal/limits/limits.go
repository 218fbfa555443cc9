// Package limits reads the account's JetStream limits and usage before a
// probe creates anything, and decides whether the probe's plan fits in
// them: it fits what it can (max_ack_pending), sizes the probe stream's
// max_bytes, and refuses what cannot fit with an error that names the
// limit, its value and what the probe needs.
//
// # What an account can see of the server
//
// $JS.API.INFO (jetstream.JetStream.AccountInfo) answers with the calling
// account's own limits and usage: max_memory, max_storage, max_streams,
// max_consumers, max_ack_pending, memory/storage max stream bytes and
// max_bytes_required, per tier (R1, R3, …) when the account has tiered
// limits, and the memory and storage its streams use and reserve. It says
// nothing of the SERVER's own JetStream limits — max_memory_store and
// max_file_store (the config's jetstream { max_mem, max_file }), nor what
// other accounts use or reserve of them, nor the server-wide
// jetstream { limits { max_ack_pending } }. Only the system account can
// read those ($SYS.REQ.SERVER.PING.JSZ, the monitoring port's /jsz), and a
// diagnostic tool must not need it. An account "with JetStream enabled"
// and no limits of its own reports -1 (unlimited) everywhere, yet the
// server's limits still hold.
//
// # Staying safe anyway
//
// The probe stream is created with max_bytes set to Fit.MaxBytes (and
// discard new). The server reserves max_bytes when it creates a stream and
// refuses, up front, a stream whose max_bytes does not fit what is left of
// its own limit: a standalone server answers the create request with
// JSMemoryResourcesExceededErr (10028) for memory or
// JSStorageResourcesExceededErr (10047) for file storage
// (jetStream.checkBytesLimits, called with checkServer from
// jsNonClusteredStreamLimitsCheck); in a cluster the meta leader places
// the stream only on peers that reported room for max_bytes, else
// JSClusterNoPeersErrF (10005). Nothing is created and nothing published
// then. With discard new, the stream itself can never grow past max_bytes,
// however many messages are sent. What remains outside the probe's reach
// is space that other streams without max_bytes take later: publishing may
// then be refused with JSInsufficientResourcesErr (10023).
package limits

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultMaxAckPending is the MaxAckPending the probe consumer asks for
// when the user did not choose one.
const DefaultMaxAckPending = 1000

// DefaultMsgBytes is a generous estimate of the stored size of one probe
// message: subject, headers and payload plus the store's own record
// (16 bytes in memory, 34 on file).
const DefaultMsgBytes = 256

// Plan is what a probe is about to do.
type Plan struct {
	// Count is the number of messages per mode; Modes the number of
	// modes. The probe stores Count×Modes messages.
	Count, Modes int
	// Storage is the probe stream's storage. As in nats.go, the zero
	// value is jetstream.FileStorage.
	Storage jetstream.StorageType
	// Replicas of the probe stream; 0 means 1.
	Replicas int
	// MaxAckPending is what the user asked for (--max-ack-pending); 0
	// means ackprobe's default, which is fitted to the account's limit.
	MaxAckPending int
	// DefaultMaxAckPending is ackprobe's default; 0 means
	// DefaultMaxAckPending.
	DefaultMaxAckPending int
	// MsgBytes is the estimated stored size of one message; 0 means
	// DefaultMsgBytes.
	MsgBytes int64
	// NewStream is set when the probe will create its stream: only then
	// does max_streams apply, and only a new stream gets max_bytes.
	NewStream bool
	// NewConsumers is how many consumers the probe will create on the
	// stream, which already has StreamConsumers (0 for a new stream):
	// the account's max_consumers holds per stream.
	NewConsumers, StreamConsumers int
}

// Fit is how the probe fits the account's limits.
type Fit struct {
	// MaxAckPending is the probe consumer's MaxAckPending: what the user
	// asked for, or ackprobe's default lowered to the account's limit.
	MaxAckPending int
	// MaxBytes is what the probe's messages take in one replica of the
	// stream: the max_bytes to create the probe stream with (discard
	// new), so that the server refuses it up front when it cannot hold it.
	MaxBytes int64
	// Notes say what was fitted, in a sentence each.
	Notes []string
	// Tier is the tier whose limits apply ("R1", "R3"), empty when the
	// account's limits are not tiered.
	Tier string
	// Limits are the limits that apply.
	Limits jetstream.AccountLimits
}

// Error is a plan that does not fit a limit. Its message is one line that
// names the limit, its value and what the probe needs.
type Error struct {
	// Limit is the limit's name as $JS.API.INFO reports it:
	// max_ack_pending, max_memory, max_storage, max_streams,
	// max_consumers, memory_max_stream_bytes, storage_max_stream_bytes,
	// or "tier" for an account without limits for the probe's replicas.
	Limit string
	// Tier is the tier the limit belongs to, empty when not tiered.
	Tier string
	// Value is the limit; Used what the account already uses of it
	// (bytes, streams, consumers); Need what the probe needs.
	Value, Used, Need int64
	// Fits is how much of Need fits, in the probe's terms: the most
	// messages per mode that fit a storage limit, the highest
	// --max-ack-pending allowed; -1 when nothing does or it does not
	// apply.
	Fits int64
	msg  string
}

func (e *Error) Error() string { return e.msg }

// Check reads the account's limits and usage and decides whether p fits.
func Check(ctx context.Context, js jetstream.JetStream, p Plan) (*Fit, error) {
	info, err := js.AccountInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the account's JetStream limits ($JS.API.INFO): %w", err)
	}
	return Decide(info, p)
}

// Decide is Check on account information read before.
func Decide(info *jetstream.AccountInfo, p Plan) (*Fit, error) {
	p = p.withDefaults()
	tier, limits, used, err := selectTier(info, p.Replicas)
	if err != nil {
		return nil, err
	}
	fit := &Fit{Tier: tier, Limits: limits}
	in := tierSuffix(tier)

	if err := fitAckPending(fit, p, in); err != nil {
		return nil, err
	}

	// Streams and consumers.
	if p.NewStream && limits.MaxStreams > 0 && used.Streams >= limits.MaxStreams {
		return nil, &Error{Limit: "max_streams", Tier: tier, Value: int64(limits.MaxStreams), Used: int64(used.Streams), Need: 1, Fits: -1,
			msg: fmt.Sprintf("the account's max_streams is %d%s and it has %d stream(s): remove one, or probe an existing stream with --stream",
				limits.MaxStreams, in, used.Streams)}
	}
	if n := p.StreamConsumers + p.NewConsumers; p.NewConsumers > 0 && limits.MaxConsumers > 0 && n > limits.MaxConsumers {
		return nil, &Error{Limit: "max_consumers", Tier: tier, Value: int64(limits.MaxConsumers), Used: int64(p.StreamConsumers), Need: int64(p.NewConsumers), Fits: -1,
			msg: fmt.Sprintf("the account's max_consumers is %d per stream%s; the probe stream has %d and the probe needs %d more: remove one, or probe another stream",
				limits.MaxConsumers, in, p.StreamConsumers, p.NewConsumers)}
	}

	// Bytes.
	perMsg := p.MsgBytes * int64(p.Modes)
	fit.MaxBytes = mulSat(int64(p.Count), perMsg)
	return fit, fitBytes(fit, p, used, perMsg, in)
}

func (p Plan) withDefaults() Plan {
	p.Count = max(p.Count, 1)
	p.Modes = max(p.Modes, 1)
	p.Replicas = max(p.Replicas, 1)
	if p.DefaultMaxAckPending <= 0 {
		p.DefaultMaxAckPending = DefaultMaxAckPending
	}
	if p.MsgBytes <= 0 {
		p.MsgBytes = DefaultMsgBytes
	}
	return p
}

// selectTier picks the limits that apply to a stream of the given
// replicas, as the server does (jsAccount.selectLimits): the account's
// limits when not tiered, else those of tier R<replicas>.
func selectTier(info *jetstream.AccountInfo, replicas int) (string, jetstream.AccountLimits, jetstream.Tier, error) {
	if len(info.Tiers) == 0 {
		return "", info.Limits, info.Tier, nil
	}
	name := fmt.Sprintf("R%d", replicas)
	t, ok := info.Tiers[name]
	if !ok {
		have := slices.Sorted(maps.Keys(info.Tiers))
		return "", jetstream.AccountLimits{}, jetstream.Tier{}, &Error{Limit: "tier", Tier: name, Fits: -1,
			msg: fmt.Sprintf("the account has no JetStream limits for %s streams (its tiers: %s): use --replicas of a tier it has",
				name, strings.Join(have, ", "))}
	}
	return name, t.Limits, t, nil
}

func fitAckPending(fit *Fit, p Plan, in string) error {
	limit := fit.Limits.MaxAckPending
	switch {
	case p.MaxAckPending > 0 && limit > 0 && p.MaxAckPending > limit:
		return &Error{Limit: "max_ack_pending", Tier: fit.Tier, Value: int64(limit), Need: int64(p.MaxAckPending), Fits: int64(limit),
			msg: fmt.Sprintf("--max-ack-pending %d is above the account's max_ack_pending of %d%s: pass at most %d",
				p.MaxAckPending, limit, in, limit)}
	case p.MaxAckPending > 0:
		fit.MaxAckPending = p.MaxAckPending
	case limit > 0 && limit < p.DefaultMaxAckPending:
		fit.MaxAckPending = limit
		fit.Notes = append(fit.Notes, fmt.Sprintf("max ack pending %d: the account's max_ack_pending%s (ackprobe would ask for %s)",
			limit, in, humanize.Comma(int64(p.DefaultMaxAckPending))))
	default:
		fit.MaxAckPending = p.DefaultMaxAckPending
	}
	return nil
}

// fitBytes checks that the probe's messages fit the account's storage
// limit for the plan's storage, and a single stream's size limit.
func fitBytes(fit *Fit, p Plan, used jetstream.Tier, perMsg int64, in string) error {
	l := fit.Limits
	kind, name, streamName, limit, streamMax := "memory", "max_memory", "memory_max_stream_bytes", l.MaxMemory, l.MemoryMaxStreamBytes
	inUse, reserved := used.Memory, used.ReservedMemory
	other := "file"
	if p.Storage == jetstream.FileStorage {
		kind, name, streamName, limit, streamMax = "storage", "max_storage", "storage_max_stream_bytes", l.MaxStore, l.StoreMaxStreamBytes
		inUse, reserved = used.Store, used.ReservedStore
		other = "memory"
	}
	need := fit.MaxBytes
	if l.MaxBytesRequired {
		fit.Notes = append(fit.Notes, fmt.Sprintf("the account requires max_bytes on streams%s: the probe stream's is %s", in, humanize.IBytes(uint64(need))))
	}
	if p.NewStream && streamMax > 0 && need > streamMax {
		return &Error{Limit: streamName, Tier: fit.Tier, Value: streamMax, Used: -1, Need: need, Fits: streamMax / perMsg,
			msg: fmt.Sprintf("the probe stream needs %s for %s but the account's %s is %s%s: lower --count to at most %s",
				humanize.IBytes(uint64(need)), messages(p), streamName, humanize.IBytes(uint64(streamMax)), in, humanize.Comma(streamMax/perMsg))}
	}
	if limit < 0 {
		return nil // no account limit; the server's own is checked on create (see the package doc)
	}
	// The account's limit and usage count every replica when the limits
	// are not tiered (the server multiplies by replicas); a tier's limit
	// holds per replica, against its usage over all replicas.
	r := int64(p.Replicas)
	accountNeed, taken := mulSat(need, r), max(int64(inUse), int64(reserved))
	perMsgAll := mulSat(perMsg, r)
	if fit.Tier != "" {
		accountNeed, taken = need, max(ceilDiv(int64(inUse), r), int64(reserved))
		perMsgAll = perMsg
	}
	free := max(0, limit-taken)
	if accountNeed <= free {
		return nil
	}
	fits := free / perMsgAll
	msg := fmt.Sprintf("the probe needs %s of JetStream %s for %s but the account's %s is %s%s with %s in use",
		humanize.IBytes(uint64(accountNeed)), kind, messages(p), name, humanize.IBytes(uint64(limit)), in, humanize.IBytes(uint64(taken)))
	switch {
	case limit == 0:
		msg = fmt.Sprintf("the account may not use JetStream %s (%s 0%s): use --storage %s", kind, name, in, other)
		fits = -1
	case fits > 0:
		msg += fmt.Sprintf(": lower --count to at most %s, or use --storage %s", humanize.Comma(fits), other)
	default:
		msg += fmt.Sprintf(": free some, or use --storage %s", other)
		fits = -1
	}
	return &Error{Limit: name, Tier: fit.Tier, Value: limit, Used: taken, Need: accountNeed, Fits: fits, msg: msg}
}

func messages(p Plan) string {
	if p.Modes == 1 {
		return fmt.Sprintf("%s message(s)", humanize.Comma(int64(p.Count)))
	}
	return fmt.Sprintf("%s message(s) × %d modes", humanize.Comma(int64(p.Count)), p.Modes)
}

func tierSuffix(tier string) string {
	if tier == "" {
		return ""
	}
	return " for " + tier + " streams"
}

// mulSat multiplies non-negative a and b, saturating at math.MaxInt64.
func mulSat(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
