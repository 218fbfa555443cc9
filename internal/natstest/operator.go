package natstest

import (
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// OperatorServer is a server in operator (JWT) mode with one account and
// one user of it.
type OperatorServer struct {
	*server.Server
	// Creds is the text of the user's creds file.
	Creds []byte
	// Seed and JWT are the user's, as in Creds.
	Seed, JWT string
}

// RunOperatorServer starts an in-process server in operator mode, with a
// system account (JetStream in operator mode needs one) and one account
// whose claims account may set (nil: JetStream without limits), and
// returns it with the creds of a user of that account.
func RunOperatorServer(t testing.TB, account func(*jwt.AccountClaims)) *OperatorServer {
	t.Helper()
	must := func(err error) {
		if err != nil {
			t.Fatalf("natstest: operator server: %v", err)
		}
	}
	okp, _ := nkeys.CreateOperator()
	opub, _ := okp.PublicKey()
	akp, _ := nkeys.CreateAccount()
	apub, _ := akp.PublicKey()
	ac := jwt.NewAccountClaims(apub)
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	if account != nil {
		account(ac)
	}
	ajwt, err := ac.Encode(okp)
	must(err)
	ukp, _ := nkeys.CreateUser()
	upub, _ := ukp.PublicKey()
	uc := jwt.NewUserClaims(upub)
	uc.IssuerAccount = apub
	ujwt, err := uc.Encode(akp)
	must(err)
	useed, _ := ukp.Seed()
	creds, err := jwt.FormatUserConfig(ujwt, useed)
	must(err)
	skp, _ := nkeys.CreateAccount()
	spub, _ := skp.PublicKey()
	sjwt, err := jwt.NewAccountClaims(spub).Encode(okp)
	must(err)
	resolver := &server.MemAccResolver{}
	must(resolver.Store(apub, ajwt))
	must(resolver.Store(spub, sjwt))
	o := Options(t)
	o.TrustedOperators = []*jwt.OperatorClaims{jwt.NewOperatorClaims(opub)}
	o.AccountResolver = resolver
	o.SystemAccount = spub
	return &OperatorServer{Server: RunServerWith(t, o), Creds: creds, Seed: string(useed), JWT: ujwt}
}
