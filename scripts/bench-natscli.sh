#!/usr/bin/env bash
# Runs `nats bench js consume --doubleack` (the nats CLI, from the Go module
# proxy) against a separate nats-server built from the module version pinned
# in go.mod, for comparison with `make bench`'s BenchmarkConfirmedSerial.
set -euo pipefail
cd "$(dirname "$0")/.."
NATSCLI_VERSION=${NATSCLI_VERSION:-v0.5.1}
MSGS=${MSGS:-20000}
work=$(mktemp -d)
trap 'kill "${server_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

GOBIN="$work/bin" go install "github.com/nats-io/natscli/nats@${NATSCLI_VERSION}"
go build -o "$work/bin/nats-server" github.com/nats-io/nats-server/v2
port=$(( 20000 + RANDOM % 20000 ))
"$work/bin/nats-server" -a 127.0.0.1 -p "$port" -js -sd "$work/js" >/dev/null 2>&1 &
server_pid=$!
sleep 1
nats=("$work/bin/nats" -s "nats://127.0.0.1:$port")
"${nats[@]}" bench js pub async bench.x --create --storage memory --msgs $((MSGS * 3)) --size 16 --purge >/dev/null
for i in 1 2 3; do
  "${nats[@]}" bench js consume --doubleack --msgs "$MSGS" | grep -i 'msgs/sec' | head -1
  "${nats[@]}" consumer rm benchstream nats-bench -f >/dev/null
done
