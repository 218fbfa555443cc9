// Package embedded runs a throwaway nats-server with JetStream inside the
// ackprobe process: loopback only, a random port, a temporary store that is
// removed on Close.
package embedded

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is a running embedded nats-server.
type Server struct {
	srv      *server.Server
	storeDir string
	owned    bool
}

// Options tune the embedded server. The zero value is what ackprobe uses when
// no server is given.
type Options struct {
	// StoreDir is the JetStream store; empty means a new temporary directory
	// that Close removes.
	StoreDir string
	// MaxMemory and MaxStore cap JetStream; zero means 1 GiB each (the
	// server's own default is a share of the machine's RAM and disk).
	MaxMemory, MaxStore int64
	// ReadyTimeout bounds the wait for the server to accept connections.
	ReadyTimeout time.Duration
}

// Start starts a JetStream-enabled server on 127.0.0.1 with a random port.
func Start(o Options) (*Server, error) {
	s := &Server{storeDir: o.StoreDir}
	if s.storeDir == "" {
		dir, err := os.MkdirTemp("", "ackprobe-js-")
		if err != nil {
			return nil, fmt.Errorf("embedded server store: %w", err)
		}
		s.storeDir, s.owned = dir, true
	}
	if o.MaxMemory == 0 {
		o.MaxMemory = 1 << 30
	}
	if o.MaxStore == 0 {
		o.MaxStore = 1 << 30
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 10 * time.Second
	}
	srv, err := server.NewServer(&server.Options{
		ServerName:         "ackprobe-embedded",
		Host:               "127.0.0.1",
		Port:               -1,
		HTTPPort:           0,
		JetStream:          true,
		StoreDir:           s.storeDir,
		JetStreamMaxMemory: o.MaxMemory,
		JetStreamMaxStore:  o.MaxStore,
		NoLog:              true,
		NoSigs:             true,
	})
	if err != nil {
		s.removeStore()
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(o.ReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		s.removeStore()
		return nil, errors.New("embedded server: not ready for connections in time")
	}
	s.srv = srv
	return s, nil
}

// URL is the client URL of the server, nats://127.0.0.1:<port>.
func (s *Server) URL() string { return s.srv.ClientURL() }

// StoreDir is the JetStream store directory.
func (s *Server) StoreDir() string { return s.storeDir }

// Version is the nats-server version compiled into ackprobe.
func Version() string { return server.VERSION }

// Close shuts the server down and removes a temporary store.
func (s *Server) Close() error {
	if s == nil || s.srv == nil {
		return nil
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	return s.removeStore()
}

func (s *Server) removeStore() error {
	if !s.owned {
		return nil
	}
	return os.RemoveAll(s.storeDir)
}
