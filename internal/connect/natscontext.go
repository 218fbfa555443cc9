package connect

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/nats-io/jsm.go/natscontext"
)

// ContextError is a nats CLI context that cannot be used.
type ContextError struct {
	Name string
	Err  error
}

func (e *ContextError) Error() string {
	if errors.Is(e.Err, natscontext.ErrNotFound) {
		return fmt.Sprintf("nats context %q does not exist (list them with: nats context ls)", e.Name)
	}
	return fmt.Sprintf("nats context %q: %v", e.Name, e.Err)
}

func (e *ContextError) Unwrap() error { return e.Err }

// ConfigDir returns where the nats CLI keeps its contexts' parent folder:
// $XDG_CONFIG_HOME, else $HOME/.config. The library alone would take the
// home directory from the user database and ignore $HOME.
func ConfigDir(getenv func(string) string) string {
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		return x
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config")
	}
	return ""
}

// ApplyContext loads the nats CLI context named by o.Context — a name, or
// a path ending in .json — or, when none is named and no server was given,
// the context selected with "nats context select". Its settings fill what
// the flags left unset; flags given explicitly win, as in the nats CLI.
// configDir is the folder holding nats/context (see ConfigDir). With
// NoContext set nothing is loaded: the caller refuses a context named
// explicitly together with --no-context.
func (o *Options) ApplyContext(configDir string) error {
	if o.Embedded || o.NoContext {
		return nil
	}
	name := o.Context
	var (
		nctx *natscontext.Context
		err  error
	)
	switch {
	case strings.HasSuffix(name, ".json"):
		nctx, err = natscontext.NewFromFile(name)
	case name == "" && o.Servers != "":
		return nil // a server was given and no context named
	case configDir == "":
		if name == "" {
			return nil
		}
		nctx, err = natscontext.New(name, true)
	default:
		reg := natscontext.NewRegistry(natscontext.NewFileBackendAt(configDir))
		if name == "" {
			name, err = reg.Selected(context.Background())
			if errors.Is(err, natscontext.ErrNoneSelected) || name == "" {
				return nil
			}
			if err != nil {
				return &ContextError{Name: "(selected)", Err: err}
			}
		}
		nctx, err = reg.Load(context.Background(), name)
	}
	if err != nil {
		return &ContextError{Name: name, Err: err}
	}
	opts, err := nctx.NATSOptions()
	if err != nil {
		return &ContextError{Name: name, Err: err}
	}
	o.ContextName = name
	o.contextOpts = opts
	o.contextSecrets = []string{nctx.Password(), nctx.Token(), nctx.UserSeed()}
	if o.Servers == "" {
		o.Servers = nctx.ServerURL()
	}
	if o.JSDomain == "" {
		o.JSDomain = nctx.JSDomain()
	}
	if o.APIPrefix == "" {
		o.APIPrefix = nctx.JSAPIPrefix()
	}
	if o.InboxPrefix == "" {
		// NATSOptions already sets it; recorded for Watch and reports.
		o.InboxPrefix = nctx.InboxPrefix()
	}
	o.contextTLS = nctx.Certificate() != "" || nctx.CA() != "" || nctx.TLSHandshakeFirst()
	return nil
}
