//go:build unix

package natstest

import (
	"fmt"
	"syscall"
	"testing"
)

// RefusedURL returns a loopback URL on which every connection is refused,
// for as long as the test runs. A port taken from a closed listener is not
// enough: a server started by a parallel test may be given it. A socket
// that is bound but never listens keeps the port reserved, and the kernel
// answers connections to it with a reset.
func RefusedURL(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("nats://127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}
