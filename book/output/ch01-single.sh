#!/usr/bin/env bash
# Regenerates the program output shown in chapter 1 (book/ch01-single.md):
# the single server under 3 concurrent clients, and the server's own log.
#
# Writes ch01-single-server.txt (the server's stdout and stderr) and
# ch01-single-client.txt (the client's timeline and summary). Short work
# (200 ms per message) keeps the run to a couple of seconds; the shape of
# the output is what the chapter discusses, not the exact times.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

WORK_MS=200
CLIENTS=3
MESSAGES=3

cargo build --quiet -p ch01-single -p client

scratch=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$scratch"
}
trap cleanup EXIT

# Port 0: the OS picks a free port, which the server announces on its first
# line of stdout. Both streams go to one file, in the order written.
server_cmd=(ch01-single --addr 127.0.0.1:0 --work-ms "$WORK_MS")
target/debug/"${server_cmd[0]}" "${server_cmd[@]:1}" \
    >"$scratch/server.txt" 2>&1 &
server_pid=$!

addr=
for _ in $(seq 100); do
    addr=$(sed -n 's/^listening on //p' "$scratch/server.txt")
    [ -n "$addr" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$addr" ]; then
    echo "ch01-single did not start:" >&2
    cat "$scratch/server.txt" >&2
    exit 1
fi

client_cmd=(client "$CLIENTS" --addr "$addr" --messages "$MESSAGES"
            --work-ms "$WORK_MS")
{
    echo "\$ ${client_cmd[*]}"
    target/debug/"${client_cmd[0]}" "${client_cmd[@]:1}"
} >"$scratch/client.txt"

# SIGTERM: the server finishes what it has, logs, and exits 0.
kill -TERM "$server_pid"
wait "$server_pid"
server_pid=

{
    echo "\$ ${server_cmd[*]}"
    cat "$scratch/server.txt"
} >book/output/ch01-single-server.txt
mv "$scratch/client.txt" book/output/ch01-single-client.txt
echo "wrote book/output/ch01-single-server.txt, ch01-single-client.txt"
