#!/usr/bin/env bash
# Regenerates the program output shown in chapter 5 (book/ch05-tokio.md):
# the tokio server under 3 concurrent clients, then SIGTERM.
#
# Writes ch05-tokio-server.txt (the server's stdout and stderr) and
# ch05-tokio-client.txt (the client's timeline and summary). The run is
# chapter 1's, so the two outputs compare line for line: same clients,
# same work, but here every client is served at once, by one thread.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

WORK_MS=200
CLIENTS=3
MESSAGES=3

cargo build --quiet -p ch05-tokio -p client

scratch=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$scratch"
}
trap cleanup EXIT

# Port 0: the OS picks a free port, which the server announces on its first
# line of stdout. Both streams go to one file, in the order written.
server_cmd=(ch05-tokio --addr 127.0.0.1:0 --work-ms "$WORK_MS")
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
    echo "ch05-tokio did not start:" >&2
    cat "$scratch/server.txt" >&2
    exit 1
fi

client_cmd=(client "$CLIENTS" --addr "$addr" --messages "$MESSAGES"
            --work-ms "$WORK_MS")
{
    echo "\$ ${client_cmd[*]}"
    target/debug/"${client_cmd[0]}" "${client_cmd[@]:1}"
} >"$scratch/client.txt"

# SIGTERM: tokio's signal handler flips the stop switch; the server stops
# accepting, lets connections finish, and exits 0.
kill -TERM "$server_pid"
wait "$server_pid"
server_pid=

{
    echo "\$ ${server_cmd[*]}"
    cat "$scratch/server.txt"
} >book/output/ch05-tokio-server.txt
mv "$scratch/client.txt" book/output/ch05-tokio-client.txt
echo "wrote book/output/ch05-tokio-server.txt, ch05-tokio-client.txt"
